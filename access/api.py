"""The access API: who am I, the mirrored roles and their members; requests come later."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.errors import HttpError

from access.models import Role
from access.policy import is_portal_admin
from access.selectors import role_members, role_memberships_of, roles_with_member_counts
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


class RoleOut(Schema):
    name: str
    description: str
    memberCount: int


class RoleList(Schema):
    items: list[RoleOut]


class MemberOut(Schema):
    sub: str
    email: str
    name: str
    source: str
    expiresAt: datetime | None


class MemberList(Schema):
    items: list[MemberOut]


@router.get("/roles", response=RoleList, summary="Auth0 roles the portal mirrors")
def roles_list(request: HttpRequest) -> RoleList:
    principal_of(request).require_scope("read:access")
    return RoleList(
        items=[
            RoleOut(name=role.name, description=role.description, memberCount=role.member_count)  # type: ignore[attr-defined]
            for role in roles_with_member_counts()
        ]
    )


@router.get(
    "/roles/{name}/members", response=MemberList, summary="Who holds a role now, and since how"
)
def role_members_list(request: HttpRequest, name: str) -> MemberList:
    principal = principal_of(request)
    principal.require_scope("read:access")
    # Who holds which role is for the portal's admins and for automation, not for everyone.
    if not principal.is_machine and not is_portal_admin(person_of(request)):
        raise HttpError(403, "only portal admins may list a role's members")
    role = Role.objects.filter(name=name).first()
    if role is None:
        raise HttpError(404, f"No role {name!r} in the portal's mirror")
    return MemberList(
        items=[
            MemberOut(
                sub=m.user.sub,
                email=m.user.email,
                name=m.user.name,
                source=m.source,
                expiresAt=m.expires_at,
            )
            for m in role_members(role=role)
        ]  # fmt: skip
    )
