"""The access reviews' API (SPEC's "Access reviews"): the reviews a caller may see, one review
with its holders, and decisions on them. Machines read them with `read:audit`, people with
`read:access` those of the roles they own (every one for a portal admin); decisions are
people's, `approve:access`, by the policy's rule (never one's own holding)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from django.http import HttpRequest
from django.utils import timezone
from ninja import Router, Schema
from ninja.errors import HttpError
from pydantic import Field

from access.api import api_actor
from access.models import AccessReview, AccessReviewItem
from access.policy import is_admin_or_machine, may_see_review, viewer_for
from access.review_selectors import (
    review_items,
    review_items_by_sub,
    review_of,
    review_scope,
    reviews_for_evidence,
    reviews_progress,
)
from access.reviews import ItemDecision, review_decide
from portal.apikit import person_of, principal_of
from portal.bounds import MAX_LIST, Id

router = Router(tags=["access reviews"])


class RemovalOut(Schema):
    state: str = Field(description="pending (being removed in Auth0), done or failed")
    at: datetime | None
    error: str


class HolderOut(Schema):
    sub: str
    email: str
    name: str
    source: str = Field(description="portal_grant, auth0 or sign_in; empty once not held")
    since: datetime | None
    until: datetime | None
    lastSignIn: datetime | None
    requestId: int | None = Field(description="the portal grant that gave it")
    approvedBy: str
    flags: list[str]
    decision: Literal["keep", "remove"] | None
    decidedBy: str | None = Field(description="the reviewer's sub; null for the removal policy")
    decidedAt: datetime | None
    note: str
    removal: RemovalOut | None


class ReviewSummary(Schema):
    id: int
    role: str
    kind: str = Field(description="scheduled, or use: a review of one use (break-glass)")
    reason: str
    requestId: int | None
    openedAt: datetime
    dueAt: datetime
    state: Literal["open", "completed", "overdue"]
    completedAt: datetime | None
    completedBy: str | None = Field(description="a sub; null when the removal policy did")
    holdersTotal: int
    decided: int


class ReviewOut(ReviewSummary):
    holders: list[HolderOut]


class ReviewList(Schema):
    items: list[ReviewSummary]


class DecisionIn(Schema):
    sub: str
    decision: Literal["keep", "remove"]
    note: str = Field(default="", max_length=2000)


class DecisionsIn(Schema):
    decisions: Annotated[list[DecisionIn], Field(min_length=1, max_length=MAX_LIST)]


def _summary(review: AccessReview, decided: int) -> dict[str, Any]:
    return {
        "id": review.pk, "role": review.role.name, "kind": review.kind, "reason": review.reason,
        "requestId": review.request_id, "openedAt": review.opened_at, "dueAt": review.due_at,
        "state": review.state, "completedAt": review.completed_at,
        "completedBy": review.completed_by.sub if review.completed_by else None,
        "holdersTotal": review.holders_total, "decided": decided,
    }  # fmt: skip


def _holder(item: AccessReviewItem) -> HolderOut:
    removal = (
        RemovalOut(state=item.removal, at=item.removed_at, error=item.removal_error)
        if item.removal else None
    )  # fmt: skip
    return HolderOut(
        sub=item.sub, email=item.email, name=item.name, source=item.source, since=item.since,
        until=item.until, lastSignIn=item.last_sign_in, requestId=item.request_id,
        approvedBy=item.approved_by, flags=item.flags, decision=item.decision or None,  # type: ignore[arg-type]
        decidedBy=item.decided_by.sub if item.decided_by else None, decidedAt=item.decided_at,
        note=item.note, removal=removal,
    )  # fmt: skip


def _reads_all(request: HttpRequest) -> bool:
    """With read:audit, portal admins and machines read every review; without it, machines
    none (a review is audit evidence) and people those of the roles they own."""
    principal = principal_of(request)
    return "read:audit" in principal.scopes and is_admin_or_machine(principal, person_of(request))


def _readable(request: HttpRequest) -> None:
    principal = principal_of(request)
    if "read:audit" not in principal.scopes:
        principal.require_scope("read:access")


@router.get("", response=ReviewList, summary="The access reviews the caller may see")
def reviews_list(
    request: HttpRequest,
    role: str = "",
    state: Literal["open", "completed", "overdue"] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> ReviewList:
    """Oldest opened first, at most 500; `since`/`until` bound when they opened."""
    _readable(request)
    since, until = _moment("since", since), _moment("until", until)
    if _reads_all(request):
        viewer = None
    elif principal_of(request).is_machine:
        return ReviewList(items=[])
    else:
        viewer = viewer_for(person_of(request))
    found = reviews_for_evidence(viewer=viewer, role=role, since=since, until=until)
    if state:
        found = [review for review in found if review.state == state]
    progress = reviews_progress(review_ids=[review.pk for review in found])
    return ReviewList(items=[ReviewSummary(**_summary(r, progress[r.pk].decided)) for r in found])


def _moment(name: str, value: datetime | None) -> datetime | None:
    """A moment the database can compare: in UTC (an offset PostgreSQL has no room for, such
    as -21:27, is not sent to it), within the years it holds."""
    if value is None:
        return None
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    try:
        moment = value.astimezone(UTC)
    except (OverflowError, ValueError) as error:
        raise HttpError(400, f"{name}: {value.isoformat()} is out of range") from error
    if not 1 <= moment.year <= 9998:
        raise HttpError(400, f"{name}: {value.isoformat()} is out of range")
    return moment


def _review(request: HttpRequest, review_id: int) -> AccessReview:
    review = review_of(review_id=review_id)
    if review is not None and not _reads_all(request):
        person = person_of(request)
        scope = review_scope(role_name=review.role.name)
        if person is None or not may_see_review(viewer_for(person), scope):
            review = None
    if review is None:
        raise HttpError(404, f"No access review {review_id}")
    return review


def _review_out(review: AccessReview) -> ReviewOut:
    holders = [_holder(item) for item in review_items(review=review)]
    decided = sum(1 for holder in holders if holder.decision)
    return ReviewOut(**_summary(review, decided), holders=holders)


@router.get("/{review_id}", response=ReviewOut, summary="One access review, with its holders")
def reviews_get(request: HttpRequest, review_id: Id) -> ReviewOut:
    _readable(request)
    return _review_out(_review(request, review_id))


@router.post(
    "/{review_id}/decisions",
    response=ReviewOut,
    summary="Keep or remove holders (a reviewer of the role; never one's own holding)",
)
def reviews_decide(request: HttpRequest, review_id: Id, body: DecisionsIn) -> ReviewOut:
    """All or nothing: a holder someone decided already answers 409 and one the caller may
    not review 403, deciding none of them. A removal is carried into Auth0 by a worker."""
    principal_of(request).require_scope("approve:access")
    person = person_of(request)
    if person is None:
        raise HttpError(403, "reviews are decided by people who own the role")
    review = _review(request, review_id)
    ids = review_items_by_sub(review=review, subs=[d.sub for d in body.decisions])
    unknown = [d.sub for d in body.decisions if d.sub not in ids]
    if unknown:
        raise HttpError(400, f"decisions: no holder {unknown[0]!r} in review {review.pk}")
    if len({d.sub for d in body.decisions}) != len(body.decisions):
        raise HttpError(400, "decisions: a holder is named twice")
    # A refusal (ReviewConflict 409, ReviewNotAllowed 403) is answered by portal.api's handlers.
    review_decide(
        review_id=review.pk, reviewer=person, actor=api_actor(request), all_or_nothing=True,
        decisions=[ItemDecision(ids[d.sub], d.decision, d.note) for d in body.decisions],
    )  # fmt: skip
    return _review_out(_review(request, review.pk))
