"""The one place that decides who may do what. Pages, the API, templates and tasks ask here.

Every answer starts from a `Viewer`: a person's roles (from the mirror), the catalog Users and
groups they are, and whether they administer the portal, read once per request (and kept
between requests in Redis by `access.viewers` until something that decides them changes). The
Django authentication backend in `access.backends` gives the same answers to `user.has_perm()`.
Every rule is here (who sees, asks, decides, and the registry's policies: separation of duties,
auto-approval, break-glass, step-up), which is why this module is long.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet

from access.models import AccessRequest, RoleMembership
from access.registry import AutoApproveRule, BreakGlassRule, RegistryEntry
from access.viewers import ViewerParts, viewer_parts
from catalog.models import Entity, EntityRequiredRole
from portal.auth.bearer import Principal
from portal.durations import duration_words
from portal.models import User

# The permissions `user.has_perm` answers from this module (see access.backends).
ADMINISTER_PORTAL = "access.administer_portal"
SEE_RESTRICTED = "catalog.see_restricted"  # with the Entity
REQUEST_ACCESS = "access.request_access"  # with the Entity


# Who owns what is for everyone, as the owner field is; every other relation is a detail of
# the entity that declared it (its origin), wherever it is shown.
PUBLIC_RELATIONS = ("ownedBy", "ownerOf")


@dataclass(frozen=True)
class Viewer:
    """What the policy needs to know of whoever is looking, gathered once per request."""

    sub: str = ""
    held_roles: frozenset[str] = frozenset()
    user_refs: frozenset[str] = frozenset()
    group_refs: frozenset[str] = frozenset()
    is_admin: bool = False
    # Lower-cased, verified or not: to tell two accounts of one person apart from two people.
    email: str = ""
    # Held through a portal grant that ends: asking again extends it.
    ending_roles: frozenset[str] = frozenset()

    @property
    def owner_refs(self) -> frozenset[str]:
        """What an entity's `spec.owner` names when this person owns it: one of their groups,
        or the catalog User that is them (Backstage allows either as owner)."""
        return self.user_refs | self.group_refs

    def may_see_restricted(
        self, *, restricted: bool, required_roles: Iterable[str], owner_ref: str
    ) -> bool:
        """Links, annotations, spec details and definitions of an entity: for holders of a
        required role, its owners and portal admins. An entity that requires no role is open.

        `restricted` is the entity's own flag, not "it lists a role": an annotation whose
        every role was malformed names none, and the entity stays closed (owners and admins)
        as the `may_see_restricted_q` filter keeps it.
        """
        if not restricted or self.is_admin or set(required_roles) & self.held_roles:
            return True
        return bool(owner_ref) and owner_ref in self.owner_refs

    def may_see_restricted_q(self) -> Q:
        """The same rule as a filter on catalog entities, for lists of them."""

        if self.is_admin:
            return Q()
        return Q(restricted=False) | self.restricted_opened_q()

    def restricted_opened_q(self) -> Q:
        """Of the restricted entities, those the rule above opens to this person: every one
        for an admin (an empty Q), none (a Q that matches nothing, which Django answers
        without asking the database) for someone with no role and no group."""
        if self.is_admin:
            return Q()
        if not self.held_roles and not self.owner_refs:
            return Q(pk__in=[])
        holds_a_required_role = EntityRequiredRole.objects.filter(
            role_name__in=self.held_roles
        ).values("entity_id")
        return Q(pk__in=holds_a_required_role) | Q(owner_ref__in=self.owner_refs)

    def may_see_relation_q(self, *, probing_origins: bool = False) -> Q:
        """The relations (catalog.Relation) this person may see, on any page or in the API:
        ownership, and those declared by an entity whose details they may see, by the rule
        of `may_see_restricted_q` asked of the relation's origin. `kafka-cluster dependencyOf
        payments-api` comes from payments-api's `dependsOn`, a detail of payments-api.

        The same rule comes in two shapes for PostgreSQL's planner. By default the origin is
        joined: right for counting or filtering over many relations. `probing_origins` is for
        the relations of a few given entities (a page, an API answer): ownership needs no
        look-up, and any other relation's origin is looked up by primary key inside an OR,
        which PostgreSQL keeps as a probe per relation instead of reading the whole entity
        table into a hash (the relations of a page of 50 APIs: 4.9 to 2.2 ms at 10,000
        entities, 5.8 to 2.8 ms at 100,000). The join shape priced those probes for every
        relation of a type (a facet over 100,000 took half a second instead of a quarter)."""

        if self.is_admin:
            return Q()
        if probing_origins:
            opened = Q(restricted=False)
            if self.held_roles:
                opened |= Q(
                    Exists(
                        EntityRequiredRole.objects.filter(
                            entity_id=OuterRef("pk"), role_name__in=self.held_roles
                        )
                    )
                )
            if self.owner_refs:
                opened |= Q(owner_ref__in=self.owner_refs)
            origin_opened = Entity.objects.filter(opened, pk=OuterRef("origin_id"))
            return Q(type__in=PUBLIC_RELATIONS) | Q(Exists(origin_opened))
        visible = Q(type__in=PUBLIC_RELATIONS) | Q(origin__restricted=False)
        if self.held_roles:
            # Asked per relation through the index on (entity, role): a page's relations are
            # a few dozen, where the entities holding a role may be tens of thousands.
            holds = EntityRequiredRole.objects.filter(
                entity_id=OuterRef("origin_id"), role_name__in=self.held_roles
            )
            visible |= Q(Exists(holds))
        if self.owner_refs:
            visible |= Q(origin__owner_ref__in=self.owner_refs)
        return visible

    def is_person(self, *, sub: str, email: str) -> bool:
        """Is the account `sub`, or another account of the same person? Two Auth0 accounts
        with one e-mail resolve to the same catalog User, so they are one person: one of them
        may not approve what the other asked for, nor approve twice. Any e-mail counts here,
        verified or not: treating a stranger as oneself only ever refuses."""
        if not self.sub:
            return False
        return sub == self.sub or bool(email and self.email and email.lower() == self.email)

    def has_decided(self, approvers: Iterable[tuple[str, str]]) -> bool:
        """Among these (sub, e-mail) deciders already, from this or another account: a
        request waits for nobody twice."""
        return any(self.is_person(sub=sub, email=email) for sub, email in approvers)

    def decides(self, scope: DecisionScope) -> bool:
        """One of the people who decide requests for this role from this entity."""
        return bool(self.user_refs & scope.decider_refs)

    def may_decide(self, *, requester_sub: str, requester_email: str, scope: DecisionScope) -> bool:
        """May this person approve or deny a request?

        Never the requester, nor another account of theirs, whatever roles they hold. Otherwise
        the role's owners (narrowed by the entity's `atrium.dev/approvers` where the entity's
        owner is one of them), and portal admins when no owner other than the requester can
        decide. Nobody decides when the scope says why not (a protected role, one without
        owners, no longer declared, or malformed approval annotations).
        """
        if not self.sub or scope.refusal:
            return False
        if self.is_person(sub=requester_sub, email=requester_email):
            return False
        if self.decides(scope):
            return True
        return self.is_admin and not scope.others_than(requester_email)

    def may_see_request(self, *, requester_sub: str, scope: DecisionScope) -> bool:
        """The requester, the role's deciders and portal admins see a request."""
        return bool(self.sub) and (
            requester_sub == self.sub or self.decides(scope) or self.is_admin
        )

    def may_revoke(self, scope: DecisionScope) -> bool:
        """The role's deciders and portal admins end a grant early."""
        return self.decides(scope) or self.is_admin

    def may_see_holders(self, *, owner_ref: str, scope: DecisionScope) -> bool:
        """Who holds a role an entity requires, on that entity's page: its owners (they answer
        for who uses it), the role's deciders from it (they said yes) and portal admins.
        Everyone else sees only their own standing; the whole membership of a role stays with
        `is_admin_or_machine`."""
        if self.is_admin or self.decides(scope):
            return True
        return bool(owner_ref) and owner_ref in self.owner_refs


def protected_roles() -> frozenset[str]:
    """Roles never requested nor granted through Atrium: PORTAL_ADMIN_ROLE and
    ACCESS_PROTECTED_ROLES."""
    return frozenset(settings.ACCESS_PROTECTED_ROLES) | {settings.PORTAL_ADMIN_ROLE}


@dataclass(frozen=True)
class RoleRules:
    """A role as the policy reads it: whether the mirror knows it, and its registry entry."""

    name: str
    known: bool = False  # in the portal's mirror of Auth0's roles
    gone: bool = False  # deleted in Auth0
    entry: RegistryEntry = RegistryEntry()


def role_refusal(rules: RoleRules) -> str | None:
    """Why nobody can be granted this role through Atrium now; None when they can."""
    name = rules.name
    if name in protected_roles():
        return f"{name} is protected: it is never requested or granted through Atrium."
    if not rules.known:
        return f"{name} is not a role the portal knows in Auth0."
    if rules.gone:
        return f"{name} was deleted in Auth0: nobody can be granted it."
    if not rules.entry.owners:
        return (
            f"Nobody owns {name} in Atrium yet, so nobody could approve a request: a portal "
            "admin sets its owners on the Roles page."
        )
    if not rules.entry.requestable:
        return f"The owners of {name} do not take requests for it."
    return None


def registry_refusal(*, name: str, entry: RegistryEntry, known: Iterable[str]) -> str | None:
    """Why this registry entry may not be set on the role `name`; None when it may. `known`:
    the roles the mirror holds, which a conflict must name.

    Break-glass and auto-approval never apply to a protected role (PORTAL_ADMIN_ROLE,
    ACCESS_PROTECTED_ROLES), which Atrium never grants: refused here when they are set, and
    again when they would be used."""
    if name in protected_roles():
        if entry.break_glass is not None:
            return f"breakGlass: {name} is protected: never granted, even in an emergency"
        if entry.auto_approve:
            return f"autoApprove: {name} is protected: Atrium never grants it"
    missing = sorted(set(entry.conflicts_with) - set(known))
    if missing:
        return (
            f"conflictsWith: no role {', '.join(missing)} in the portal's mirror "
            "(run `python manage.py sync_roles` first)"
        )
    return None


def grant_refusal(*, role_name: str) -> str | None:
    """Why a grant of this role must not be carried into Auth0, whatever was approved."""
    if role_name in protected_roles():
        return f"{role_name} is protected: Atrium never grants it."
    return None


def longest_grant(*, rules: RoleRules, entity_max: timedelta | None) -> timedelta:
    """The longest grant of this role from this entity: the smallest of the entity's, the
    role's and the portal's ACCESS_MAX_DURATION (itself at most a year)."""
    return min(
        limit
        for limit in (entity_max, rules.entry.max_duration, settings.ACCESS_MAX_DURATION)
        if limit is not None
    )


def approvals_needed(*, rules: RoleRules, entity_required: int) -> int:
    """An entity's `approvals-required` raises the role's minimum, never lowers it."""
    return max(rules.entry.min_approvals, entity_required)


def distinct_people(approvers: Iterable[tuple[str, str]]) -> int:
    """How many people these (sub, e-mail) accounts are: accounts sharing an e-mail are one."""
    return len({email.lower() if email else f"sub:{sub}" for sub, email in approvers})


@dataclass(frozen=True)
class DecisionScope:
    """Who decides requests for one role asked from one entity, and whether anyone may now."""

    role: str
    # The role's owner groups, shown as "decided by …".
    owners: tuple[str, ...]
    # The catalog Users who decide: the owners' members, or those of the entity's approvers
    # who are among them when the entity's owner is one of the role's owners.
    decider_refs: frozenset[str]
    decider_emails: frozenset[str]
    approvals_required: int
    # Why nobody decides now; empty when the deciders may.
    refusal: str = ""

    def others_than(self, email: str) -> bool:
        """Someone other than the person with this e-mail can decide."""
        return bool(self.decider_emails - {email.lower()})


def access_through(viewer: Viewer, *, required_roles: Iterable[str]) -> list[str]:
    """The roles among those an entity requires that this person holds: any one of them gives
    access to it (`may_see_restricted`), so another of them would give nothing more."""
    return sorted(set(required_roles) & viewer.held_roles)


def request_refusal(viewer: Viewer, entity: Entity, role: str, scope: DecisionScope) -> str | None:
    """Why this person may not ask for this role on this entity; None when they may.

    The entity must declare the role; the person must not have access already: not hold the
    role without an end (a grant that ends may be extended by asking again), nor hold another
    role the entity declares (any one gives access; while each of those ends, the role held
    may still be extended); someone must be able to decide it (the registry allows it to be
    granted: an owner, not protected, requestable; the entity's approval annotations are
    sound). `scope`: who decides this (entity, role), as access.selectors reads it.
    """
    if not viewer.sub:
        return "Sign in to ask for access."
    required = [row.role_name for row in entity.required_role_rows.all()]
    if role not in required:
        needs = ", ".join(required) or "no role"
        return f"{entity.ref} does not require {role!r}; it requires {needs}"
    if role in viewer.held_roles and role not in viewer.ending_roles:
        return f"You hold {role} already, with no end."
    through = [other for other in access_through(viewer, required_roles=required) if other != role]
    lasting = [other for other in through if other not in viewer.ending_roles]
    if lasting or (through and role not in viewer.held_roles):
        held = " and ".join(lasting or through)
        if lasting:
            return f"You have access through {held} already."
        return f"You have access through {held} already, until it ends: extend that instead."
    return scope.refusal or None


@dataclass(frozen=True)
class AccessState:
    """How a person stands with an entity's roles, as a list of entities shows it."""

    state: str  # "held", "pending" or "" (neither, or the entity requires no role)
    request_id: int | None = None  # the standing request, when pending


def access_state(
    viewer: Viewer, *, required_roles: Iterable[str], open_requests: Mapping[str, int]
) -> AccessState:
    """Held when the person holds one of the roles the entity requires (any one of them opens
    it); else pending when they asked for one of them and the request still stands, wherever
    they asked it (`open_requests`: role name to request id, as access.selectors reads them)."""
    required = sorted(set(required_roles))
    if access_through(viewer, required_roles=required):
        return AccessState("held")
    for role in required:
        if role in open_requests:
            return AccessState("pending", open_requests[role])
    return AccessState("")


@dataclass(frozen=True)
class Standing:
    """Where a person stands to one request."""

    asked: bool
    may_see: bool
    may_decide: bool  # may decide this request now (admins too, when nobody else can)
    may_revoke: bool
    is_admin: bool
    state: str = ""  # the request's, for what its page offers now

    @property
    def offers_decision(self) -> bool:
        return self.may_decide and self.state == AccessRequest.State.PENDING

    @property
    def offers_cancel(self) -> bool:
        """Only the person who asked withdraws a request, before anyone decided it."""
        return self.asked and self.state == AccessRequest.State.PENDING

    @property
    def offers_retry(self) -> bool:
        """Portal admins carry a failed grant into Auth0 again."""
        return self.is_admin and self.state == AccessRequest.State.FAILED

    @property
    def offers_revoke(self) -> bool:
        return self.may_revoke and self.state == AccessRequest.State.ACTIVE


def standing_of(viewer: Viewer, *, request: AccessRequest, scope: DecisionScope) -> Standing:
    """Where this person stands to the request, given who decides it."""
    requester = request.requester
    return Standing(
        asked=bool(viewer.sub) and requester.sub == viewer.sub,
        may_see=viewer.may_see_request(requester_sub=requester.sub, scope=scope),
        may_decide=viewer.may_decide(
            requester_sub=requester.sub, requester_email=requester.email, scope=scope
        ),
        may_revoke=viewer.may_revoke(scope),
        is_admin=viewer.is_admin,
        state=request.state,
    )


ScopeKey = tuple[str, str]  # (entity ref, role name)


# --- separation of duties ----------------------------------------------------------------------


@dataclass(frozen=True)
class Holdings:
    """What a person holds and is about to hold, read fresh under the lock on them (not from
    the viewer kept between requests): a conflict is judged on what stands at that moment."""

    held: frozenset[str] = frozenset()  # roles in force in the mirror
    # Their requests that still stand, by role: (request id, state).
    standing: Mapping[str, tuple[int, str]] = field(default_factory=dict)

    def granted(self) -> frozenset[str]:
        """Held, or approved and being granted."""
        coming = {
            role for role, (_, state) in self.standing.items()
            if state != AccessRequest.State.PENDING
        }  # fmt: skip
        return self.held | coming


def conflict_refusal(
    *, role: str, conflicts: Iterable[str], holdings: Holdings, asking: bool, whose: str = "You"
) -> str | None:
    """Why `role` may not be granted to this person: it conflicts with one they hold, one
    approved for them and being granted, or (when `asking`: a request, an auto-approval, a
    break-glass) one they asked for that still waits. None when nothing conflicts.

    Conflicts hold both ways (`conflicts`: the roles that name `role` or that it names)."""
    conflicting = set(conflicts)
    clash = sorted(conflicting & holdings.granted())
    rule = f"nobody may hold it together with {role} (separation of duties)"
    if clash:
        verb = "hold" if whose == "You" else "holds"
        return f"{whose} {verb} {' and '.join(clash)} (or will, once granted): {rule}."
    if asking:
        waiting = sorted(conflicting & set(holdings.standing))
        if waiting:
            ids = ", ".join(f"{name} (request {holdings.standing[name][0]})" for name in waiting)
            return f"{whose} asked for {ids}: {rule}. Withdraw that request first."
    return None


# --- auto-approval and break-glass -------------------------------------------------------------


def auto_approval(
    viewer: Viewer, *, rules: RoleRules, duration: timedelta, reason: str
) -> AutoApproveRule | None:
    """The first of the role's auto-approval rules this request meets, if any: the person is
    in the rule's group now (as the catalog says, through a verified e-mail), asks for no
    longer than the rule allows, with a reason that matches its pattern. The caller has
    checked already that the person may ask at all (and for no longer than the longest grant)
    and that nothing conflicts; a protected role is never approved by rule."""
    if rules.name in protected_roles() or role_refusal(rules):
        return None
    for rule in rules.entry.auto_approve:
        if (
            rule.group in viewer.group_refs
            and duration <= rule.max_duration
            and rule.reason_matches(reason)
        ):
            return rule
    return None


def auto_approval_offered(viewer: Viewer, *, rules: RoleRules) -> list[AutoApproveRule]:
    """The rules whose group this person is in: what the request form tells them."""
    if rules.name in protected_roles() or role_refusal(rules):
        return []
    return [rule for rule in rules.entry.auto_approve if rule.group in viewer.group_refs]


def break_glass_refusal(
    viewer: Viewer, *, entity: Entity, rules: RoleRules, duration: timedelta, reason: str
) -> str | None:
    """Why this person may not break glass for this role on this entity now; None when they
    may: the role is marked for it, not protected, known and owned (its owners review the
    use), the entity declares it, the person is in the allowed group now, does not hold the
    role already, says why, and asks for no longer than the break-glass cap (nor the role's
    and the portal's longest grant). Whether they may *request* it plays no part: a role may
    take no requests and still be open to break-glass."""
    name = rules.name
    rule = rules.entry.break_glass
    if not viewer.sub:
        return "Sign in to break glass."
    if name in protected_roles():
        return f"{name} is protected: Atrium never grants it, not even in an emergency."
    if rule is None:
        return f"{name} is not open to break-glass: a portal admin marks the roles that are."
    if not rules.known or rules.gone:
        return role_refusal(rules)
    if not rules.entry.owners:
        return f"Nobody owns {name} in Atrium, so nobody would review a break-glass use."
    if name not in {row.role_name for row in entity.required_role_rows.all()}:
        return f"{entity.ref} does not require {name}."
    if rule.group not in viewer.group_refs:
        return f"Only members of {rule.group} may break glass for {name}."
    if name in viewer.held_roles:
        return f"You hold {name} already."
    if not reason.strip():
        return "Say why you break glass: the reason is required, and the owners read it."
    longest = break_glass_longest(rule=rule, rules=rules)
    if duration <= timedelta(0) or duration > longest:
        return f"Break-glass lasts at most {duration_words(longest)} for {name}."
    return None


def break_glass_longest(*, rule: BreakGlassRule, rules: RoleRules) -> timedelta:
    """The longest break-glass grant: the rule's cap, within the role's and portal's longest."""
    return min(rule.max_duration, longest_grant(rules=rules, entity_max=None))


# --- step-up: deciding a sensitive role's request ----------------------------------------------


def mfa_fresh(*, mfa_at: float | None, now: float) -> bool:
    """A multi-factor sign-in at `mfa_at` (Unix time) is fresh within ACCESS_STEP_UP_MAX_AGE,
    with the clock skew tokens are allowed (AUTH0_LEEWAY)."""
    if mfa_at is None:
        return False
    max_age = settings.ACCESS_STEP_UP_MAX_AGE.total_seconds()
    return now - max_age - settings.AUTH0_LEEWAY <= mfa_at <= now + settings.AUTH0_LEEWAY


def step_up_needed(*, rules: RoleRules, mfa_at: float | None, now: float) -> bool:
    """Deciding (approving or denying) a request for a sensitive role needs a fresh
    multi-factor sign-in."""
    return rules.entry.sensitive and not mfa_fresh(mfa_at=mfa_at, now=now)


def visible_requests(
    viewer: Viewer,
    requests: QuerySet[AccessRequest],
    *,
    scopes: Mapping[ScopeKey, DecisionScope],
) -> QuerySet[AccessRequest]:
    """The requests this person may see, by the rule of `Viewer.may_see_request`, as a filter
    on `requests`: their own, those of the (entity, role) pairs they decide, every one for a
    portal admin. `scopes`: who decides each pair among `requests` (access.selectors reads
    them; `requests_visible` there does both)."""
    if viewer.is_admin:
        return requests
    if not viewer.sub:
        return requests.none()
    seen = Q(requester__sub=viewer.sub)
    for (ref, role), scope in scopes.items():
        if viewer.may_see_request(requester_sub="", scope=scope):
            seen |= Q(entity_ref=ref, role_name=role)
    return requests.filter(seen)


# --- access reviews ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewScope:
    """Who reviews the holders of one role: the members of its owner groups."""

    role: str
    owners: tuple[str, ...]
    # The catalog Users in the owner groups, and their e-mails (lower-cased).
    reviewer_refs: frozenset[str]
    reviewer_emails: frozenset[str]

    def others_than(self, email: str) -> bool:
        """An owner other than the person with this e-mail can review."""
        return bool(self.reviewer_emails - {email.lower()})


def is_reviewer(viewer: Viewer, scope: ReviewScope) -> bool:
    """One of the role's owners (a member of one of its owner groups)."""
    return bool(viewer.user_refs & scope.reviewer_refs)


def may_review(viewer: Viewer, *, holder_sub: str, holder_email: str, scope: ReviewScope) -> bool:
    """May this person keep or remove this holder of the role?

    The role's owners do, never their own holding, nor one of another account of theirs (the
    same e-mail: `Viewer.is_person`). A holding no other owner can review goes to the portal's
    admins (a role without owners, or whose only owner holds it), never to the holder."""
    return may_review_holding(viewer, holder_sub=holder_sub, holder_emails=[holder_email],
                              scope=scope)  # fmt: skip


def may_review_holding(
    viewer: Viewer, *, holder_sub: str, holder_emails: Iterable[str], scope: ReviewScope
) -> bool:
    """`may_review` of a holder known by several e-mails (a review's snapshot keeps the one
    they had then; their account may have another now): their own by any of them is theirs,
    and an admin stands in when any of them is the role's only owner."""
    emails = [email.lower() for email in holder_emails if email] or [""]
    if not viewer.sub or any(viewer.is_person(sub=holder_sub, email=e) for e in emails):
        return False
    if is_reviewer(viewer, scope):
        return True
    return viewer.is_admin and any(not scope.others_than(email) for email in emails)


def admins_left_refusal(*, role: str, left: int) -> str | None:
    """Why a review may not remove these holders: they are the last of the portal's admins.
    With nobody holding PORTAL_ADMIN_ROLE nobody could administer the portal, stand in for a
    role without owners, or undo the removal from here. Other roles may lose every holder."""
    if role != settings.PORTAL_ADMIN_ROLE or left > 0:
        return None
    return (
        f"Removing them would leave nobody holding {role}, and the portal without an admin: "
        "keep at least one, or give the role to someone else in Auth0 first."
    )


def may_see_review(viewer: Viewer, scope: ReviewScope) -> bool:
    """A review, its holders and its evidence: the role's owners and the portal's admins."""
    return bool(viewer.sub) and (is_reviewer(viewer, scope) or viewer.is_admin)


def may_complete_review(viewer: Viewer, scope: ReviewScope) -> bool:
    """Whoever may review any of its holders records that the review is done."""
    return may_see_review(viewer, scope)


def reviewable_items_q(viewer: Viewer, scope: ReviewScope) -> Q:
    """The rule of `may_review_holding` as a filter on a review's holders (access.models's
    AccessReviewItem: the `sub` and lower-cased `email` the snapshot kept, and the holder's
    account's e-mail now), for decisions on many holders at once in one statement."""
    if not viewer.sub:
        return Q(pk__in=[])
    theirs = Q(sub=viewer.sub)
    if viewer.email:
        theirs |= Q(email=viewer.email) | Q(user__email__iexact=viewer.email)
    if is_reviewer(viewer, scope):
        return ~theirs
    if not viewer.is_admin:
        return Q(pk__in=[])
    # An admin stands in for holders no other owner can review: all of them when nobody owns
    # the role; the holdings of its one owner (by e-mail) when only one person does.
    if not scope.reviewer_emails:
        return ~theirs
    if len(scope.reviewer_emails) == 1:
        (only,) = scope.reviewer_emails
        return (Q(email=only) | Q(user__email__iexact=only)) & ~theirs
    return Q(pk__in=[])


def is_admin_or_machine(principal: Principal, user: User | None) -> bool:
    """Who holds which role, every request and grant, and the audit log are for the portal's
    admins and for automation (a machine client), not for everyone."""
    return principal.is_machine or is_portal_admin(user)


def is_portal_admin(user: User | None) -> bool:
    """Holds PORTAL_ADMIN_ROLE in the roles mirror (and it has not expired)."""
    return viewer_for(user).is_admin


def may_register_locations(principal: Principal, user: User | None) -> bool:
    """Machines with `write:catalog`; people who administer the portal."""
    return _admin_or_machine_with(principal, user, "write:catalog")


def may_see_server_paths(principal: Principal, user: User | None) -> bool:
    """Where a file location lies on the server is for whoever may register locations: the
    server's layout is nobody else's business."""
    return may_register_locations(principal, user)


def may_refresh_entity(principal: Principal, user: User | None, *, owner_ref: str) -> bool:
    """Reading an entity's location again now, which costs a read of the whole location: a
    token with `write:catalog` (a person's token or session has it), held by a machine, a
    portal admin, or someone who owns the entity (one of their groups, or themselves)."""
    if "write:catalog" not in principal.scopes:
        return False
    if principal.is_machine:
        return True
    viewer = viewer_for(user)
    return viewer.is_admin or (bool(owner_ref) and owner_ref in viewer.owner_refs)


def may_administer_access(principal: Principal, user: User | None) -> bool:
    """The role registry: machines granted `admin:access`, and portal admins."""
    return _admin_or_machine_with(principal, user, "admin:access")


def _admin_or_machine_with(principal: Principal, user: User | None, scope: str) -> bool:
    if scope not in principal.scopes:
        return False
    return is_admin_or_machine(principal, user)


# Kept on the user object for the rest of the request (as Django's ModelBackend keeps its
# permission cache), so a page asks for a person's roles and groups once however much it shows.
_VIEWER_ATTRIBUTE = "_atrium_viewer"
ANONYMOUS = Viewer()


def viewer_for(user: User | None) -> Viewer:
    """A person's roles, groups and admin standing; a machine client (None) has none of them.

    Read once per request, and kept between requests by `access.viewers` until a change to
    roles or to the catalog makes it stale (or a role held ends)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return ANONYMOUS
    cached: Viewer | None = getattr(user, _VIEWER_ATTRIBUTE, None)
    if cached is not None:
        return cached
    viewer = _viewer_of(user, viewer_parts(user, lambda: _viewer_parts_read(user)))
    setattr(user, _VIEWER_ATTRIBUTE, viewer)
    return viewer


def viewer_fresh(user: User) -> Viewer:
    """The person as the database says now, past the viewer kept between requests: a grant
    without a decision (auto-approval, break-glass) judges their groups and roles as they
    stand at that moment. Not kept."""
    if not user.is_authenticated or not user.is_active:
        return ANONYMOUS
    return _viewer_of(user, _viewer_parts_read(user))


def _viewer_of(user: User, parts: ViewerParts) -> Viewer:
    held = {name for name, _, _ in parts.held}
    return Viewer(
        sub=user.sub,
        held_roles=frozenset(held),
        user_refs=frozenset(parts.user_refs),
        group_refs=frozenset(parts.group_refs),
        is_admin=settings.PORTAL_ADMIN_ROLE in held,
        email=user.email.lower(),
        ending_roles=frozenset(name for name, ending, _ in parts.held if ending),
    )


def _viewer_parts_read(user: User) -> ViewerParts:
    # catalog.selectors filters through catalog.search, which builds its filters from Viewer.
    from catalog.selectors import person_refs

    held = [
        (name, source == RoleMembership.Source.PORTAL_GRANT and expires_at is not None, expires_at)
        for name, source, expires_at in RoleMembership.objects.held_by(user)
    ]
    user_refs, group_refs = person_refs(user=user)
    return ViewerParts(held=tuple(held), user_refs=tuple(user_refs), group_refs=tuple(group_refs))


def viewer_forget(user: User) -> None:
    """Drop the remembered answers, after this person's roles changed within the request."""
    if hasattr(user, _VIEWER_ATTRIBUTE):
        delattr(user, _VIEWER_ATTRIBUTE)


# --- Gateways: the decision `/authz/`, `/authz/explain` and the OPA bundle's sample policy make


@dataclass(frozen=True)
class RouteRule:
    """A declared gateway route as the decision reads it: its entity, the audience its tokens
    must name and the roles the entity requires (holding any one of them passes)."""

    entity_ref: str
    route: str  # as declared, `GET,POST payments.internal.example/v1/*`
    audience: str
    required_roles: frozenset[str]
    # The entity is restricted (`Entity.restricted`): with no valid role left to require,
    # its routes let nobody through rather than everyone.
    restricted: bool
    owner_ref: str = ""  # who may see the route as declared (`Viewer.may_see_restricted`)


@dataclass(frozen=True)
class Holding:
    """What the mirror says of a token's subject now: whether the portal lets them in
    (unknown: never signed in, so no roles either) and each role held with its end."""

    known: bool = False
    active: bool = True
    roles: Mapping[str, datetime | None] = field(default_factory=dict)

    def held_now(self, now: datetime) -> frozenset[str]:
        return frozenset(name for name, end in self.roles.items() if end is None or end > now)


@dataclass(frozen=True)
class GatewayDecision:
    """What a gateway is told: 200 (with the subject and the roles that let them through), 401
    (no usable token) or 403 (a token, and no right to pass), with a short reason."""

    status: int
    reason: str
    subject: str = ""
    roles: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.status == 200


def gateway_unknown_route(*, target: str) -> GatewayDecision:
    """A request no declared route takes: AUTHZ_UNKNOWN_ROUTES says (deny by default)."""
    if settings.AUTHZ_UNKNOWN_ROUTES == "allow":
        return GatewayDecision(
            200, f"no route is declared for {target}; unknown routes are allowed"
        )
    return GatewayDecision(403, f"no route is declared for {target}")


def gateway_decision(
    *, rule: RouteRule, caller: Principal, holding: Holding, now: datetime
) -> GatewayDecision:
    """May this verified caller pass through this route now?

    A person passes when they hold, in the mirror now, one of the roles the route's entity
    requires (a grant revoked or ended a moment ago counts no more, whatever the token still
    says), or any valid token when it requires none; not when the portal shut them out
    (blocked or deleted in Auth0, deactivated by an admin). A machine client passes when its
    token's scopes name one of those roles (the API's permissions granted to it in Auth0, named
    after the roles), or any valid token when the entity requires none.
    """
    required = rule.required_roles
    if rule.restricted and not required:
        return GatewayDecision(
            403,
            f"{rule.entity_ref} is restricted, but its annotation names no valid role; "
            "nobody passes until its owners fix it",
            caller.sub,
        )
    if caller.is_machine:
        through = sorted(required & caller.scopes)
        if required and not through:
            return GatewayDecision(
                403,
                f"{rule.entity_ref} requires one of {', '.join(sorted(required))}; "
                f"the client {caller.client_id} was granted none of them as a scope",
                caller.sub,
            )
        return GatewayDecision(200, f"granted {', '.join(through) or 'no role needed'}",
                               caller.sub, tuple(through))  # fmt: skip
    if holding.known and not holding.active:
        return GatewayDecision(403, "the portal has shut this account out", caller.sub)
    through = sorted(required & holding.held_now(now))
    if required and not through:
        return GatewayDecision(
            403,
            f"{rule.entity_ref} requires one of {', '.join(sorted(required))}, "
            "which this person does not hold now",
            caller.sub,
        )
    return GatewayDecision(
        200, f"holds {', '.join(through) or 'no role needed'}", caller.sub, tuple(through)
    )


def may_download_gateway_bundle(principal: Principal, user: User | None) -> bool:
    """The OPA bundle holds every route and who holds each role they require: as a role's
    members, it is for machines and portal admins, with `read:catalog` (the routes) and
    `read:access` (the holders)."""
    if "read:access" not in principal.scopes:
        return False
    return _admin_or_machine_with(principal, user, "read:catalog")


def may_explain_gateway_decisions(principal: Principal) -> bool:
    """`/authz/explain` is for people (signed in, or with their own token): it shows no more
    than the decision endpoint answers anyone holding the token pasted."""
    return not principal.is_machine and "read:catalog" in principal.scopes
