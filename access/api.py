"""The access API: who am I, and (in later work) roles, requests, approvals and grants."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema

from access.selectors import role_memberships_of
from portal.api import person_of, principal_of

router = Router(tags=["access"])


class RoleHeld(Schema):
    name: str
    source: str
    expiresAt: datetime | None


class Me(Schema):
    sub: str
    name: str
    email: str
    via: str
    clientId: str | None
    scopes: list[str]
    roles: list[RoleHeld]


@router.get("/me", response=Me, summary="Who is calling, how they signed in, and their roles")
def me(request: HttpRequest) -> Me:
    principal = principal_of(request)
    principal.require_scope("read:access")
    person = person_of(request)
    memberships = role_memberships_of(user=person) if person else []
    return Me(
        sub=principal.sub,
        name=person.name if person else "",
        email=person.email if person else "",
        via=principal.via,
        clientId=principal.client_id,
        scopes=sorted(principal.scopes),
        roles=[
            RoleHeld(name=m.role.name, source=m.source, expiresAt=m.expires_at) for m in memberships
        ],
    )
