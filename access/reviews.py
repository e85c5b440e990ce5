"""Access reviews: a role's owners re-certify who holds it, on the schedule its registry entry
sets (or once, for one use of it), and every step is evidence.

A review opens with a snapshot of the holders (AccessReviewItem); reviewers keep or remove each
(access.policy says who may: the owners, never for their own holding); a removal is carried
into Auth0 by a Celery task through the grant-ending path of a revocation
(`access.services.review_removal_carry_out`); the review is completed once every holder is
decided. Beat opens reviews as they fall due, reminds the reviewers, and applies a role's
removal policy to what nobody reviewed in time.

The writes of reviews live here rather than in access.services, which imports this module
(a break-glass grant opens a review of its use); this one never imports access.services.
"""

# Over 400 lines because a review's life is one state machine (opened, decided, completed,
# enforced, reminded): its steps share the row locks, the audit target and the queueing.

from __future__ import annotations

import calendar
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta

from celery import Task
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from access.audit import SYSTEM, Actor
from access.models import (
    AccessRequest,
    AccessReview,
    AccessReviewItem,
    AccessReviewReminder,
    Role,
    RoleMembership,
)
from access.policy import (
    ReviewScope,
    Viewer,
    admins_left_refusal,
    may_complete_review,
    may_review_holding,
    may_see_review,
    reviewable_items_q,
    viewer_for,
)
from access.registry import RegistryEntry
from access.review_selectors import Holder, holders_snapshot, review_scope, reviews_open
from portal.logs import correlate
from portal.models import User

logger = logging.getLogger(__name__)


class ReviewRefused(Exception):
    """The review cannot do what was asked (yet); the message says why, to the person."""


class ReviewConflict(Exception):
    """Someone got there first: the holder was decided, or the review completed, already."""


class ReviewNotAllowed(Exception):
    """The person may not do this in the review; the message says why."""


# --- schedules -------------------------------------------------------------------------------


def months_after(day: date, months: int) -> date:
    """The same day so many months on (or back); a day the month lacks is its last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def review_due_after(*, anchor: date, every: int, after: date) -> date:
    """The first day strictly after `after` on which a review falls due: the anchor, and every
    `every` months from it, either way (each counted from the anchor, so a 31st stays the last
    day of shorter months without drifting)."""
    steps = ((after.year - anchor.year) * 12 + after.month - anchor.month) // every - 1
    while (due := months_after(anchor, steps * every)) <= after:
        steps += 1
    return due


def due_moment(day: date) -> datetime:
    """A review due on a day is due at that day's start (UTC)."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def review_schedule_apply(*, role: Role, entry: RegistryEntry, today: date | None = None) -> None:
    """Set the role's review schedule from its registry entry (the caller saves the role).

    A schedule set or changed starts from today: its first review falls due on the first
    anchored day after today, the anchor being the entry's `reviewDay` or, without one, today.
    An unchanged schedule keeps its next due date, so importing the same file again moves
    nothing; without `reviewEvery` the role has no scheduled review."""
    today = today or timezone.now().date()
    role.review_remove_after = entry.remove_unreviewed_after
    if (role.review_every, role.review_day) == (entry.review_every, entry.review_day) and (
        entry.review_every is None or role.review_next_due is not None
    ):
        return
    role.review_every, role.review_day = entry.review_every, entry.review_day
    if entry.review_every is None:
        role.review_anchor = role.review_next_due = None
        return
    role.review_anchor = entry.review_day or today
    due = review_due_after(anchor=role.review_anchor, every=entry.review_every, after=today)
    role.review_next_due = due_moment(due)


REVIEW_SCHEDULE_FIELDS = [
    "review_every", "review_day", "review_anchor", "review_next_due", "review_remove_after",
]  # fmt: skip


# --- opening ---------------------------------------------------------------------------------


def review_open(
    *,
    role: Role | str,
    kind: str,
    holders: Sequence[User] | None = None,
    reason: str = "",
    request: AccessRequest | None = None,
    due_at: datetime | None = None,
    actor: Actor,
) -> AccessReview:
    """Open a review of a role and snapshot its holders; the review.

    `kind` is an `AccessReview.Kind`. A scheduled review (what beat opens as the role's
    reviews fall due, through `reviews_open_due`) takes every holder now; a review of one use
    (`kind=AccessReview.Kind.USE`) takes `holders`, the people whose use is to be confirmed or
    revoked (one, for a break-glass grant), with the `reason` ("break-glass use") and the
    `request` behind it, held or not any more. Due at `due_at`, or ACCESS_REVIEW_OPEN_BEFORE
    from now.

    The role's owners review it (access.policy.may_review); a Remove is carried into Auth0 as
    a revocation is. Recorded as `review.opened`; the reviewers are told once it commits.
    Raises ReviewConflict when the role's scheduled review is open already, ReviewRefused when
    a review of one use names nobody.
    """
    if isinstance(role, str):
        role = Role.objects.get(name=role)
    if kind not in AccessReview.Kind.values:
        raise ReviewRefused(f"{kind!r} is not a kind of review ({', '.join(AccessReview.Kind)})")
    if kind != AccessReview.Kind.SCHEDULED and not holders:
        raise ReviewRefused("A review of one use names the people whose use it reviews.")
    due_at = due_at or timezone.now() + settings.ACCESS_REVIEW_OPEN_BEFORE
    try:
        with transaction.atomic():
            return _review_create(
                role=role, kind=kind, holders=holders, reason=reason, request=request,
                due_at=due_at, actor=actor,
            )  # fmt: skip
    except IntegrityError as error:
        raise ReviewConflict(f"The review of {role.name} due then is open already.") from error


# How many snapshot rows go to PostgreSQL in one INSERT (each row binds some 19 values).
SNAPSHOT_BATCH = 2000


def _review_create(
    *,
    role: Role,
    kind: str,
    holders: Sequence[User] | None,
    reason: str,
    request: AccessRequest | None,
    due_at: datetime,
    actor: Actor,
) -> AccessReview:
    """In the caller's transaction: the review and its snapshot, in a few bulk statements."""
    found = holders_snapshot(role=role, users=holders)
    if request is not None:  # the request a review of one use is about, ended or not
        # A break-glass use is flagged: confirming it is a decision of its own.
        glass = ("break_glass",) if request.kind == AccessRequest.Kind.BREAK_GLASS else ()
        found = [
            replace(holder, request_id=holder.request_id or request.pk,
                    flags=tuple(dict.fromkeys((*holder.flags, *glass))))
            if holder.user_id == request.requester_id else holder
            for holder in found
        ]  # fmt: skip
    review = AccessReview.objects.create(
        role=role, kind=kind, reason=reason[:255], request=request, due_at=due_at,
        holders_total=len(found),
    )  # fmt: skip
    AccessReviewItem.objects.bulk_create(
        [_item(review, holder) for holder in found], batch_size=SNAPSHOT_BATCH
    )
    detail: dict[str, object] = {"kind": kind, "due_at": due_at.isoformat(), "holders": len(found)}
    if reason:
        detail["reason"] = reason
    if request is not None:
        detail["request"] = request.pk
    if holders is not None:
        detail["subs"] = [holder.sub for holder in found]
    actor.record("review.opened", review_target(review), review.correlation_id, **detail)
    logger.info("review %s of %s opened: %d holders", review.pk, role.name, len(found))
    # The reviewers hear of it now, not again from the reminder of the slot it opened in.
    slot = reminder_slot(due_at=due_at, now=review.opened_at)
    if slot:
        AccessReviewReminder.objects.create(review=review, slot=slot)
    _notify_after_commit(review, actor, "opened")
    return review


def _item(review: AccessReview, holder: Holder) -> AccessReviewItem:
    return AccessReviewItem(
        review=review, user_id=holder.user_id, sub=holder.sub, email=holder.email,
        name=holder.name, source=holder.source, since=holder.since, until=holder.until,
        request_id=holder.request_id, approved_by=holder.approved_by[:500],
        last_sign_in=holder.last_sign_in, flags=list(holder.flags), flagged=bool(holder.flags),
    )  # fmt: skip


def review_target(review: AccessReview, sub: str = "") -> str:
    """What the audit log says a review's record is about: `payments.viewer review 7`, and the
    holder at its end when it is about one (`… → auth0|123`)."""
    return f"{review.role.name} review {review.pk}" + (f" → {sub}" if sub else "")


def reviews_open_due(
    *,
    force: bool = False,
    roles: Iterable[str] | None = None,
    actor: Actor = SYSTEM,
    now: datetime | None = None,
) -> list[int]:
    """Open the scheduled review of each role that falls due within ACCESS_REVIEW_OPEN_BEFORE
    (with `force`, the next review of every scheduled role, now); the ids opened.

    A role whose scheduled review is still open gets its next one once that is completed. A
    review never opens already past due: when its day has passed (beat was down, or the last
    review ran late), it is due on the next anchored day instead. Each role is locked while its
    review opens, and a due date opens once (a unique constraint), so two beats, or a retried
    one, open nothing twice."""
    now = now or timezone.now()
    due = Role.objects.filter(
        review_every__isnull=False, review_next_due__isnull=False, gone_at__isnull=True
    )
    if not force:
        due = due.filter(review_next_due__lte=now + settings.ACCESS_REVIEW_OPEN_BEFORE)
    if roles is not None:
        due = due.filter(name__in=list(roles))
    waiting = reviews_open().filter(kind=AccessReview.Kind.SCHEDULED).values("role_id")
    opened = []
    for role_id in (
        due.exclude(pk__in=waiting).order_by("review_next_due").values_list("pk", flat=True)
    ):
        try:
            review = _scheduled_open(role_id=role_id, force=force, actor=actor, now=now)
        except IntegrityError:  # another beat opened it first
            continue
        if review is not None:
            opened.append(review.pk)
    return opened


def _scheduled_open(
    *, role_id: int, force: bool, actor: Actor, now: datetime
) -> AccessReview | None:
    with transaction.atomic():
        role = Role.objects.select_for_update().get(pk=role_id)
        if role.review_every is None or role.review_next_due is None or role.review_anchor is None:
            return None
        if not force and role.review_next_due > now + settings.ACCESS_REVIEW_OPEN_BEFORE:
            return None
        if reviews_open().filter(role=role, kind=AccessReview.Kind.SCHEDULED).exists():
            return None
        due_at = role.review_next_due
        if due_at < now:
            yesterday = now.date() - timedelta(days=1)
            day = review_due_after(anchor=role.review_anchor, every=role.review_every,
                                   after=yesterday)  # fmt: skip
            due_at = due_moment(day)
        review = _review_create(
            role=role, kind=AccessReview.Kind.SCHEDULED, holders=None, reason="", request=None,
            due_at=due_at, actor=actor,
        )  # fmt: skip
        following = review_due_after(
            anchor=role.review_anchor, every=role.review_every, after=due_at.date()
        )
        role.review_next_due = due_moment(following)
        role.save(update_fields=["review_next_due"])
    return review


# --- deciding --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemDecision:
    """A reviewer's decision on one holder (an AccessReviewItem's id)."""

    item_id: int
    decision: str  # AccessReviewItem.Decision
    note: str = ""


@dataclass
class Decided:
    """What came of decisions on many holders: how many went through, how many someone else
    decided first (by who: "already kept by Grace Hopper"), and why any were refused."""

    done: int = 0
    late: dict[str, int] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)


def _reviewing(
    review_id: int, person: User, *, lock: bool = False
) -> tuple[AccessReview, ReviewScope, Viewer]:
    """The review, who reviews its role, and the person as the policy sees them. A review the
    person may not see is one that does not exist, for them.

    With `lock`, the review's row stays locked until the transaction ends: every change to a
    review's holders takes it first, so two bulk actions (a "keep all" beside a removal of
    ticked holders) wait for each other instead of locking the same holders in two orders."""
    reviews = AccessReview.objects.select_related("role")
    if lock:
        reviews = reviews.select_for_update(of=("self",))
    review = reviews.get(pk=review_id)
    scope = review_scope(role_name=review.role.name)
    viewer = viewer_for(person)
    if not may_see_review(viewer, scope):
        raise AccessReview.DoesNotExist(f"No access review {review_id}")
    return review, scope, viewer


def _decider_words(item: AccessReviewItem, person: User) -> str:
    if item.decided_by_id is None:
        return "the removal policy"
    return "you" if item.decided_by_id == person.pk else str(item.decided_by)


def review_decide(
    *,
    review_id: int,
    reviewer: User,
    decisions: Sequence[ItemDecision],
    actor: Actor,
    all_or_nothing: bool = False,
) -> Decided:
    """Keep or remove holders of a review, each once.

    The holders' rows are locked and their state checked under the lock: a holder someone
    decided first (another reviewer, or this one in a stale tab) is counted as late, never
    decided twice, nor twice in one call (a holder named again counts once, by the first
    decision). Each holder is asked of the policy (`may_review`): never one's own holding.
    With `all_or_nothing` (the API), one late holder is a ReviewConflict and one refused a
    ReviewNotAllowed, and nothing is decided. Removals go to a worker once this commits.
    """
    for wanted in decisions:
        if wanted.decision not in AccessReviewItem.Decision.values:
            raise ReviewRefused(f"{wanted.decision!r} is not keep or remove")
    with transaction.atomic():
        review, scope, viewer = _reviewing(review_id, reviewer, lock=True)
        correlate(review.correlation_id)
        if review.completed_at is not None:
            raise ReviewConflict(_completed_words(review))
        ids = {wanted.item_id for wanted in decisions}
        items = {
            item.pk: item
            for item in AccessReviewItem.objects.select_for_update(of=("self",))
            .filter(review=review, pk__in=ids)
            .select_related("decided_by", "user")
            .order_by("pk")
        }
        outcome, chosen, named = Decided(), [], set()
        for wanted in decisions:
            item = items.get(wanted.item_id)
            if wanted.item_id in named:
                # Named again in one request (a crafted form): decided once, by the first.
                if all_or_nothing:
                    raise ReviewRefused(f"Holder {wanted.item_id} is named twice.")
                continue
            named.add(wanted.item_id)
            if item is None:
                if all_or_nothing:
                    raise ReviewRefused(f"No holder {wanted.item_id} in review {review.pk}.")
                outcome.refused.append(f"No holder {wanted.item_id} in this review.")
            elif item.decision:
                how = f"already {item.get_decision_display()} by {_decider_words(item, reviewer)}"
                if all_or_nothing:
                    raise ReviewConflict(f"{item.name or item.email or item.sub} was {how}.")
                outcome.late[how] = outcome.late.get(how, 0) + 1
            elif not may_review_holding(viewer, holder_sub=item.sub, scope=scope,
                                        holder_emails=[item.email, item.user.email]):  # fmt: skip
                refusal = _why_not_reviewer(viewer, item, scope)
                if all_or_nothing:
                    raise ReviewNotAllowed(refusal)
                outcome.refused.append(refusal)
            else:
                chosen.append((item, wanted))
        removing = {item.user_id for item, wanted in chosen if wanted.decision == "remove"}
        if last_admins := _last_admins_refusal(review, removing):
            if all_or_nothing:
                raise ReviewRefused(last_admins)
            outcome.refused.append(last_admins)
            chosen = [(item, wanted) for item, wanted in chosen if wanted.decision != "remove"]
        now = timezone.now()
        groups: dict[tuple[str, str], list[AccessReviewItem]] = {}
        for item, wanted in chosen:
            groups.setdefault((wanted.decision, wanted.note.strip()[:2000]), []).append(item)
        for (decision, note), group in groups.items():
            _decided(review, group, decision=decision, note=note, by=reviewer, at=now,
                     actor=actor)  # fmt: skip
        outcome.done = len(chosen)
    return outcome


def _decided(
    review: AccessReview,
    items: list[AccessReviewItem],
    *,
    decision: str,
    note: str,
    by: User | None,
    at: datetime,
    actor: Actor,
) -> None:
    """Record one decision on these (locked, undecided) holders, its audit record and, for a
    removal, the worker's tasks once the transaction commits."""
    removing = decision == AccessReviewItem.Decision.REMOVE
    AccessReviewItem.objects.filter(pk__in=[item.pk for item in items]).update(
        decision=decision, decided_by=by, decided_at=at, note=note,
        removal=AccessReviewItem.Removal.PENDING if removing else "", updated_at=at,
    )  # fmt: skip
    subs = [item.sub for item in items]
    action = "review.removed" if removing else "review.kept"
    actor.record(action, review_target(review, subs[0] if len(subs) == 1 else ""),
                 review.correlation_id, holders=subs, count=len(subs), note=note)  # fmt: skip
    if removing:
        _removals_after_commit([item.pk for item in items], actor)


def _last_admins_refusal(review: AccessReview, going: set[int]) -> str | None:
    """`admins_left_refusal` for removing these people (user ids) from the review's role, on
    top of the removals of it still on their way to Auth0 (from any review of it). Asked with
    the review's row locked, so two removals of the last two admins are judged in turn."""
    if not going or review.role.name != settings.PORTAL_ADMIN_ROLE:
        return None
    holders = set(
        RoleMembership.objects.active()
        .filter(role=review.role, user__is_active=True)
        .values_list("user_id", flat=True)
    )
    on_their_way = AccessReviewItem.objects.filter(
        review__role=review.role, decision=AccessReviewItem.Decision.REMOVE,
        removal=AccessReviewItem.Removal.PENDING,
    ).values_list("user_id", flat=True)  # fmt: skip
    left = len(holders - set(on_their_way) - going)
    return admins_left_refusal(role=review.role.name, left=left)


def _why_not_reviewer(viewer: Viewer, item: AccessReviewItem, scope: ReviewScope) -> str:
    """The rule that stopped a decision, said to the person who tried."""
    if any(viewer.is_person(sub=item.sub, email=e) for e in (item.email, item.user.email)):
        return (
            "Nobody reviews their own holding, from this or another account: another owner "
            f"of {scope.role} decides it, or a portal admin when there is none."
        )
    owners = ", ".join(scope.owners) or "nobody yet"
    return (
        f"You may not review {item.name or item.sub}: {scope.role} is reviewed by its owners "
        f"({owners})."
    )


def review_decide_matching(
    *,
    review_id: int,
    reviewer: User,
    decision: str,
    matching: Q,
    note: str = "",
    actor: Actor,
) -> int:
    """Decide at once every undecided holder of the review that matches (the page's filters,
    or "not flagged") and that this person may review; how many.

    A keep is one UPDATE however many holders ("keep all not flagged" over 10,000 is one
    statement); a removal reads the holders' ids under lock, for the worker's tasks. The rows
    still undecided when the statement runs are the ones decided: what another reviewer
    decided meanwhile is left as they decided it. One audit record counts them."""
    if decision not in AccessReviewItem.Decision.values:
        raise ReviewRefused(f"{decision!r} is not keep or remove")
    note = note.strip()[:2000]
    with transaction.atomic():
        review, scope, viewer = _reviewing(review_id, reviewer, lock=True)
        correlate(review.correlation_id)
        if review.completed_at is not None:
            raise ReviewConflict(_completed_words(review))
        undecided = (
            AccessReviewItem.objects.filter(review=review, decision="")
            .filter(matching)
            .filter(reviewable_items_q(viewer, scope))
        )
        now = timezone.now()
        removing = decision == AccessReviewItem.Decision.REMOVE
        if removing:
            rows = list(
                undecided.select_for_update(of=("self",))
                .order_by("pk")
                .values_list("pk", "sub", "user_id")
            )
            if refusal := _last_admins_refusal(review, {user_id for _, _, user_id in rows}):
                raise ReviewRefused(refusal)
            ids = [(pk, sub) for pk, sub, _ in rows]
            count = AccessReviewItem.objects.filter(pk__in=[pk for pk, _ in ids]).update(
                decision=decision, decided_by=reviewer, decided_at=now, note=note,
                removal=AccessReviewItem.Removal.PENDING, updated_at=now,
            )  # fmt: skip
            subs = [sub for _, sub in ids]
        else:
            count = undecided.update(decision=decision, decided_by=reviewer, decided_at=now,
                                     note=note, updated_at=now)  # fmt: skip
            subs = []
        if count:
            detail: dict[str, object] = {"count": count, "note": note, "matching": True}
            if subs:
                detail["holders"] = subs
            actor.record("review.removed" if removing else "review.kept",
                         review_target(review), review.correlation_id, **detail)  # fmt: skip
        if removing:
            _removals_after_commit([pk for pk, _ in ids], actor)
    return count


def review_keep_unflagged(*, review_id: int, reviewer: User, actor: Actor, note: str = "") -> int:
    """ "Keep all not flagged": every undecided holder the snapshot did not flag, and this
    person may review, is kept; how many. One statement."""
    return review_decide_matching(
        review_id=review_id, reviewer=reviewer, decision=AccessReviewItem.Decision.KEEP,
        matching=Q(flagged=False), note=note, actor=actor,
    )  # fmt: skip


# --- completing ------------------------------------------------------------------------------


def _completed_words(review: AccessReview) -> str:
    by = str(review.completed_by) if review.completed_by_id else "the removal policy"
    return f"This review was completed by {by} already."


@transaction.atomic
def review_complete(*, review_id: int, person: User, actor: Actor) -> AccessReview:
    """Record that the review is done: every holder decided, by whom and when (the review is
    locked, so it completes once). Removals still on their way to Auth0 go on; the evidence
    shows each one's outcome."""
    review, scope, viewer = _reviewing(review_id, person, lock=True)
    correlate(review.correlation_id)
    if review.completed_at is not None:
        raise ReviewConflict(_completed_words(review))
    if not may_complete_review(viewer, scope):
        raise ReviewNotAllowed(f"Only the owners of {scope.role} and portal admins complete it.")
    undecided = review.items.filter(decision="").count()
    if undecided:
        raise ReviewRefused(
            f"{undecided} holder{'s are' if undecided != 1 else ' is'} not decided yet: each "
            "holder is kept or removed before the review is complete."
        )
    review.completed_at, review.completed_by = timezone.now(), person
    review.save(update_fields=["completed_at", "completed_by"])
    actor.record("review.completed", review_target(review), review.correlation_id,
                 **_counts(review))  # fmt: skip
    return review


def _counts(review: AccessReview) -> dict[str, int]:
    items = review.items.all()
    return {
        "holders": items.count(),
        "kept": items.filter(decision=AccessReviewItem.Decision.KEEP).count(),
        "removed": items.filter(decision=AccessReviewItem.Decision.REMOVE).count(),
    }


# --- the removal policy ----------------------------------------------------------------------


def reviews_enforce(*, actor: Actor = SYSTEM, now: datetime | None = None) -> dict[int, int]:
    """Apply each role's removal policy: an open review whose role removes what is not reviewed
    N days after the due date, past that, has its undecided holders removed and is completed;
    {review id: holders removed}."""
    now = now or timezone.now()
    enforced = {}
    candidates = (
        reviews_open()
        .filter(role__review_remove_after__isnull=False, policy_applied_at__isnull=True)
        .select_related("role")
    )
    for review in candidates:
        after = review.role.review_remove_after
        if after is not None and review.due_at + after <= now:
            enforced[review.pk] = _enforce(review_id=review.pk, actor=actor, now=now)
    return enforced


def _enforce(*, review_id: int, actor: Actor, now: datetime) -> int:
    with transaction.atomic():
        review = AccessReview.objects.select_for_update().select_related("role").get(pk=review_id)
        after = review.role.review_remove_after
        if review.completed_at is not None or after is None or review.due_at + after > now:
            return 0
        correlate(review.correlation_id)
        rows = list(
            review.items.filter(decision="")
            .select_for_update(of=("self",))
            .order_by("pk")
            .values_list("pk", "sub", "user_id")
        )
        undecided = [(pk, sub) for pk, sub, _ in rows]
        days = after.days
        if refusal := _last_admins_refusal(review, {user_id for _, _, user_id in rows}):
            # Not applied, once: the review stays open, overdue, for a person to decide.
            review.policy_applied_at = now
            review.save(update_fields=["policy_applied_at"])
            actor.record("review.policy_withheld", review_target(review), review.correlation_id,
                         count=len(undecided), reason=refusal)  # fmt: skip
            return 0
        note = f"not reviewed within {days} day{'s' if days != 1 else ''} of the due date"
        AccessReviewItem.objects.filter(pk__in=[pk for pk, _ in undecided]).update(
            decision=AccessReviewItem.Decision.REMOVE, decided_by=None, decided_at=now,
            note=note, removal=AccessReviewItem.Removal.PENDING, updated_at=now,
        )  # fmt: skip
        review.completed_at, review.completed_by, review.policy_applied_at = now, None, now
        review.save(update_fields=["completed_at", "completed_by", "policy_applied_at"])
        actor.record("review.policy_removed", review_target(review), review.correlation_id,
                     count=len(undecided), holders=[sub for _, sub in undecided],
                     note=note)  # fmt: skip
        actor.record("review.completed", review_target(review), review.correlation_id,
                     by="the removal policy", **_counts(review))  # fmt: skip
        _removals_after_commit([pk for pk, _ in undecided], actor)
        _notify_after_commit(review, actor, "policy_removed")
    logger.info("review %s: the removal policy removed %d holders", review_id, len(undecided))
    return len(undecided)


# --- removals ------------------------------------------------------------------------------


def review_removals_retry(*, review_id: int, person: User, actor: Actor) -> int:
    """Send the review's failed removals to Auth0 again (its reviewers and admins); how many."""
    with transaction.atomic():
        review, scope, viewer = _reviewing(review_id, person, lock=True)
        if not may_complete_review(viewer, scope):
            raise ReviewNotAllowed(f"Only the owners of {scope.role} and portal admins retry.")
        failed = list(
            review.items.filter(removal=AccessReviewItem.Removal.FAILED)
            .select_for_update(of=("self",))
            .values_list("pk", "sub")
        )
        AccessReviewItem.objects.filter(pk__in=[pk for pk, _ in failed]).update(
            removal=AccessReviewItem.Removal.PENDING, removal_attempts=0,
            updated_at=timezone.now(),
        )  # fmt: skip
        if failed:
            actor.record("review.removal_retried", review_target(review), review.correlation_id,
                         holders=[sub for _, sub in failed], count=len(failed))  # fmt: skip
            _removals_after_commit([pk for pk, _ in failed], actor)
    return len(failed)


def review_removals_stuck() -> list[int]:
    """Removals left pending longer than a removal's retries take (a worker died, a message
    was lost): the reconciler queues them again; carrying one out twice removes nothing twice."""
    cutoff = timezone.now() - settings.ACCESS_RECONCILE_AFTER - REMOVAL_LONGEST_WAIT
    return list(
        AccessReviewItem.objects.filter(
            removal=AccessReviewItem.Removal.PENDING, updated_at__lt=cutoff
        ).values_list("pk", flat=True)
    )


# The longest a removal waits between two attempts (access.tasks.review_removal_task).
REMOVAL_LONGEST_WAIT = timedelta(minutes=5)


# --- reminders -------------------------------------------------------------------------------

# Reviewers are reminded from two weeks before a review is due: at 14, 7, 3 and 1 days, on the
# day, then once a week while it is overdue.
REMINDER_DAYS_BEFORE = (14, 7, 3, 1)


def reminder_slot(*, due_at: datetime, now: datetime) -> str:
    """The reminder slot `now` falls in for a review due at `due_at`; "" before the first."""
    if now >= due_at:
        return f"overdue-{(now - due_at).days // 7}w"
    for days in reversed(REMINDER_DAYS_BEFORE):
        if now >= due_at - timedelta(days=days):
            return f"before-{days}d"
    return ""


def reviews_remind_claim(*, now: datetime | None = None) -> list[tuple[int, str]]:
    """The open reviews whose reviewers are due a reminder, each with its slot, claimed: a row
    per (review, slot) under a unique constraint, so beat retried or run twice reminds once."""
    now = now or timezone.now()
    soon = now + timedelta(days=REMINDER_DAYS_BEFORE[0])
    claimed = []
    for review_id, due_at in reviews_open().filter(due_at__lte=soon).values_list("pk", "due_at"):
        slot = reminder_slot(due_at=due_at, now=now)
        if not slot:
            continue
        try:
            with transaction.atomic():
                AccessReviewReminder.objects.create(review_id=review_id, slot=slot, at=now)
        except IntegrityError:
            continue
        claimed.append((review_id, slot))
    return claimed


# --- queueing after commit -------------------------------------------------------------------
# As access.services does: the tasks call this module and it queues them, by reference, once
# its transaction commits; access.tasks is imported when one is queued.


def _headers(actor: Actor) -> dict[str, str]:
    return {"atrium_actor": actor.id, "atrium_actor_name": actor.name,
            "atrium_actor_email": actor.email}  # fmt: skip


def _after_commit(task: Task, args: tuple[object, ...], actor: Actor) -> None:
    headers = _headers(actor)
    transaction.on_commit(lambda: task.apply_async(args=args, headers=headers))


def _removals_after_commit(item_ids: list[int], actor: Actor) -> None:
    """One task per removal: each is retried, and fails, on its own."""
    if not item_ids:
        return
    from access.tasks import review_removal_task  # access.tasks imports this module

    headers = _headers(actor)

    def send() -> None:
        for item_id in item_ids:
            review_removal_task.apply_async(args=(item_id,), headers=headers)

    transaction.on_commit(send)


def _notify_after_commit(review: AccessReview, actor: Actor, event: str, slot: str = "") -> None:
    from access.tasks import review_notify_task  # access.tasks imports this module

    _after_commit(review_notify_task, (review.pk, event, slot), actor)
