"""Reads of access reviews: who reviews a role, the holders a snapshot finds, the reviews a
person must do, a review's holders as its page filters them, and the evidence an auditor reads.

Every read here is bounded by the page or the export, never by a query per holder: a role may
have tens of thousands of them. Each is short; there are many, hence past 400 lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from access.models import (
    AccessRequest,
    AccessReview,
    AccessReviewItem,
    AuditEvent,
    Decision,
    Role,
    RoleMembership,
)
from access.policy import (
    ReviewScope,
    Viewer,
    may_see_review,
    reviewable_items_q,
)
from catalog.models import EntityRequiredRole
from catalog.selectors import group_member_refs, user_emails
from portal.models import User

# Why a snapshot points a holder out, so that "keep all not flagged" leaves them to a decision
# of their own: the words each flag is shown with.
FLAG_WORDS = {
    "stale": "no sign-in lately",
    "never": "never signed in",
    "outside": "granted outside the portal",
    "break_glass": "took it by break-glass",
}


def review_scopes(*, role_names: Iterable[str]) -> dict[str, ReviewScope]:
    """Who reviews each of these roles (its owner groups' members, with their e-mails), in
    three queries however many roles."""
    names = set(role_names)
    owners = {
        name: tuple(role_owners)
        for name, role_owners in Role.objects.filter(name__in=names).values_list("name", "owners")
    }
    members = group_member_refs(group_refs={ref for refs in owners.values() for ref in refs})
    emails = user_emails(user_refs={user for refs in members.values() for user in refs})
    scopes = {}
    for name in names:
        refs = {user for owner in owners.get(name, ()) for user in members.get(owner, ())}
        scopes[name] = ReviewScope(
            role=name,
            owners=owners.get(name, ()),
            reviewer_refs=frozenset(refs),
            reviewer_emails=frozenset(emails[ref] for ref in refs if emails.get(ref)),
        )
    return scopes


def review_scope(*, role_name: str) -> ReviewScope:
    return review_scopes(role_names=[role_name])[role_name]


# --- the snapshot ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    """A holder of a role as a review's snapshot records them."""

    user_id: int
    sub: str
    email: str
    name: str
    source: str  # RoleMembership.Source; "" when they do not hold it (a review of one use)
    since: datetime | None
    until: datetime | None
    last_sign_in: datetime | None
    request_id: int | None = None
    approved_by: str = ""
    flags: tuple[str, ...] = field(default=())


def holders_snapshot(*, role: Role, users: Iterable[User] | None = None) -> list[Holder]:
    """Everyone holding the role now (or these people, held or not), with how and since when
    they hold it, the portal grant that gave it and who approved that, and when they last
    signed in: three queries however many hold it."""
    memberships = RoleMembership.objects.active().filter(role=role)
    grants = AccessRequest.objects.filter(
        role_name=role.name, state=AccessRequest.State.ACTIVE
    ).order_by("starts_at", "pk")
    wanted: dict[int, User] | None = None
    if users is not None:
        wanted = {user.pk: user for user in users}
        memberships = memberships.filter(user_id__in=wanted)
        grants = grants.filter(requester_id__in=wanted)
    held = {
        row[0]: row
        for row in memberships.values_list(
            "user_id", "user__sub", "user__email", "user__name", "user__last_login", "source",
            "created_at", "expires_at",
        )
    }  # fmt: skip
    grant_of = dict(grants.values_list("requester_id", "pk"))  # the latest, by its start
    approvers: dict[int, list[str]] = {}
    for request_id, name, email in (
        Decision.objects.filter(request__in=grants, outcome=Decision.Outcome.APPROVED)
        .order_by("at", "pk")
        .values_list("request_id", "approver__name", "approver__email")
    ):
        approvers.setdefault(request_id, []).append(name or email)
    stale_before = timezone.now() - settings.ACCESS_REVIEW_STALE_SIGN_IN
    rows: list[tuple[Any, ...]] = list(held.values())
    if wanted is not None:  # the people asked for who do not hold it (any more)
        rows += [
            (user.pk, user.sub, user.email, user.name, user.last_login, "", None, None)
            for user in wanted.values()
            if user.pk not in held
        ]
    holders = []
    for user_id, sub, email, name, last_login, source, since, until in rows:
        grant = grant_of.get(user_id) if source == RoleMembership.Source.PORTAL_GRANT else None
        flags = []
        if last_login is None:
            flags.append("never")
        elif last_login < stale_before:
            flags.append("stale")
        if source and source != RoleMembership.Source.PORTAL_GRANT:
            flags.append("outside")
        holders.append(
            Holder(
                user_id=user_id,
                sub=sub,
                email=(email or "").lower(),
                name=name,
                source=source,
                since=since,
                until=until,
                last_sign_in=last_login,
                request_id=grant,
                approved_by=", ".join(approvers.get(grant, [])) if grant else "",
                flags=tuple(flags),
            )  # fmt: skip
        )
    return holders


# --- who must review what --------------------------------------------------------------------


def reviews_open() -> QuerySet[AccessReview]:
    return AccessReview.objects.filter(completed_at__isnull=True)


def scheduled_review_open(*, role: Role) -> bool:
    return reviews_open().filter(role=role, kind=AccessReview.Kind.SCHEDULED).exists()


@dataclass(frozen=True)
class Progress:
    """How far a review has come."""

    total: int = 0
    kept: int = 0
    removed: int = 0
    removal_pending: int = 0
    removal_failed: int = 0
    removal_done: int = 0
    removal_superseded: int = 0
    flagged_undecided: int = 0

    @property
    def decided(self) -> int:
        return self.kept + self.removed

    @property
    def undecided(self) -> int:
        return self.total - self.decided

    @property
    def percent(self) -> int:
        return 100 if not self.total else self.decided * 100 // self.total


_PROGRESS = {
    "total": Count("pk"),
    "kept": Count("pk", filter=Q(decision=AccessReviewItem.Decision.KEEP)),
    "removed": Count("pk", filter=Q(decision=AccessReviewItem.Decision.REMOVE)),
    "removal_pending": Count("pk", filter=Q(removal=AccessReviewItem.Removal.PENDING)),
    "removal_failed": Count("pk", filter=Q(removal=AccessReviewItem.Removal.FAILED)),
    "removal_done": Count("pk", filter=Q(removal=AccessReviewItem.Removal.DONE)),
    "removal_superseded": Count("pk", filter=Q(removal=AccessReviewItem.Removal.SUPERSEDED)),
    "flagged_undecided": Count("pk", filter=Q(decision="", flagged=True)),
}


def review_progress(*, review: AccessReview) -> Progress:
    """One aggregate query, whatever the review's size."""
    return Progress(**AccessReviewItem.objects.filter(review=review).aggregate(**_PROGRESS))


def reviews_progress(*, review_ids: Iterable[int]) -> dict[int, Progress]:
    """The progress of each of these reviews, in one query."""
    rows = (
        AccessReviewItem.objects.filter(review_id__in=set(review_ids))
        .values("review_id")
        .annotate(**_PROGRESS)
        .order_by()
    )
    found = {row.pop("review_id"): Progress(**row) for row in rows}
    return {pk: found.get(pk, Progress()) for pk in set(review_ids)}


@dataclass(frozen=True)
class ReviewRow:
    """A review in a list, as one person stands to it."""

    review: AccessReview
    scope: ReviewScope
    progress: Progress
    mine: int  # holders waiting for this person's decision


def reviews_for(*, viewer: Viewer, completed: bool = False, limit: int = 200) -> list[ReviewRow]:
    """The reviews this person may see (of roles they own; every one for a portal admin): the
    open ones oldest due first, or the latest completed; each with its progress and how many
    of its holders wait for them. A fixed number of queries however many."""
    if not viewer.sub:
        return []
    reviews = AccessReview.objects.select_related("role", "completed_by")
    if completed:
        reviews = reviews.filter(completed_at__isnull=False).order_by("-completed_at", "-pk")
    else:
        reviews = reviews.filter(completed_at__isnull=True).order_by("due_at", "pk")
    found = list(reviews[: limit * 4]) if completed else list(reviews)
    scopes = review_scopes(role_names={review.role.name for review in found})
    visible = [r for r in found if may_see_review(viewer, scopes[r.role.name])][:limit]
    progress = reviews_progress(review_ids=[r.pk for r in visible])
    mine: dict[int, int] = {}
    if visible and not completed:
        waiting = Q(pk__in=[])
        for review in visible:
            waiting |= Q(review_id=review.pk) & reviewable_items_q(viewer, scopes[review.role.name])
        mine = dict(
            AccessReviewItem.objects.filter(waiting, decision="")
            .values("review_id")
            .annotate(n=Count("pk"))
            .order_by()
            .values_list("review_id", "n")
        )
    return [
        ReviewRow(review=r, scope=scopes[r.role.name], progress=progress[r.pk],
                  mine=mine.get(r.pk, 0))
        for r in visible
    ]  # fmt: skip


def reviews_overdue_for(*, viewer: Viewer) -> list[AccessReview]:
    """Open reviews past their due date of roles this person owns (every one for a portal
    admin), for the banner every page shows them: one query, none for people in no group."""
    if not viewer.sub or not (viewer.is_admin or viewer.group_refs):
        return []
    overdue = (
        reviews_open()
        .filter(due_at__lte=timezone.now())
        .select_related("role")
        .only("pk", "due_at", "role__name", "role__owners")
        .order_by("due_at", "pk")
    )
    return [
        review
        for review in overdue
        if viewer.is_admin or set(review.role.owners) & viewer.group_refs
    ]


# --- a review's page -------------------------------------------------------------------------


def review_of(*, review_id: int) -> AccessReview | None:
    return (
        AccessReview.objects.select_related("role", "request__requester", "completed_by")
        .filter(pk=review_id)
        .first()
    )


def review_items(*, review: AccessReview) -> QuerySet[AccessReviewItem]:
    """A review's holders by e-mail, with who decided each (through the index on the review
    and e-mail: a page of them costs the same however many there are)."""
    return (
        AccessReviewItem.objects.filter(review=review)
        .select_related("decided_by", "user")
        .order_by("email", "id")
    )


def review_items_by_sub(*, review: AccessReview, subs: Iterable[str]) -> dict[str, int]:
    """The ids of the holders with these `sub`s in the review (what the API names them by)."""
    return dict(
        AccessReviewItem.objects.filter(review=review, sub__in=set(subs)).values_list("sub", "pk")
    )


def may_review_any(*, viewer: Viewer, review: AccessReview, scope: ReviewScope) -> bool:
    """Whether any undecided holder waits for this person's decision."""
    return (
        AccessReviewItem.objects.filter(review=review, decision="")
        .filter(reviewable_items_q(viewer, scope))
        .exists()
    )


def review_audit(*, review: AccessReview) -> QuerySet[AuditEvent]:
    """The review's own audit records, oldest first: opened, decisions, removals, completed."""
    return AuditEvent.objects.filter(correlation_id=review.correlation_id).order_by("at", "id")


# --- evidence --------------------------------------------------------------------------------


def reviews_for_evidence(
    *,
    viewer: Viewer | None,
    role: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 500,
) -> list[AccessReview]:
    """The reviews opened in the period (for one role, or all), oldest first, that this person
    may see (None: a machine client or an auditor with read:audit, who sees every one)."""
    reviews = AccessReview.objects.select_related("role", "request", "completed_by").order_by(
        "opened_at", "pk"
    )
    if role:
        reviews = reviews.filter(role__name=role)
    if since:
        reviews = reviews.filter(opened_at__gte=since)
    if until:
        reviews = reviews.filter(opened_at__lt=until)
    found = list(reviews[:limit])
    if viewer is None or viewer.is_admin:
        return found
    scopes = review_scopes(role_names={r.role.name for r in found})
    return [r for r in found if may_see_review(viewer, scopes[r.role.name])]


def evidence_items(*, reviews: Iterable[AccessReview]) -> Iterator[AccessReviewItem]:
    """Every holder of these reviews, review by review, by e-mail, read in chunks."""
    ids = [review.pk for review in reviews]
    return (
        AccessReviewItem.objects.filter(review_id__in=ids)
        .select_related("decided_by")
        .order_by("review_id", "email", "id")
        .iterator(chunk_size=2000)
    )


def evidence_audit(*, reviews: Iterable[AccessReview]) -> dict[str, list[AuditEvent]]:
    """The audit records of each of these reviews, by correlation id; one query."""
    ids = [review.correlation_id for review in reviews]
    records: dict[str, list[AuditEvent]] = {cid: [] for cid in ids}
    for event in AuditEvent.objects.filter(correlation_id__in=ids).order_by("at", "id"):
        records[event.correlation_id].append(event)
    return records


# --- the access report -----------------------------------------------------------------------


def holdings_by_role() -> Iterator[tuple[Any, ...]]:
    """(role, sub, e-mail, name, source, since, until, request id) of every holding in force,
    by role and e-mail, read in chunks."""
    grants = {
        (requester_id, role_name): pk
        for requester_id, role_name, pk in AccessRequest.objects.filter(
            state=AccessRequest.State.ACTIVE
        )
        .order_by("starts_at", "pk")
        .values_list("requester_id", "role_name", "pk")
    }
    rows = (
        RoleMembership.objects.active()
        .order_by("role__name", "user__email", "pk")
        .values_list(
            "role__name",
            "user_id",
            "user__sub",
            "user__email",
            "user__name",
            "source",
            "created_at",
            "expires_at",
        )  # fmt: skip
        .iterator(chunk_size=2000)
    )
    for role, user_id, sub, email, name, source, since, until in rows:
        request_id = grants.get((user_id, role)) if source == "portal_grant" else None
        yield role, sub, email, name, source, since, until, request_id


def holdings_by_entity() -> Iterator[tuple[Any, ...]]:
    """(entity ref, role, sub, e-mail, name, source, since, until) for every catalog entity and
    each holding in force of a role it requires, by entity, role and e-mail, in chunks."""
    rows = (
        EntityRequiredRole.objects.filter(role_name__in=Role.objects.values("name"))
        .order_by("entity__ref", "role_name")
        .values_list("entity__ref", "role_name")
    )
    required: dict[str, list[str]] = {}
    for ref, role in rows:
        required.setdefault(role, []).append(ref)
    holders: dict[str, list[tuple[Any, ...]]] = {}
    for row in (
        RoleMembership.objects.active()
        .filter(role__name__in=required)
        .order_by("user__email", "pk")
        .values_list(
            "role__name",
            "user__sub",
            "user__email",
            "user__name",
            "source",
            "created_at",
            "expires_at",
        )  # fmt: skip
        .iterator(chunk_size=2000)
    ):
        holders.setdefault(row[0], []).append(tuple(row[1:]))
    by_entity: dict[str, list[str]] = {}
    for role, refs in required.items():
        for ref in refs:
            by_entity.setdefault(ref, []).append(role)
    for ref in sorted(by_entity):
        for role in sorted(by_entity[ref]):
            for holding in holders.get(role, ()):
                yield (ref, role, *holding)
