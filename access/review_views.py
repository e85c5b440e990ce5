"""The access reviews' pages: the reviews waiting for me, a review's holders to keep or remove
(one at a time, those ticked, every one matching the filters, or "keep all not flagged"),
completing it, and what an auditor takes away: the evidence of a review or of a period, as a
printable page and as CSV, and the access report (who holds what now).

Every decision is asked of access.policy on the server, whatever the page offered; everything
works without JavaScript, htmx only swapping a decided row in place. The views are many, not
long, and share the evidence's rows, hence one module past 400 lines.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_GET, require_POST

from access.filters import ReviewItemFilter
from access.models import AccessReview, AccessReviewItem, AuditEvent
from access.policy import (
    ReviewScope,
    Viewer,
    is_portal_admin,
    may_complete_review,
    may_review_holding,
    may_see_review,
    reviewable_items_q,
    viewer_for,
)
from access.review_selectors import (
    FLAG_WORDS,
    evidence_audit,
    evidence_items,
    holdings_by_entity,
    holdings_by_role,
    review_items,
    review_of,
    review_progress,
    review_scope,
    reviews_for,
    reviews_for_evidence,
    reviews_progress,
)
from access.reviews import (
    ItemDecision,
    ReviewConflict,
    ReviewNotAllowed,
    ReviewRefused,
    review_complete,
    review_decide,
    review_decide_matching,
    review_keep_unflagged,
    review_removals_retry,
)
from access.selectors import conflicting_holdings
from access.views import actor_of, inert_cell
from access.words import source_words
from catalog.templatetags.entities import prime_entities
from catalog.templatetags.people import prime_people
from portal.bounds import MAX_ID, whole_number
from portal.models import User

PAGE_SIZES = (50, 100, 200)


def _person(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


@require_GET
def reviews(request: HttpRequest) -> HttpResponse:
    """The open reviews I may see, oldest due first, those waiting for my decisions on top; or,
    on the Completed tab, the latest completed ones, with their evidence."""
    viewer = viewer_for(_person(request))
    completed = request.GET.get("tab") == "completed"
    rows = reviews_for(viewer=viewer, completed=completed)
    context = {
        "tab": "completed" if completed else "open",
        "waiting": [row for row in rows if row.mine] if not completed else [],
        "others": [row for row in rows if not row.mine] if not completed else rows,
        "is_admin": viewer.is_admin,
        "roles": sorted({row.review.role.name for row in rows}),
        "now": timezone.now(),
    }
    return render(request, "access/reviews.html", context)


def _visible_review(
    request: HttpRequest, review_id: int
) -> tuple[AccessReview, ReviewScope, Viewer]:
    """The review, if this person owns its role or administers the portal; 404 else."""
    review = review_of(review_id=review_id)
    if review is None:
        raise Http404("No such review")
    scope = review_scope(role_name=review.role.name)
    viewer = viewer_for(_person(request))
    if not may_see_review(viewer, scope):
        raise Http404("No such review")
    return review, scope, viewer


@dataclass(frozen=True)
class HolderRow:
    """A holder on a review's page, as the person looking stands to them."""

    item: AccessReviewItem
    may_decide: bool  # undecided, and theirs to decide
    own: bool  # their own holding (or another account of theirs)

    @property
    def flag_words(self) -> list[str]:
        return [FLAG_WORDS.get(flag, flag) for flag in self.item.flags]

    @property
    def source_words(self) -> str:
        return source_words(self.item.source) if self.item.source else "no longer held"


def holder_row(item: AccessReviewItem, viewer: Viewer, scope: ReviewScope) -> HolderRow:
    emails = [item.email, item.user.email]
    own = any(viewer.is_person(sub=item.sub, email=email) for email in emails)
    may = not item.decision and may_review_holding(
        viewer, holder_sub=item.sub, holder_emails=emails, scope=scope
    )
    return HolderRow(item=item, may_decide=may, own=own)


def _filters_query(query: QueryDict) -> str:
    """The filters of a review's page, without its page number: what a form sends back."""
    kept = query.copy()
    kept.pop("page", None)
    return kept.urlencode()


@require_GET
def review_detail(request: HttpRequest, review_id: int) -> HttpResponse:
    """A review: its holders a page at a time, filtered, each with Keep or Remove for those the
    person may review, the bulk actions, the progress, and Complete once all are decided. A
    fixed number of queries whatever the review's size."""
    review, scope, viewer = _visible_review(request, review_id)
    filterset = ReviewItemFilter(request.GET, queryset=review_items(review=review))
    size = whole_number(request.GET.get("per_page", ""))
    per_page = size if size in PAGE_SIZES else PAGE_SIZES[0]
    page = Paginator(filterset.qs, per_page).get_page(request.GET.get("page"))
    rows = [holder_row(item, viewer, scope) for item in page.object_list]
    prime_people(request, [row.item.email for row in rows]
                 + [row.item.decided_by.email for row in rows if row.item.decided_by])  # fmt: skip
    prime_entities(request, list(scope.owners))
    mine = AccessReviewItem.objects.filter(review=review, decision="").filter(
        reviewable_items_q(viewer, scope)
    )
    # Invalid filters narrow nothing: nothing is offered "for every holder matching" them.
    open_ = review.completed_at is None
    valid = filterset.is_valid()
    context = {
        "review": review, "scope": scope, "rows": rows, "page": page,
        "progress": review_progress(review=review), "filter": filterset,
        "filtered": any(v for k, v in request.GET.items() if k not in ("page", "per_page")),
        "query": _filters_query(request.GET), "per_page": per_page, "page_sizes": PAGE_SIZES,
        "matching_mine": filterset.qs.filter(decision="").filter(
            reviewable_items_q(viewer, scope)).count() if open_ and valid else 0,
        "unflagged_mine": mine.filter(flagged=False).count() if open_ else 0,
        "may_complete": open_ and may_complete_review(viewer, scope),
        "is_admin": viewer.is_admin, "now": timezone.now(),
    }  # fmt: skip
    return render(request, "access/review_detail.html", context)


def _filter_errors(filterset: ReviewItemFilter) -> str:
    return "; ".join(f"{field}: {errors[0]}" for field, errors in filterset.errors.items())


def _back(review: AccessReview, query: str) -> str:
    """Back to the review's page with the filters the form was sent from (its own only)."""
    url = reverse("access:review_detail", args=[review.pk])
    kept = QueryDict(query[:2000]).urlencode()
    return f"{url}?{kept}" if kept else url


def _note(request: HttpRequest, *names: str) -> str:
    for name in names:
        if value := request.POST.get(name, ""):
            return value[:2000]
    return ""


@require_POST
def review_decide_one(request: HttpRequest, review_id: int) -> HttpResponse:
    """Keep or remove one holder; htmx swaps the row for what came of it (409 in place when
    someone decided first), a plain form comes back to the page saying so."""
    review, scope, viewer = _visible_review(request, review_id)
    item_id = whole_number(request.POST.get("item", ""))
    decision = request.POST.get("decision", "")
    if item_id is None or item_id > MAX_ID or decision not in AccessReviewItem.Decision.values:
        return HttpResponse("Choose keep or remove for one holder.", status=400)
    note = _note(request, f"note-{item_id}", "note")
    status, problem = 200, ""
    try:
        review_decide(
            review_id=review.pk, reviewer=_person(request), actor=actor_of(request),
            decisions=[ItemDecision(item_id, decision, note)], all_or_nothing=True,
        )  # fmt: skip
    except ReviewConflict as conflict:
        status, problem = 409, str(conflict)
    except ReviewNotAllowed as refused:
        status, problem = 403, str(refused)
    except ReviewRefused as refused:
        status, problem = 400, str(refused)
    if request.htmx:  # type: ignore[attr-defined]
        item = review_items(review=review).filter(pk=item_id).first()
        if item is None:
            raise Http404("No such holder in this review")
        context = {"row": holder_row(item, viewer, scope), "problem": problem, "review": review}
        response = render(request, "access/review_detail.html#holder-row", context, status=status)
        response["HX-Trigger"] = "review-changed"
        return response
    if problem:
        messages.error(request, problem)
    else:
        verb = "Kept" if decision == AccessReviewItem.Decision.KEEP else "Removed"
        messages.success(
            request,
            f"{verb}: the decision is recorded."
            + (" The role is being removed in Auth0." if verb == "Removed" else ""),
        )
    return redirect(_back(review, request.POST.get("query", "")))


@require_POST
def review_bulk(request: HttpRequest, review_id: int) -> HttpResponse:
    """Decide many holders at once: the ticked ones, every undecided one matching the page's
    filters, or every one not flagged; say what came of it."""
    review, _, _ = _visible_review(request, review_id)
    query = request.POST.get("query", "")
    back = _back(review, query)
    action = request.POST.get("action", "")
    note = _note(request, "note")
    person, actor = _person(request), actor_of(request)
    try:
        if action == "keep_unflagged":
            kept = review_keep_unflagged(review_id=review.pk, reviewer=person, actor=actor,
                                         note=note)  # fmt: skip
            plural = "s" if kept != 1 else ""
            messages.success(request, f"Kept {kept:,} holder{plural} not flagged; the flagged "
                             "ones wait for a decision of their own.")  # fmt: skip
            return redirect(back)
        if action not in AccessReviewItem.Decision.values:
            messages.error(request, "Choose keep or remove.")
            return redirect(back)
        verb = "Kept" if action == AccessReviewItem.Decision.KEEP else "Removed"
        if request.POST.get("scope") == "matching":
            filterset = ReviewItemFilter(QueryDict(query[:2000]),
                                         queryset=review_items(review=review))  # fmt: skip
            if not filterset.is_valid():  # an ignored filter would widen "every matching"
                messages.error(request, f"Nothing was {verb.lower()}: the filters are not "
                               f"valid ({_filter_errors(filterset)}).")  # fmt: skip
                return redirect(back)
            done = review_decide_matching(
                review_id=review.pk, reviewer=person, decision=action, note=note, actor=actor,
                matching=Q(pk__in=filterset.qs.values("pk")),
            )  # fmt: skip
            messages.success(request, f"{verb} {done:,} holder{'s' if done != 1 else ''} "
                             "matching the filters.")  # fmt: skip
            return redirect(back)
        selected = (whole_number(value) for value in request.POST.getlist("selected"))
        ids = [value for value in selected if value is not None and value <= MAX_ID]
        if not ids:
            messages.error(request, f"Nothing was {verb.lower()}: tick holders first, or choose "
                           "every holder matching the filters.")  # fmt: skip
            return redirect(back)
        outcome = review_decide(
            review_id=review.pk, reviewer=person, actor=actor,
            decisions=[ItemDecision(item_id, action, note) for item_id in ids],
        )  # fmt: skip
    except (ReviewConflict, ReviewRefused, ReviewNotAllowed) as refused:
        messages.error(request, str(refused))
        return redirect(back)
    said = f"{verb} {outcome.done:,} holder{'s' if outcome.done != 1 else ''}"
    late = [f"{count} {'was' if count == 1 else 'were'} {how}"
            for how, count in sorted(outcome.late.items())]  # fmt: skip
    said += ("; " + "; ".join(late) if late else "") + "."
    (messages.success if outcome.done else messages.warning)(request, said)
    for refusal in sorted(set(outcome.refused)):
        messages.error(request, refusal)
    return redirect(back)


@require_POST
def review_complete_view(request: HttpRequest, review_id: int) -> HttpResponse:
    review, _, _ = _visible_review(request, review_id)
    try:
        review_complete(review_id=review.pk, person=_person(request), actor=actor_of(request))
    except (ReviewConflict, ReviewRefused, ReviewNotAllowed) as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, "The review is complete.")
    return redirect("access:review_detail", review.pk)


@require_POST
def review_retry(request: HttpRequest, review_id: int) -> HttpResponse:
    """Send the review's failed removals to Auth0 again."""
    review, _, _ = _visible_review(request, review_id)
    try:
        retried = review_removals_retry(
            review_id=review.pk, person=_person(request), actor=actor_of(request)
        )
    except ReviewNotAllowed as refused:
        raise PermissionDenied(str(refused)) from refused
    messages.success(
        request, f"{retried} removal{'s' if retried != 1 else ''} sent to Auth0 again."
    )
    return redirect("access:review_detail", review.pk)


# --- evidence --------------------------------------------------------------------------------

EVIDENCE_COLUMNS = [
    "record", "review_id", "role", "kind", "reason", "review_request_id", "opened_at", "due_at",
    "completed_at", "completed_by", "holder_sub", "holder_email", "holder_name", "source",
    "since", "until", "grant_request_id", "approved_by", "last_sign_in", "flags", "decision",
    "decided_by", "decided_at", "note", "removal", "removed_at", "removal_error",
    "audit_at", "audit_actor", "audit_action", "audit_detail",
]  # fmt: skip


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def _completed_by(review: AccessReview) -> str:
    if review.completed_at is None:
        return ""
    if review.completed_by is None:
        return "the removal policy"
    return f"{review.completed_by.name} <{review.completed_by.email}>"


def _evidence_rows(reviews: list[AccessReview]) -> Iterator[list[str]]:
    """Each review's holders (snapshot, decision, removal), then its audit records, as CSV
    rows; `record` says which."""
    by_id = {review.pk: review for review in reviews}
    audit = evidence_audit(reviews=reviews)
    seen: list[int] = []
    for item in evidence_items(reviews=reviews):  # review by review
        if not seen or seen[-1] != item.review_id:
            if seen:
                yield from _audit_rows(by_id[seen[-1]], audit)
            seen.append(item.review_id)
        decider = item.decided_by
        decided_by = (
            f"{decider.name} <{decider.email}>" if decider
            else "the removal policy" if item.decision else ""
        )  # fmt: skip
        yield ["holder", *_review_cells(by_id[item.review_id]),
               item.sub, item.email, item.name, item.source, _iso(item.since), _iso(item.until),
               str(item.request_id or ""), item.approved_by, _iso(item.last_sign_in),
               " ".join(item.flags), item.decision, decided_by, _iso(item.decided_at), item.note,
               item.removal, _iso(item.removed_at), item.removal_error, "", "", "", ""]  # fmt: skip
    if seen:
        yield from _audit_rows(by_id[seen[-1]], audit)
    for review in reviews:  # reviews that found nobody: their records alone
        if review.pk not in seen:
            yield from _audit_rows(review, audit)


def _review_cells(review: AccessReview) -> list[str]:
    return [
        str(review.pk), review.role.name, review.kind, review.reason,
        str(review.request_id or ""), _iso(review.opened_at), _iso(review.due_at),
        _iso(review.completed_at), _completed_by(review),
    ]  # fmt: skip


def _audit_rows(review: AccessReview, audit: dict[str, list[AuditEvent]]) -> Iterator[list[str]]:
    blank = [""] * 17
    for event in audit.get(review.correlation_id, []):
        who = event.actor_name or event.actor
        if event.actor_email:
            who += f" <{event.actor_email}>"
        yield ["audit", *_review_cells(review), *blank, _iso(event.at), who, event.action,
               json.dumps(event.detail, sort_keys=True)]  # fmt: skip


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_response(rows: Iterable[list[str]], header: list[str], filename: str) -> HttpResponseBase:
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([inert_cell(cell) for cell in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _evidence(request: HttpRequest, reviews: list[AccessReview], *, title: str,
              filename: str, period: dict[str, Any]) -> HttpResponseBase:  # fmt: skip
    """The evidence of these reviews: CSV with `?format=csv`, else the printable page."""
    if request.GET.get("format") == "csv":
        return _csv_response(_evidence_rows(reviews), EVIDENCE_COLUMNS, filename)
    items: dict[int, list[AccessReviewItem]] = {review.pk: [] for review in reviews}
    for item in evidence_items(reviews=reviews):
        items[item.review_id].append(item)
    audit = evidence_audit(reviews=reviews)
    progress = reviews_progress(review_ids=items)
    sections = [
        {"review": review, "items": items[review.pk], "progress": progress[review.pk],
         "audit": audit[review.correlation_id]}
        for review in reviews
    ]  # fmt: skip
    query = request.GET.copy()
    query["format"] = "csv"
    context = {"sections": sections, "title": title, "csv_url": f"?{query.urlencode()}",
               "period": period, "flag_words": FLAG_WORDS,
               "generated_at": timezone.now()}  # fmt: skip
    return render(request, "access/review_evidence.html", context)


@require_GET
def review_evidence(request: HttpRequest, review_id: int) -> HttpResponseBase:
    """One review's evidence: the snapshot, every decision with who and when, every removal
    with what Auth0 made of it, and the review's audit records."""
    review, _, _ = _visible_review(request, review_id)
    return _evidence(
        request, [review], title=f"Access review {review.pk} of {review.role.name}",
        filename=f"atrium-review-{review.pk}.csv", period={},
    )  # fmt: skip


class _NotADay(ValueError):
    pass


def _day(name: str, value: str) -> datetime | None:
    """The start of the day `value` names (YYYY-MM-DD), in the viewer's time zone; None if
    empty; _NotADay saying which field, if it is not a date."""
    if not value.strip():
        return None
    try:
        day = parse_date(value.strip()[:20])
    except ValueError:
        day = None
    if day is None:
        raise _NotADay(f"{name}: {value[:40]!r} is not a date such as 2025-01-31")
    if not 1900 <= day.year <= 9998:
        raise _NotADay(f"{name}: {day.isoformat()} is out of range (1900 to 9998)")
    return datetime.combine(day, datetime.min.time(), tzinfo=timezone.get_current_timezone())


@require_GET
def reviews_evidence(request: HttpRequest) -> HttpResponseBase:
    """The evidence of every review of a role, or of all roles, opened in a period."""
    viewer = viewer_for(_person(request))
    role = request.GET.get("role", "").strip()[:255]
    since_raw, until_raw = request.GET.get("since", ""), request.GET.get("until", "")
    try:
        since, until = _day("since", since_raw), _day("until", until_raw)
    except _NotADay as error:
        return HttpResponse(str(error), status=400, content_type="text/plain; charset=utf-8")
    if until is not None:
        until += timedelta(days=1)  # the last day counts whole
    reviews = reviews_for_evidence(viewer=viewer, role=role, since=since, until=until)
    what = role or "all roles"
    period = {
        "role": role,
        "since": since_raw if since else "",
        "until": until_raw if until else "",
    }
    parts = [f"from {since_raw}" if since else "", f"until {until_raw}" if until else ""]
    span = " ".join(part for part in parts if part)
    return _evidence(
        request, reviews, title=f"Access reviews of {what}" + (f", opened {span}" if span else ""),
        filename="atrium-reviews.csv", period=period,
    )  # fmt: skip


@require_GET
def access_report(request: HttpRequest) -> HttpResponseBase:
    """Portal admins: who holds what now, per role or per entity, with each holding's source,
    as CSV."""
    if not is_portal_admin(_person(request)):
        raise PermissionDenied("the access report is for portal admins")
    stamp = timezone.now().strftime("%Y%m%d")
    # Separation of duties: beside each holding, the roles its holder also holds that nobody
    # may hold together with it (the Roles page flags the same).
    conflicting = conflicting_holdings()

    def conflicts(sub: str, role: str) -> str:
        return " ".join(conflicting.get((sub, role), ()))

    if request.GET.get("by") == "entity":
        rows = (
            [ref, role, sub, email, name, source, _iso(since), _iso(until), conflicts(sub, role)]
            for ref, role, sub, email, name, source, since, until in holdings_by_entity()
        )
        header = ["entity_ref", "role", "holder_sub", "holder_email", "holder_name", "source",
                  "since", "until", "conflicts_with_held"]  # fmt: skip
        return _csv_response(rows, header, f"atrium-access-by-entity-{stamp}.csv")
    by_role = (
        [role, sub, email, name, source, _iso(since), _iso(until), str(request_id or ""),
         conflicts(sub, role)]
        for role, sub, email, name, source, since, until, request_id in holdings_by_role()
    )  # fmt: skip
    header = ["role", "holder_sub", "holder_email", "holder_name", "source", "since", "until",
              "grant_request_id", "conflicts_with_held"]  # fmt: skip
    return _csv_response(by_role, header, f"atrium-access-by-role-{stamp}.csv")
