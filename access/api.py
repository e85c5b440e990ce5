"""The access API: who am I, the mirrored roles and their members, access requests and grants.

One router for one part of SPEC's API; its endpoints share the request and grant shapes, so it
stays one module past 400 lines.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Body, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field

from access.audit import Actor, actor_matches
from access.models import AccessRequest, AuditEvent, Decision, Role
from access.policy import is_admin_or_machine, may_administer_access, viewer_for
from access.registry import (
    READ_ONLY,
    RegistryError,
    registry_entry_json,
    registry_entry_of,
    registry_entry_parse,
)
from access.selectors import (
    requests_visible,
    role_members,
    role_memberships_of,
    roles_with_member_counts,
)
from access.services import (
    access_break_glass,
    access_request_cancel,
    access_request_create,
    access_request_decide,
    role_registry_set,
)
from catalog.selectors import entity_by_ref
from portal.apikit import person_of, principal_of
from portal.bounds import MAX_ID, Id
from portal.durations import DurationError, duration_iso, duration_parse

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


class AutoApproveOut(Schema):
    group: str
    maxDuration: str
    reasonPattern: str | None


class BreakGlassOut(Schema):
    group: str
    maxDuration: str


class RoleEntryOut(Schema):
    name: str
    description: str
    memberCount: int
    owners: list[str]
    requestable: bool
    maxDuration: str | None
    minApprovals: int
    sensitive: bool
    conflictsWith: list[str]
    autoApprove: list[AutoApproveOut]
    breakGlass: BreakGlassOut | None
    reviewEvery: str | None = Field(description="P1M, P3M, P6M or P1Y; null: no review")
    reviewDay: str | None = Field(description="the day reviews are anchored to (YYYY-MM-DD)")
    removeUnreviewedAfter: str | None = Field(
        description="what is not reviewed this long after a review's due date is removed (P14D)"
    )
    nextReviewDue: datetime | None = Field(description="read-only: when the next review is due")


def _role_entry_out(role: Role) -> RoleEntryOut:
    count = role_members(role=role).count()
    entry = registry_entry_json(registry_entry_of(role))
    return RoleEntryOut(name=role.name, description=role.description, memberCount=count,
                        nextReviewDue=role.review_next_due, **entry)  # fmt: skip


def _mirrored_role(name: str) -> Role:
    role = Role.objects.filter(name=name).first()
    if role is None:
        raise HttpError(404, f"No role {name!r} in the portal's mirror")
    return role


@router.get("/roles/{name}", response=RoleEntryOut, summary="A role and its registry entry")
def roles_get(request: HttpRequest, name: str) -> RoleEntryOut:
    principal_of(request).require_scope("read:access")
    return _role_entry_out(_mirrored_role(name))


@router.put(
    "/roles/{name}",
    response=RoleEntryOut,
    summary="Set a role's registry entry: who owns it and how it may be granted",
)
def roles_put(request: HttpRequest, name: str, body: Body[dict[str, Any]]) -> RoleEntryOut:
    """The whole entry: a field left out is reset to having no such policy (no owners,
    requestable, the portal's longest grant, one approval, not sensitive, no conflict, no
    auto-approval, no break-glass). A conflict holds both ways: the other role's entry gains
    (or loses) this one too."""
    principal = principal_of(request)
    principal.require_scope("admin:access")
    if not may_administer_access(principal, person_of(request)):
        raise HttpError(
            403, "only portal admins and machines granted admin:access set the registry"
        )
    role = _mirrored_role(name)
    if body.get("name", name) != name:
        raise HttpError(400, f"name: the body names {body['name']!r}, the path {name!r}")
    try:
        entry = registry_entry_parse(body, allowed=READ_ONLY, name=name)
        role_registry_set(role=role, entry=entry, actor=api_actor(request))
    except RegistryError as error:
        raise HttpError(400, str(error)) from error
    role.refresh_from_db()
    return _role_entry_out(role)


@router.get(
    "/roles/{name}/members", response=MemberList, summary="Who holds a role now, and since how"
)
def role_members_list(request: HttpRequest, name: str) -> MemberList:
    principal_of(request).require_scope("read:access")
    require_admin_or_machine(request, "only portal admins may list a role's members")
    role = _mirrored_role(name)
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


# --- access requests -------------------------------------------------------------------------


class PersonOut(Schema):
    sub: str
    email: str


class DecisionOut(Schema):
    by: str
    outcome: str
    comment: str
    at: datetime


class GrantOut(Schema):
    state: str
    startsAt: datetime | None
    expiresAt: datetime | None


class RequestOut(Schema):
    id: int
    state: str
    # How it was granted: "decided" by people, "autoApproved" by a rule, "breakGlass".
    kind: str
    # The registry rule that granted it at once, as it stood then; null when people decided.
    rule: dict[str, Any] | None
    requester: PersonOut
    entityRef: str
    role: str
    reason: str
    duration: str
    createdAt: datetime
    decisions: list[DecisionOut]
    grant: GrantOut | None


class RequestList(Schema):
    items: list[RequestOut]


class RequestIn(Schema):
    entityRef: str
    role: str
    reason: str
    duration: str | None = None
    # Break glass: grant oneself the role at once (only where the registry allows it); the
    # duration defaults to the break-glass cap.
    breakGlass: bool = False


class DecisionIn(Schema):
    comment: str = ""


KINDS: dict[str, str] = {
    AccessRequest.Kind.DECIDED: "decided",
    AccessRequest.Kind.AUTO_APPROVED: "autoApproved",
    AccessRequest.Kind.BREAK_GLASS: "breakGlass",
}


def request_out(access_request: AccessRequest) -> RequestOut:
    granted = access_request.state in AccessRequest.GRANT_STATES
    return RequestOut(
        id=access_request.pk,
        state=access_request.state,
        kind=KINDS[access_request.kind],
        rule=access_request.rule,
        requester=PersonOut(sub=access_request.requester.sub, email=access_request.requester.email),
        entityRef=access_request.entity_ref,
        role=access_request.role_name,
        reason=access_request.reason,
        duration=duration_iso(access_request.duration),
        createdAt=access_request.created_at,
        decisions=[
            DecisionOut(by=d.approver.sub, outcome=d.outcome, comment=d.comment, at=d.at)
            for d in access_request.decisions.all()
        ],
        grant=GrantOut(state=access_request.state, startsAt=access_request.starts_at,
                       expiresAt=access_request.expires_at) if granted else None,
    )  # fmt: skip


def require_admin_or_machine(request: HttpRequest, refusal: str) -> None:
    """A 403 saying `refusal` unless the caller is a portal admin or a machine client."""
    if not is_admin_or_machine(principal_of(request), person_of(request)):
        raise HttpError(403, refusal)


def api_actor(request: HttpRequest) -> Actor:
    """The API's caller, as the audit log records them: a person the portal knows by name, else
    by the id their token carries (`client:<id>` for a machine)."""
    who = person_of(request) or principal_of(request).actor
    return Actor.of_request(request, who, AuditEvent.Via.API)


def _requests() -> QuerySet[AccessRequest]:
    return AccessRequest.objects.select_related("requester").prefetch_related("decisions__approver")


def _visible(request: HttpRequest, requests: QuerySet[AccessRequest]) -> QuerySet[AccessRequest]:
    """Machines with read:access read every request; people those the pages show them."""
    if is_admin_or_machine(principal_of(request), person_of(request)):
        return requests
    return requests_visible(viewer=viewer_for(person_of(request)), requests=requests)


@router.get("/requests", response=RequestList, summary="Access requests the caller may see")
def requests_list(request: HttpRequest, state: str | None = None) -> RequestList:
    principal_of(request).require_scope("read:access")
    items = _requests().order_by("-created_at", "-pk")
    if state:
        items = items.filter(state=state)
    items = _visible(request, items)
    return RequestList(items=[request_out(r) for r in items[:500]])


@router.post("/requests", response={201: RequestOut, 200: RequestOut}, summary="Ask for a role")
def requests_create(request: HttpRequest, body: RequestIn) -> Status[RequestOut]:
    principal = principal_of(request)
    principal.require_scope("request:access")
    person = person_of(request)
    if person is None:
        raise HttpError(403, "people request access for themselves; a machine client cannot")
    entity = entity_by_ref(ref=body.entityRef)
    if entity is None:
        raise HttpError(404, f"No entity {body.entityRef!r} in the catalog")
    duration = None
    if body.duration:
        try:
            duration = duration_parse(body.duration)
        except DurationError as error:
            raise HttpError(400, f"duration: {error}") from error
    # A refusal (RequestRefused, NotAllowed, AlreadyDecided) is answered by portal.api's handlers.
    if body.breakGlass:
        access_request = access_break_glass(
            requester=person, entity=entity, role=body.role, reason=body.reason,
            duration=duration, actor=api_actor(request),
        )  # fmt: skip
        return Status(201, request_out(_requests().get(pk=access_request.pk)))
    access_request, created = access_request_create(
        requester=person, entity=entity, role=body.role, reason=body.reason,
        duration=duration, actor=api_actor(request),
    )  # fmt: skip
    # 201 for a new request; 200 with the open one when the person had asked already.
    return Status(201 if created else 200, request_out(_requests().get(pk=access_request.pk)))


def _get(request: HttpRequest, request_id: Id) -> AccessRequest:
    access_request = _visible(request, _requests().filter(pk=request_id)).first()
    if access_request is None:
        raise HttpError(404, f"No access request {request_id}")
    return access_request


@router.get("/requests/{request_id}", response=RequestOut, summary="One access request")
def requests_get(request: HttpRequest, request_id: Id) -> RequestOut:
    principal_of(request).require_scope("read:access")
    return request_out(_get(request, request_id))


def _decide(request: HttpRequest, request_id: Id, outcome: str, body: DecisionIn) -> RequestOut:
    principal = principal_of(request)
    principal.require_scope("approve:access")
    access_request = _get(request, request_id)
    person = person_of(request)
    if person is None:
        # A machine client decides nothing (nor can it sign in with a second factor).
        raise HttpError(403, "decisions are made by people who may decide them")
    # A sensitive role's request needs a fresh multi-factor sign-in: the session's, or the
    # time AUTH0_MFA_CLAIM of the token says; StepUpRequired is the RFC 9470 answer.
    access_request_decide(request_id=access_request.pk, approver=person, outcome=outcome,
                          comment=body.comment, actor=api_actor(request),
                          mfa_at=principal.mfa_at)  # fmt: skip
    return request_out(_requests().get(pk=request_id))


@router.post("/requests/{request_id}/approve", response=RequestOut, summary="Approve")
def requests_approve(request: HttpRequest, request_id: Id, body: DecisionIn) -> RequestOut:
    return _decide(request, request_id, Decision.Outcome.APPROVED, body)


@router.post("/requests/{request_id}/deny", response=RequestOut, summary="Deny")
def requests_deny(request: HttpRequest, request_id: Id, body: DecisionIn) -> RequestOut:
    return _decide(request, request_id, Decision.Outcome.DENIED, body)


@router.post("/requests/{request_id}/cancel", response=RequestOut, summary="Withdraw my request")
def requests_cancel(request: HttpRequest, request_id: Id) -> RequestOut:
    principal_of(request).require_scope("request:access")
    access_request = _get(request, request_id)
    person = person_of(request)
    if person is None:
        raise HttpError(403, "only the person who asked may cancel a request")
    access_request_cancel(request_id=access_request.pk, person=person,
                          actor=api_actor(request))  # fmt: skip
    return request_out(_requests().get(pk=request_id))


class GrantListItem(Schema):
    requestId: int
    sub: str
    email: str
    role: str
    entityRef: str
    state: str
    startsAt: datetime | None
    expiresAt: datetime | None


class GrantList(Schema):
    items: list[GrantListItem]


@router.get("/grants", response=GrantList, summary="Grants the portal made, active first")
def grants_list(request: HttpRequest, state: str | None = None) -> GrantList:
    principal_of(request).require_scope("read:access")
    grants = _requests().filter(state__in=AccessRequest.GRANT_STATES).order_by("expires_at")
    if state:
        grants = grants.filter(state=state)
    grants = _visible(request, grants)
    return GrantList(
        items=[
            GrantListItem(requestId=g.pk, sub=g.requester.sub, email=g.requester.email,
                          role=g.role_name, entityRef=g.entity_ref, state=g.state,
                          startsAt=g.starts_at, expiresAt=g.expires_at)
            for g in grants[:1000]
        ]
    )  # fmt: skip


# --- the audit log ---------------------------------------------------------------------------

audit_router = Router(tags=["audit"])


class AuditEventOut(Schema):
    id: int
    at: datetime
    actor: str
    # The person's name and e-mail as they were then; blank for machines, the portal's jobs and
    # records from before the log kept them.
    actorName: str
    actorEmail: str
    via: str
    action: str
    target: str
    detail: dict[str, Any]
    correlationId: str
    ip: str | None
    userAgent: str


class AuditPageInfo(Schema):
    nextCursor: str | None


class AuditEventList(Schema):
    items: list[AuditEventOut]
    pageInfo: AuditPageInfo


def _cursor(event_id: int) -> str:
    return base64.urlsafe_b64encode(f"before:{event_id}".encode()).decode()


def _before(cursor: str) -> int:
    try:
        prefix, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if prefix != "before" or not 0 < int(value) <= MAX_ID:
            raise ValueError(prefix)
        return int(value)
    except (ValueError, UnicodeDecodeError) as error:
        raise HttpError(400, f"cursor: {cursor!r} is not a cursor this API gave out") from error


@audit_router.get("/events", response=AuditEventList, summary="The audit log, newest first")
def audit_events(
    request: HttpRequest,
    cursor: str | None = None,
    limit: Annotated[int, Field(ge=1, le=1000, description="1 to 1000")] = 100,
    actor: Annotated[
        str | None, Field(description="part of the actor's name or e-mail, or their id")
    ] = None,
    action: str | None = None,
) -> AuditEventList:
    """Cursor-paged: pass `pageInfo.nextCursor` back as `cursor` for the next (older) page."""
    principal_of(request).require_scope("read:audit")
    require_admin_or_machine(
        request, "the audit log is for portal admins and automation with read:audit"
    )
    events = AuditEvent.objects.order_by("-id")
    if cursor:
        events = events.filter(id__lt=_before(cursor))
    if actor:
        events = events.filter(actor_matches(actor))
    if action:
        events = events.filter(action=action)
    page = list(events[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return AuditEventList(
        items=[
            AuditEventOut(id=e.pk, at=e.at, actor=e.actor, actorName=e.actor_name,
                          actorEmail=e.actor_email, via=e.via, action=e.action,
                          target=e.target, detail=e.detail, correlationId=e.correlation_id,
                          ip=e.ip, userAgent=e.user_agent)
            for e in page
        ],
        pageInfo=AuditPageInfo(nextCursor=_cursor(page[-1].pk) if more else None),
    )  # fmt: skip
