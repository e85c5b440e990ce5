"""Reads of the access app."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from access.models import AccessRequest, Role, RoleMembership, RoleSyncRun, in_force
from portal.models import User

if TYPE_CHECKING:
    from access.policy import Viewer


def role_memberships_of(*, user: User) -> list[RoleMembership]:
    """The roles this person holds now, with where each came from and when it ends."""
    return list(user.role_memberships.active().select_related("role").order_by("role__name"))


def role_names_held(*, user: User) -> list[str]:
    """Names of the roles this person holds now."""
    if not user.is_authenticated:
        return []
    return sorted(
        RoleMembership.objects.active().filter(user=user).values_list("role__name", flat=True)
    )


def roles_with_member_counts() -> QuerySet[Role]:
    """Every mirrored role with `member_count`: the memberships in force now."""
    counted = Count("memberships", filter=in_force("memberships__"))
    return Role.objects.annotate(member_count=counted).order_by("name")


def role_members(*, role: Role) -> QuerySet[RoleMembership]:
    """Who holds the role now, by e-mail."""
    return (
        RoleMembership.objects.active()
        .filter(role=role)
        .select_related("user")
        .order_by("user__email", "pk")
    )


def roles_page() -> QuerySet[Role]:
    """Every mirrored role with `member_count` and `declared_by`: the catalog entities that
    require it (for a role deleted in Auth0, the entities to fix)."""
    from catalog.models import EntityRequiredRole

    declared = (
        EntityRequiredRole.objects.filter(role_name=OuterRef("name"))
        .order_by()
        .values("role_name")
        .annotate(n=Count("*"))
        .values("n")
    )
    return roles_with_member_counts().annotate(
        declared_by=Coalesce(Subquery(declared, output_field=IntegerField()), 0)
    )


def gone_role_names(*, names: Iterable[str]) -> set[str]:
    """Which of these roles a sync found deleted in Auth0."""
    names = list(names)
    if not names:
        return set()
    return set(
        Role.objects.filter(name__in=names, gone_at__isnull=False).values_list("name", flat=True)
    )


def entities_declaring(*, role_name: str) -> list[tuple[str, str]]:
    """(ref, display name) of the catalog entities that require this role."""
    from catalog.models import Entity

    return list(
        Entity.objects.filter(required_role_rows__role_name=role_name)
        .order_by("ref")
        .values_list("ref", "name")
    )


@dataclass(frozen=True)
class MirrorState:
    """How current the roles mirror is, for admins' pages and `/readyz`."""

    last_synced_at: datetime | None
    age_seconds: float | None
    stale: bool
    stale_reason: str
    # The latest finished run, when the breaker stopped it: admins are told until a run applies.
    blocked_run: RoleSyncRun | None


def mirror_state() -> MirrorState:
    """Stale when the last sync that applied is older than three intervals, or, never having
    synced, when syncs have been failing for that long."""
    limit = 3 * settings.ROLE_SYNC_INTERVAL
    now = timezone.now()
    last_ok = (
        RoleSyncRun.objects.filter(outcome=RoleSyncRun.Outcome.OK)
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)
        .first()
    )
    blocked = blocked_sync()
    if last_ok is not None:
        age = (now - last_ok).total_seconds()
        stale = age > limit
        reason = f"the roles mirror was last synced {age:.0f} s ago" if stale else ""
        return MirrorState(last_ok, age, stale, reason, blocked)
    first = RoleSyncRun.objects.order_by("started_at").values_list("started_at", flat=True).first()
    stale = first is not None and (now - first).total_seconds() > limit
    reason = "the roles mirror has never been synced successfully" if stale else ""
    return MirrorState(None, None, stale, reason, blocked)


def blocked_sync() -> RoleSyncRun | None:
    """The latest finished sync, if the breaker stopped it: admins are told until one applies."""
    latest = RoleSyncRun.objects.exclude(outcome=RoleSyncRun.Outcome.RUNNING).first()
    return latest if latest and latest.outcome == RoleSyncRun.Outcome.BLOCKED else None


def sync_history(*, limit: int = 20) -> list[RoleSyncRun]:
    return list(RoleSyncRun.objects.order_by("-started_at")[:limit])


# --- access requests -------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionScope:
    """Who decides requests on one entity: the refs named (approvers, else the owner), the
    e-mails of the catalog Users those are or hold, and whether decisions are blocked."""

    deciders: tuple[str, ...]
    decider_emails: frozenset[str]
    declared_roles: frozenset[str]
    blocked: bool

    def others_than(self, email: str) -> bool:
        return bool(self.decider_emails - {email.lower()})


def decision_scopes(*, entity_refs: Iterable[str]) -> dict[str, DecisionScope]:
    """The decision scope of each entity, in a fixed number of queries however many."""
    from catalog.annotations import access_annotations
    from catalog.models import Entity, Relation

    entities = list(
        Entity.objects.filter(ref__in=set(entity_refs)).prefetch_related("required_role_rows")
    )
    named: dict[str, tuple[str, ...]] = {}
    blocked: dict[str, bool] = {}
    for entity in entities:
        annotations = access_annotations(entity.descriptor)
        refs = tuple(str(ref).lower() for ref in annotations.approvers)
        named[entity.ref] = refs or ((entity.owner_ref,) if entity.owner_ref else ())
        blocked[entity.ref] = annotations.decisions_blocked
    all_named = {ref for refs in named.values() for ref in refs}
    members: dict[str, set[str]] = {ref: {ref} for ref in all_named}
    for source, target in Relation.objects.filter(
        type="memberOf", target_ref__in=all_named
    ).values_list("source_ref", "target_ref"):
        members[target].add(source)
    user_refs = {ref for refs in members.values() for ref in refs}
    emails = {
        ref: (email or "").lower()
        for ref, email in Entity.objects.filter(ref__in=user_refs, kind__iexact="user").values_list(
            "ref", "descriptor__spec__profile__email"
        )
    }
    return {
        entity.ref: DecisionScope(
            deciders=named[entity.ref],
            decider_emails=frozenset(
                emails[user]
                for ref in named[entity.ref]
                for user in members.get(ref, ())
                if emails.get(user)
            ),
            declared_roles=frozenset(row.role_name for row in entity.required_role_rows.all()),
            blocked=blocked[entity.ref],
        )  # fmt: skip
        for entity in entities
    }


def may_decide(*, viewer: Viewer, request: AccessRequest, scope: DecisionScope | None) -> bool:
    """The policy's answer for this request, given its entity's decision scope."""
    if scope is None:  # the entity left the catalog: nobody decides on it
        return False
    return viewer.may_decide(
        requester_sub=request.requester.sub,
        deciders=scope.deciders,
        others_can_decide=scope.others_than(request.requester.email),
        role_still_declared=request.role_name in scope.declared_roles,
        blocked=scope.blocked,
    )


@dataclass(frozen=True)
class Standing:
    """Where a person stands to one request."""

    asked: bool
    decides_entity: bool  # named to decide on its entity (approvers, else the owner group)
    may_decide: bool  # may decide this request now (admins too, when nobody else can)
    is_admin: bool

    @property
    def may_see(self) -> bool:
        return self.asked or self.decides_entity or self.is_admin

    @property
    def may_revoke(self) -> bool:
        return self.decides_entity or self.is_admin


def request_standing(*, viewer: Viewer, request: AccessRequest) -> Standing:
    scope = decision_scopes(entity_refs=[request.entity_ref]).get(request.entity_ref)
    return Standing(
        asked=bool(viewer.sub) and request.requester.sub == viewer.sub,
        decides_entity=scope is not None and viewer.is_decider(deciders=scope.deciders),
        may_decide=may_decide(viewer=viewer, request=request, scope=scope),
        is_admin=viewer.is_admin,
    )


def requests_to_decide(*, viewer: Viewer) -> list[AccessRequest]:
    """Pending requests this person may decide, oldest first."""
    pending = list(
        AccessRequest.objects.filter(state=AccessRequest.State.PENDING)
        .exclude(requester__sub=viewer.sub)
        .select_related("requester")
        .prefetch_related("decisions__approver")
        .order_by("created_at", "pk")
    )
    scopes = decision_scopes(entity_refs={r.entity_ref for r in pending})
    return [
        r for r in pending
        if may_decide(viewer=viewer, request=r, scope=scopes.get(r.entity_ref))
        and not any(d.approver.sub == viewer.sub for d in r.decisions.all())
    ]  # fmt: skip


def count_to_decide(*, viewer: Viewer) -> int:
    """How many pending requests this person may decide, for the navigation bar: the same rule
    as the dashboard, read as plain values (no request objects, no decisions prefetched)."""
    if not viewer.sub:
        return 0
    pending = list(
        AccessRequest.objects.filter(state=AccessRequest.State.PENDING)
        .exclude(requester__sub=viewer.sub)
        .exclude(decisions__approver__sub=viewer.sub)
        .values_list("entity_ref", "role_name", "requester__sub", "requester__email")
    )
    if not pending:
        return 0
    scopes = decision_scopes(entity_refs={ref for ref, *_ in pending})
    waiting = 0
    for ref, role, sub, email in pending:
        scope = scopes.get(ref)
        if scope is not None and viewer.may_decide(
            requester_sub=sub, deciders=scope.deciders,
            others_can_decide=scope.others_than(email),
            role_still_declared=role in scope.declared_roles, blocked=scope.blocked,
        ):  # fmt: skip
            waiting += 1
    return waiting


def requests_of(*, user: User) -> list[AccessRequest]:
    return list(
        AccessRequest.objects.filter(requester=user)
        .prefetch_related("decisions__approver")
        .order_by("-created_at", "-pk")
    )


def portal_admin_emails() -> list[str]:
    """Where mail for the portal's admins goes: holders of the admin role now."""
    admins = User.objects.filter(
        in_force("role_memberships__"),
        role_memberships__role__name=settings.PORTAL_ADMIN_ROLE,
        is_active=True,
    ).exclude(email="")
    return sorted(set(admins.values_list("email", flat=True)))
