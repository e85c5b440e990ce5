"""Reads of the access app: roles and who holds them, who decides, requests, the mirror.

Every read the access pages, API and services compose is here, past 400 lines, so that none
hides in a view; each is short.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Window
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from access.models import (
    AccessRequest,
    AccessReview,
    AccessReviewItem,
    AuditEvent,
    Decision,
    Role,
    RoleMembership,
    RoleSyncRun,
    in_force,
)
from access.policy import (
    DecisionScope,
    Holdings,
    RoleRules,
    ScopeKey,
    Standing,
    Viewer,
    access_through,
    approvals_needed,
    auto_approval_offered,
    break_glass_longest,
    break_glass_refusal,
    longest_grant,
    request_refusal,
    role_refusal,
    standing_of,
    visible_requests,
)
from access.registry import (
    AutoApproveRule,
    RegistryEntry,
    registry_entry_json,
    registry_entry_of,
)
from catalog.annotations import access_annotations
from catalog.models import Entity, EntityRequiredRole, Relation
from catalog.refs import EntityRefError, parse_entity_ref
from catalog.selectors import group_member_refs, user_emails, user_refs_by_email
from portal.models import User


def role_memberships_of(*, user: User) -> list[RoleMembership]:
    """The roles this person holds now, with where each came from and when it ends."""
    return list(user.role_memberships.active().select_related("role").order_by("role__name"))


def role_rules(*, names: Iterable[str]) -> dict[str, RoleRules]:
    """What the registry says of each of these roles (a role the mirror lacks is unknown)."""
    names = set(names)
    found = {role.name: rules_of(role) for role in Role.objects.filter(name__in=names)}
    return {name: found.get(name) or RoleRules(name=name) for name in names}


def rules_of(role: Role) -> RoleRules:
    return RoleRules(
        name=role.name, known=True, gone=role.gone_at is not None, entry=registry_entry_of(role)
    )


def role_conflict_graph() -> dict[str, frozenset[str]]:
    """For each role in a conflict, the roles nobody may hold together with it: those its entry
    names and those whose entries name it (the registry keeps a conflict on both roles; read
    both ways all the same, so one written half still holds). One query."""
    graph: dict[str, set[str]] = {}
    for name, conflicts in Role.objects.exclude(conflicts_with=[]).values_list(
        "name", "conflicts_with"
    ):
        for other in conflicts:
            graph.setdefault(name, set()).add(other)
            graph.setdefault(other, set()).add(name)
    return {name: frozenset(others - {name}) for name, others in graph.items()}


def role_conflicts(*, name: str) -> frozenset[str]:
    return role_conflict_graph().get(name, frozenset())


def holdings_of(*, user: User) -> Holdings:
    """What this person holds in the mirror now and the requests of theirs that stand, read
    from the database (the caller holds the lock on the person): two queries."""
    held = RoleMembership.objects.active().filter(user=user).values_list("role__name", flat=True)
    standing = AccessRequest.objects.open().filter(requester=user)
    return Holdings(
        held=frozenset(held),
        standing={role: (pk, state) for pk, role, state in standing.values_list(
            "pk", "role_name", "state")},
    )  # fmt: skip


@dataclass(frozen=True)
class HeldConflict:
    """Someone who holds two roles nobody may hold together (granted outside Atrium, or before
    the conflict was set): the Roles page flags them, for an admin to end one."""

    user: User
    roles: tuple[str, str]


def conflicts_held(*, role: str | None = None) -> list[HeldConflict]:
    """Every pair of conflicting roles someone holds now (of `role` alone, when given), by
    person; two queries."""
    graph = role_conflict_graph()
    names = set(graph) if role is None else ({role} | graph.get(role, frozenset()))
    if not names:
        return []
    held: dict[int, set[str]] = {}
    people: dict[int, User] = {}
    for membership in (
        RoleMembership.objects.active().filter(role__name__in=names).select_related("user", "role")
    ):
        held.setdefault(membership.user_id, set()).add(membership.role.name)
        people[membership.user_id] = membership.user
    found = []
    for user_id, roles in held.items():
        for first in sorted(roles):
            for second in sorted(roles & graph.get(first, frozenset())):
                if first < second and (role is None or role in (first, second)):
                    found.append(HeldConflict(people[user_id], (first, second)))
    return sorted(found, key=lambda c: (c.roles, c.user.email))


def conflicting_holdings() -> dict[tuple[str, str], list[str]]:
    """For each (holder's sub, role) held together with a role it conflicts with, those roles:
    what the access report flags beside each holding."""
    found: dict[tuple[str, str], set[str]] = {}
    for conflict in conflicts_held():
        first, second = conflict.roles
        found.setdefault((conflict.user.sub, first), set()).add(second)
        found.setdefault((conflict.user.sub, second), set()).add(first)
    return {key: sorted(roles) for key, roles in found.items()}


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


def decision_scopes(*, pairs: Iterable[ScopeKey]) -> dict[ScopeKey, DecisionScope]:
    """Who decides requests for each (entity, role), in a fixed number of queries however many.

    The role's owners decide. The entity's `atrium.dev/approvers` count only where the entity's
    owner is one of the role's owners, and then only narrow the deciders to those of them who
    are among the owners' members: a descriptor's `owner` is its author's claim, so what it
    names can never add a decider the role's owners did not already count.
    """

    pairs = set(pairs)
    entities = {
        entity.ref: entity
        for entity in Entity.objects.filter(ref__in={ref for ref, _ in pairs}).prefetch_related(
            "required_role_rows"
        )
    }
    annotations = {ref: access_annotations(entity.descriptor) for ref, entity in entities.items()}
    rules = role_rules(names={role for _, role in pairs})
    named = {owner for role in rules.values() for owner in role.entry.owners}
    named |= {str(ref).lower() for found in annotations.values() for ref in found.approvers}
    members = group_member_refs(group_refs=named)
    emails = user_emails(user_refs={user for refs in members.values() for user in refs})

    def members_of(refs: Iterable[str]) -> set[str]:
        return {user for ref in refs for user in members.get(ref, ())}

    scopes = {}
    for ref, role in pairs:
        role_rules_ = rules[role]
        entity = entities.get(ref)
        deciders = members_of(role_rules_.entry.owners)
        required, refusal = 1, role_refusal(role_rules_) or ""
        if entity is None:
            refusal = refusal or f"{ref} is no longer in the catalog."
        else:
            found = annotations[ref]
            required = found.approvals_required
            if found.approvers and entity.owner_ref in role_rules_.entry.owners:
                deciders &= members_of(str(approver).lower() for approver in found.approvers)
            declared = {row.role_name for row in entity.required_role_rows.all()}
            if not refusal and role not in declared:
                refusal = f"{ref} no longer requires {role}."
            if not refusal and found.decisions_blocked:
                refusal = f"The approval annotations of {ref} are malformed: " + "; ".join(
                    found.problems
                )
        scopes[ref, role] = DecisionScope(
            role=role,
            owners=role_rules_.entry.owners,
            decider_refs=frozenset(deciders),
            decider_emails=frozenset(emails[user] for user in deciders if emails.get(user)),
            approvals_required=approvals_needed(rules=role_rules_, entity_required=required),
            refusal=refusal,
        )
    return scopes


def decision_scope(*, entity_ref: str, role: str) -> DecisionScope:
    return decision_scopes(pairs=[(entity_ref, role)])[entity_ref, role]


def requests_visible(
    *, viewer: Viewer, requests: QuerySet[AccessRequest]
) -> QuerySet[AccessRequest]:
    """The policy's `visible_requests` of these, with who decides each of them read here."""
    if viewer.is_admin or not viewer.sub:
        return visible_requests(viewer, requests, scopes={})
    pairs = requests.order_by().values_list("entity_ref", "role_name").distinct()
    return visible_requests(viewer, requests, scopes=decision_scopes(pairs=pairs))


def may_decide(*, viewer: Viewer, request: AccessRequest, scope: DecisionScope) -> bool:
    """The policy's answer for this request, given its decision scope."""
    return viewer.may_decide(
        requester_sub=request.requester.sub, requester_email=request.requester.email, scope=scope
    )


def request_standing(*, viewer: Viewer, request: AccessRequest) -> Standing:
    """Where this person stands to the request, with who decides it read here."""
    scope = decision_scope(entity_ref=request.entity_ref, role=request.role_name)
    return standing_of(viewer, request=request, scope=scope)


def requests_to_decide(*, viewer: Viewer) -> list[AccessRequest]:
    """Pending requests this person may decide, oldest first."""
    pending = list(
        AccessRequest.objects.filter(state=AccessRequest.State.PENDING)
        .exclude(requester__sub=viewer.sub)
        .select_related("requester")
        .prefetch_related("decisions__approver")
        .order_by("created_at", "pk")
    )
    scopes = decision_scopes(pairs={(r.entity_ref, r.role_name) for r in pending})
    return [
        r for r in pending
        if may_decide(viewer=viewer, request=r, scope=scopes[r.entity_ref, r.role_name])
        and not viewer.has_decided((d.approver.sub, d.approver.email) for d in r.decisions.all())
    ]  # fmt: skip


@dataclass(frozen=True)
class Waiting:
    """The pending requests a person may decide, as the approvals page lists and filters them."""

    ids: list[int]
    requests: QuerySet[AccessRequest]  # oldest first, with their requesters
    roles: list[str]  # what the page's filters offer
    entities: list[str]


def requests_waiting_for(*, viewer: Viewer) -> Waiting:
    pending = requests_to_decide(viewer=viewer)
    ids = [r.pk for r in pending]
    requests = (
        AccessRequest.objects.filter(pk__in=ids)
        .select_related("requester")
        .order_by("created_at", "pk")
    )
    roles = sorted({r.role_name for r in pending})
    return Waiting(ids, requests, roles, sorted({r.entity_ref for r in pending}))


@dataclass(frozen=True)
class Team:
    """A catalog group a person belongs to, as a page names and links it."""

    ref: str
    name: str
    url: str


@dataclass(frozen=True)
class WaitingRequest:
    """A request waiting for a decision, with what its decider weighs beside it: what the
    entity is, who asks (their teams, the roles they hold already)."""

    request: AccessRequest
    entity_title: str  # the entity's title or name; its ref once the catalog lost it
    entity_url: str  # "" once the catalog lost it
    teams: list[Team]
    roles: list[str]
    sensitive: bool = False  # deciding it needs a fresh multi-factor sign-in


def waiting_details(*, requests: Iterable[AccessRequest]) -> list[WaitingRequest]:
    """The page's requests with their entities, the requesters' teams and roles, and whether
    deciding each needs a second factor: five queries for the page however many rows it holds
    (entities and groups, the requesters' catalog Users, their memberships, their roles, the
    roles' registry entries)."""
    requests = list(requests)
    requesters = {r.requester_id: r.requester for r in requests}
    # Teams as the policy counts them (`person_refs`): only through an e-mail Auth0 verified.
    emails = {u.email.lower() for u in requesters.values() if u.email and u.email_verified}
    user_ref_of = user_refs_by_email(emails=emails)
    memberships = (
        Relation.objects.trusted_memberships()
        .filter(source_ref__in=set(user_ref_of.values()))
        .values_list("source_ref", "target_ref")
    )
    groups_of: dict[str, set[str]] = {}
    for source_ref, target_ref in memberships:
        groups_of.setdefault(source_ref, set()).add(target_ref)
    group_refs = {ref for refs in groups_of.values() for ref in refs}
    entity_refs = {r.entity_ref for r in requests}
    entities = {
        entity.ref: entity
        for entity in Entity.objects.filter(ref__in=entity_refs | group_refs).only(
            "ref", "kind", "namespace", "name", "title"
        )
    }
    held: dict[int, list[str]] = {}
    for user_id, role_name in (
        RoleMembership.objects.active()
        .filter(user_id__in=requesters)
        .order_by("role__name")
        .values_list("user_id", "role__name")
    ):
        held.setdefault(user_id, []).append(role_name)

    rules = role_rules(names={r.role_name for r in requests})

    def team(ref: str) -> Team:
        entity = entities.get(ref)
        return Team(ref, entity.display_name if entity else ref, _page_of(ref))

    rows = []
    for r in requests:
        entity = entities.get(r.entity_ref)
        user_ref = user_ref_of.get(r.requester.email.lower(), "") if r.requester.email else ""
        if not r.requester.email_verified:
            user_ref = ""
        teams = sorted((team(ref) for ref in groups_of.get(user_ref, ())), key=lambda t: t.name)
        rows.append(
            WaitingRequest(
                request=r,
                entity_title=entity.display_name if entity else r.entity_ref,
                entity_url=_page_of(r.entity_ref) if entity else "",
                teams=teams,
                roles=sorted(set(held.get(r.requester_id, []))),
                sensitive=rules[r.role_name].entry.sensitive,
            )
        )
    return rows


def _page_of(ref: str) -> str:
    try:
        return parse_entity_ref(ref).url
    except EntityRefError:
        return ""


def use_reviews_of(*, request: AccessRequest) -> list[AccessReviewItem]:
    """The reviews of this request's use (a break-glass grant's), each as its one holder's row:
    waiting for the owners, kept, or removed."""
    return list(
        AccessReviewItem.objects.filter(
            review__request=request, review__kind=AccessReview.Kind.USE, user=request.requester
        )
        .select_related("review", "decided_by")
        .order_by("review__opened_at", "pk")
    )


def request_timeline(*, request: AccessRequest) -> QuerySet[AuditEvent]:
    """What the audit log holds of this request, oldest first: asked, decided, granted, ended."""
    return AuditEvent.objects.filter(correlation_id=request.correlation_id).order_by("at", "id")


def decisions_by(*, user: User, limit: int = 200) -> QuerySet[Decision]:
    """What this person decided, newest first, with every decision on each request."""
    return (
        Decision.objects.filter(approver=user)
        .select_related("request__requester")
        .prefetch_related("request__decisions__approver")
        .order_by("-at")[:limit]
    )


def count_to_decide(*, viewer: Viewer) -> int:
    """How many pending requests this person may decide, for the navigation bar: the same rule
    as the dashboard, read as plain values (no request objects, no decisions prefetched)."""
    if not viewer.sub:
        return 0
    pending = list(
        AccessRequest.objects.filter(state=AccessRequest.State.PENDING)
        .exclude(requester__sub=viewer.sub)
        .exclude(decisions__approver__sub=viewer.sub)
        .values_list("pk", "entity_ref", "role_name", "requester__sub", "requester__email")
    )
    if not pending:
        return 0
    scopes = decision_scopes(pairs={(ref, role) for _, ref, role, *_ in pending})
    deciding = [
        pk for pk, ref, role, sub, email in pending
        if viewer.may_decide(requester_sub=sub, requester_email=email, scope=scopes[ref, role])
    ]  # fmt: skip
    if not viewer.email or not deciding:
        return len(deciding)
    # Decided already from another account of this person: not waiting for them.
    decided = set(
        AccessRequest.objects.filter(
            pk__in=deciding, decisions__approver__email__iexact=viewer.email
        ).values_list("pk", flat=True)
    )
    return len(set(deciding) - decided)


def requests_of(*, user: User) -> list[AccessRequest]:
    return list(
        AccessRequest.objects.filter(requester=user)
        .prefetch_related("decisions__approver")
        .order_by("-created_at", "-pk")
    )


def open_requests_by_role(*, user: User) -> dict[str, int]:
    """The roles this person's standing requests ask for, each with its request's id (one
    stands per person and role); one query, for a whole page of entities."""
    if not user.is_authenticated:
        return {}
    return dict(AccessRequest.objects.open().filter(requester=user).values_list("role_name", "pk"))


def portal_admin_emails() -> list[str]:
    """Where mail for the portal's admins goes: holders of the admin role now."""
    admins = User.objects.filter(
        in_force("role_memberships__"),
        role_memberships__role__name=settings.PORTAL_ADMIN_ROLE,
        is_active=True,
    ).exclude(email="")
    return sorted(set(admins.values_list("email", flat=True)))


def accounts_to_check() -> QuerySet[User]:
    """People who may still hold a live session (signed in within SESSION_LIFETIME), and those
    the sync shut out as blocked, who come back in when Auth0 unblocks them. Bounded by how
    many people signed in lately, not by the tenant's size."""
    since = timezone.now() - settings.SESSION_LIFETIME
    return User.objects.filter(
        Q(is_active=True, last_login__gte=since) | Q(auth0_state=User.Auth0State.BLOCKED)
    ).only("sub", "is_active", "auth0_state")


def access_request_longest(*, entity: Entity, role: str) -> timedelta:
    """The longest grant of this role a request on this entity may ask for."""
    declared = access_annotations(entity.descriptor).max_access_duration
    return longest_grant(rules=role_rules(names=[role])[role], entity_max=declared)


def decided_by(*, request_ids: Iterable[int], person: User) -> dict[str, int]:
    """How many of these requests someone decided before this person could, by who ("decided by
    Grace Hopper", "decided by you"), or by what they became without a decision ("cancelled").
    Two queries however many."""
    requests = AccessRequest.objects.filter(pk__in=set(request_ids)).prefetch_related(
        "decisions__approver"
    )
    counts: dict[str, int] = {}
    for request in requests:
        decisions = sorted(request.decisions.all(), key=lambda d: (d.at, d.pk))
        if decisions:
            last = decisions[-1].approver
            who = "you" if last.pk == person.pk else str(last)
            how = f"decided by {who}"
        else:
            how = request.get_state_display().lower()
        counts[how] = counts.get(how, 0) + 1
    return counts


def already_decided_message(request: AccessRequest) -> str:
    last = request.decisions.select_related("approver").last()
    if last is not None:
        return f"This request was already {last.outcome} by {last.approver}."
    return f"This request is {request.get_state_display()} already."


def grants_stuck() -> list[int]:
    """Grants left approved or provisioning longer than ACCESS_RECONCILE_AFTER: a worker died
    or a message was lost. The reconciler queues them again."""
    cutoff = timezone.now() - settings.ACCESS_RECONCILE_AFTER
    return list(
        AccessRequest.objects.filter(
            state__in=[AccessRequest.State.APPROVED, AccessRequest.State.PROVISIONING],
            updated_at__lt=cutoff,
        ).values_list("pk", flat=True)
    )


def role_registry_changes(*, role: Role, entry: RegistryEntry) -> dict[str, dict[str, Any]]:
    """What setting this entry would change on the role: {field: {"from": …, "to": …}}."""
    before, after = registry_entry_json(registry_entry_of(role)), registry_entry_json(entry)
    return {
        name: {"from": before[name], "to": after[name]}
        for name in after
        if before[name] != after[name]
    }


@dataclass(frozen=True)
class RoleChoice:
    """A role the entity requires, with who decides it or the rule that stops a request, and
    what asking for it will do: approved at once by a rule (and on what terms), how many
    approvals it needs, whether the approver confirms with a second factor."""

    name: str
    owners: tuple[str, ...]
    refusal: str | None
    auto_rules: tuple[AutoApproveRule, ...] = ()
    approvals: int = 1
    sensitive: bool = False


@dataclass(frozen=True)
class BreakGlassChoice:
    """A role this person may break glass for on this entity, and for how long at most."""

    name: str
    longest: timedelta


@dataclass(frozen=True)
class Asking:
    """What the request form offers one person for one entity."""

    open_requests: dict[str, AccessRequest]  # by role: asked already, not yet ended
    choices: list[RoleChoice]
    askable: list[str]
    chosen: str  # the role the form starts with; "" when none may be asked for
    deciders: tuple[str, ...]  # the chosen role's owners
    longest: timedelta | None  # of a grant of the chosen role
    held: list[str]
    ending: frozenset[str]
    extending: AccessRequest | None  # the grant a reminder's link asks to extend
    break_glass: list[BreakGlassChoice]


def asking(
    *, viewer: Viewer, user: User, entity: Entity, wanted: str, extend: int | None
) -> Asking:
    """The roles `entity` requires as this person may ask for them, `wanted` chosen when they
    may; `extend`: the id of one of their requests for it, to fill the form in from."""
    required = [row.role_name for row in entity.required_role_rows.all()]
    open_requests = {
        r.role_name: r
        for r in AccessRequest.objects.open().filter(requester=user, role_name__in=required)
    }
    scopes = decision_scopes(pairs=[(entity.ref, role) for role in required])
    rules = role_rules(names=required)
    choices = [
        RoleChoice(role, scopes[entity.ref, role].owners,
                   request_refusal(viewer, entity, role, scopes[entity.ref, role]),
                   auto_rules=tuple(auto_approval_offered(viewer, rules=rules[role])),
                   approvals=scopes[entity.ref, role].approvals_required,
                   sensitive=rules[role].entry.sensitive)
        for role in required if role not in open_requests
    ]  # fmt: skip
    glass = [
        BreakGlassChoice(role, break_glass_longest(rule=rule, rules=rules[role]))
        for role in required
        if (rule := rules[role].entry.break_glass) is not None
        and not break_glass_refusal(viewer, entity=entity, rules=rules[role],
                                    duration=timedelta(minutes=1), reason="asked")
    ]  # fmt: skip
    askable = [choice.name for choice in choices if not choice.refusal]
    chosen = wanted if wanted in askable else (askable[0] if askable else "")
    extending = (
        AccessRequest.objects.filter(
            pk=extend, requester=user, role_name=wanted, entity_ref=entity.ref
        ).first()
        if extend is not None
        else None
    )
    return Asking(
        open_requests=open_requests, choices=choices, askable=askable, chosen=chosen,
        deciders=scopes[entity.ref, chosen].owners if chosen else (),
        longest=access_request_longest(entity=entity, role=chosen) if chosen else None,
        held=[role for role in required if role in viewer.held_roles],
        ending=viewer.ending_roles & set(required), extending=extending, break_glass=glass,
    )  # fmt: skip


# --- an entity's access, for its page --------------------------------------------------------

# An entity's page names this many holders of each role and this many waiting requests; a role
# held by thousands is counted, not listed.
HOLDERS_SHOWN = 25
WAITING_SHOWN = 20


@dataclass(frozen=True)
class RoleAccess:
    """One role an entity requires, as it stands for the person looking at the entity."""

    name: str
    owners: tuple[str, ...]  # the role's owner groups, who decide
    gone: bool  # deleted in Auth0
    held: RoleMembership | None  # the person's own, with its end and source
    grant: AccessRequest | None  # the portal grant behind it, active: asking again extends it
    open_request: AccessRequest | None  # asked for already, not yet ended
    refusal: str  # why no request is offered (the policy's words); "" when one is
    holders: list[RoleMembership] | None = None  # None: not for this person to see
    holders_total: int = 0

    @property
    def state(self) -> str:
        """gone, held, asked, refused or askable: what the page says first."""
        if self.gone:
            return "gone"
        if self.held is not None:
            return "held"
        if self.open_request is not None:
            return "asked"
        return "refused" if self.refusal else "askable"

    @property
    def extendable(self) -> bool:
        """Held through a grant that ends, and the policy would take a request again."""
        return self.held is not None and self.held.expires_at is not None and not self.refusal


@dataclass(frozen=True)
class EntityAccess:
    """What an entity's page says of access: each required role, and what waits on them."""

    roles: list[RoleAccess]
    through: list[str]  # the required roles the person holds: each gives access
    waiting: list[AccessRequest] | None  # None: they see no role's holders, nor its requests
    waiting_total: int = 0


def entity_access(*, viewer: Viewer, user: User, entity: Entity) -> EntityAccess:
    """Each role `entity` requires as it stands for this person (held until when, asked,
    refused and why, or theirs to ask for), and, for the roles whose holders the policy
    shows them, who holds it and the requests waiting. A fixed number of queries."""
    required = [row.role_name for row in entity.required_role_rows.all()]
    if not required:
        return EntityAccess(roles=[], through=[], waiting=None)
    scopes = decision_scopes(pairs=[(entity.ref, role) for role in required])
    gone = gone_role_names(names=required)
    held = {
        membership.role.name: membership
        for membership in user.role_memberships.active()
        .filter(role__name__in=required)
        .select_related("role")
    }
    grants: dict[str, AccessRequest] = {}
    open_requests: dict[str, AccessRequest] = {}
    mine = AccessRequest.objects.filter(
        requester=user,
        role_name__in=required,
        state__in=[*AccessRequest.OPEN_STATES, AccessRequest.State.ACTIVE],
    ).order_by("created_at", "pk")
    for request in mine:
        found = grants if request.state == AccessRequest.State.ACTIVE else open_requests
        found[request.role_name] = request  # the latest, should there be several
    shown = [
        role
        for role in required
        if viewer.may_see_holders(owner_ref=entity.owner_ref, scope=scopes[entity.ref, role])
    ]
    holders = role_holders(roles=shown)
    roles = [
        RoleAccess(
            name=role,
            owners=scopes[entity.ref, role].owners,
            gone=role in gone,
            held=held.get(role),
            grant=grants.get(role),
            open_request=open_requests.get(role),
            refusal=request_refusal(viewer, entity, role, scopes[entity.ref, role]) or "",
            holders=holders[role][0] if role in shown else None,
            holders_total=holders[role][1] if role in shown else 0,
        )
        for role in required
    ]
    if not shown:
        return EntityAccess(roles=roles, through=access_through(viewer, required_roles=required),
                            waiting=None)  # fmt: skip
    pending = visible_requests(
        viewer,
        AccessRequest.objects.filter(
            entity_ref=entity.ref, role_name__in=shown, state=AccessRequest.State.PENDING
        ),
        scopes=scopes,
    )
    # How many wait in all, counted before the page's few are taken, in the same query.
    waiting: list[AccessRequest] = list(
        pending.select_related("requester")
        .annotate(waiting_total=Window(Count("pk")))
        .order_by("created_at", "pk")[:WAITING_SHOWN]
    )
    total = getattr(waiting[0], "waiting_total", 0) if waiting else 0
    return EntityAccess(
        roles=roles,
        through=access_through(viewer, required_roles=required),
        waiting=waiting,
        waiting_total=total,
    )


def role_holders(*, roles: Iterable[str]) -> dict[str, tuple[list[RoleMembership], int]]:
    """For each of these roles, the first HOLDERS_SHOWN memberships in force (by e-mail), with
    their people, and how many there are: one query however many hold them."""
    roles = list(roles)
    found: dict[str, tuple[list[RoleMembership], int]] = {role: ([], 0) for role in roles}
    if not roles:
        return found
    ranked = (
        RoleMembership.objects.active()
        .filter(role__name__in=roles)
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("role_id")],
                order_by=[F("user__email").asc(), F("pk").asc()],
            ),
            total=Window(Count("pk"), partition_by=[F("role_id")]),
        )  # fmt: skip
        .filter(rank__lte=HOLDERS_SHOWN)
        .select_related("user", "role")
        .order_by("role__name", "rank")
    )
    for membership in ranked:
        listed, _ = found[membership.role.name]
        listed.append(membership)
        found[membership.role.name] = (listed, membership.total)  # type: ignore[attr-defined]
    return found
