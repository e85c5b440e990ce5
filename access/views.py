"""The access pages: my roles and requests, asking and deciding, and for portal admins the
mirrored roles with their registry entries, the sync and the audit log.

Each view parses, asks one selector or service and renders; they are many, not long, hence one
module past 400 lines.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_tables2 import RequestConfig

from access.audit import Actor, actors_named
from access.auth0 import Auth0Error
from access.filters import ApprovalsFilter, AuditFilter
from access.forms import AccessRequestForm, BreakGlassForm, RoleRegistryForm
from access.models import AccessRequest, AuditEvent, Decision, Role
from access.policy import (
    DecisionScope,
    break_glass_longest,
    is_portal_admin,
    role_refusal,
    viewer_for,
    viewer_forget,
)
from access.registry import RegistryEntry, RegistryError, registry_entry_of
from access.selectors import (
    Standing,
    asking,
    conflicts_held,
    count_to_decide,
    decided_by,
    decision_scopes,
    decisions_by,
    entities_declaring,
    mirror_state,
    request_standing,
    request_timeline,
    requests_of,
    requests_waiting_for,
    role_members,
    role_memberships_of,
    role_rules,
    roles_page,
    rules_of,
    sync_history,
    use_reviews_of,
    waiting_details,
)
from access.services import (
    AlreadyDecided,
    NotAllowed,
    RequestRefused,
    StepUpRequired,
    access_break_glass,
    access_request_cancel,
    access_request_create,
    access_request_decide,
    grant_end,
    grant_retry,
    role_registry_set,
)
from access.sync import role_memberships_refresh_from_auth0
from access.tables import AuditTable, MemberTable, RoleTable
from access.words import registry_words
from catalog.refs import parse_entity_ref
from catalog.selectors import EntityLabel, entity_by_ref, entity_labels
from catalog.templatetags.entities import prime_entities
from catalog.templatetags.people import prime_people
from portal.auth.drafts import DRAFT_FIELD, draft_take, draft_token
from portal.auth.mfa import session_mfa_at
from portal.auth.stepup import PendingDecision, step_up_begin, step_up_take
from portal.bounds import MAX_ID, whole_number
from portal.durations import duration_words
from portal.models import User
from portal.ratelimits import ROLE_REFRESH, person_key, rate_limited

logger = logging.getLogger(__name__)
MEMBERS_PER_PAGE = 50


def _person(request: HttpRequest) -> User:
    return request.user  # type: ignore[return-value]


def _require_admin(request: HttpRequest) -> None:
    if not is_portal_admin(_person(request)):
        raise PermissionDenied("the roles mirror is for portal admins")


@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    """My roles, where each came from and when it ends."""
    person = _person(request)
    mine = list(requests_of(user=person))
    labels = entity_labels(refs=[r.entity_ref for r in mine])
    context = {
        "memberships": role_memberships_of(user=person),
        "requests": [(r, labels[r.entity_ref.lower()]) for r in mine],
    }
    return render(request, "access/overview.html", context)


@require_POST
@rate_limited(ROLE_REFRESH, person_key)  # each refresh calls Auth0's Management API
def refresh_my_roles(request: HttpRequest) -> HttpResponse:
    """Ask Auth0 what I hold now, rather than wait for the next sync or sign-in."""
    person = _person(request)
    try:
        outcome = role_memberships_refresh_from_auth0(user=person, actor=actor_of(request))
    except Auth0Error as error:
        messages.error(request, f"Auth0 could not tell us your roles, so nothing changed: {error}")
        return redirect("access:overview")
    viewer_forget(person)
    changes = [f"added {name}" for name in outcome.added]
    changes += [f"removed {name} (no longer held in Auth0)" for name in outcome.removed]
    if changes:
        messages.success(
            request, "Your roles were refreshed from Auth0: " + "; ".join(changes) + "."
        )
    else:
        messages.info(request, "Your roles already match Auth0.")
    return redirect("access:overview")


@require_GET
def roles(request: HttpRequest) -> HttpResponse:
    """Admins: every mirrored role, how current the mirror is, and the recent syncs."""
    _require_admin(request)
    table = RoleTable(roles_page())
    RequestConfig(request, paginate=False).configure(table)
    conflicts = conflicts_held()
    prime_people(request, [conflict.user.email for conflict in conflicts])
    context = {
        "table": table,
        "conflicts": conflicts,
        "mirror": mirror_state(),
        "history": sync_history(),
        "sync_interval": settings.ROLE_SYNC_INTERVAL,
    }
    return render(request, "access/roles.html", context)


@require_http_methods(["GET", "POST"])
def role_detail(request: HttpRequest, name: str) -> HttpResponse:
    """Admins: who holds a role, since how, the entities that require it, and its registry
    entry (who owns it and how it may be granted), which they change here."""
    _require_admin(request)
    role = get_object_or_404(Role, name=name)
    entry = registry_entry_of(role)
    registry_form = RoleRegistryForm(request.POST or None, entry=entry, name=role.name)
    if request.method == "POST" and registry_form.is_valid():
        try:
            changes = role_registry_set(
                role=role, entry=registry_form.cleaned_data["entry"], actor=actor_of(request)
            )
        except RegistryError as error:
            registry_form.registry_error(error)
        else:
            if changes:
                messages.success(request, f"{role.name}: changed " + ", ".join(changes) + ".")
            else:
                messages.info(request, f"{role.name}: nothing changed.")
            return redirect("access:role_detail", role.name)
    table = MemberTable(role_members(role=role))
    RequestConfig(request, paginate={"per_page": MEMBERS_PER_PAGE}).configure(table)
    declaring = [
        {"ref": ref, "name": entity_name, "url": parse_entity_ref(ref).url}
        for ref, entity_name in entities_declaring(role_name=role.name)
    ]
    labels = prime_entities(request, _groups_named(entry))
    context = {
        "role": role, "table": table, "declaring": declaring, "registry_form": registry_form,
        "refusal": role_refusal(rules_of(role)),
        "policies": registry_words(entry, name=role.name, group=_group_title(labels)),
        "conflicts": conflicts_held(role=role.name),
    }  # fmt: skip
    return render(request, "access/role_detail.html", context)


def _groups_named(entry: RegistryEntry) -> list[str]:
    """The groups a registry entry names, for their titles in one lookup."""
    rules = [rule.group for rule in entry.auto_approve]
    glass = [entry.break_glass.group] if entry.break_glass else []
    return [*entry.owners, *rules, *glass]


def _group_title(labels: dict[str, EntityLabel]) -> Callable[[str], str]:
    """A group ref as a sentence names it ("Payments team"): its title when the catalog holds
    it, else the ref."""

    def title(ref: str) -> str:
        label = labels.get(ref.lower())
        if label is None:
            return ref
        return f"{label.title} {label.noun}" if label.noun not in ("", "user") else label.title

    return title


# --- access requests -------------------------------------------------------------------------


def actor_of(request: HttpRequest) -> Actor:
    """The person behind a page's write, as the audit log records them."""
    return Actor.of_request(request, _person(request), AuditEvent.Via.WEB)


@require_http_methods(["GET", "POST"])
def request_new(request: HttpRequest) -> HttpResponse:
    """Ask for one of the roles an entity requires and the person lacks."""
    person = _person(request)
    ref = request.GET.get("entity") or request.POST.get("entity") or ""
    entity = entity_by_ref(ref=ref) if ref else None
    if entity is None:
        raise Http404(f"No entity {ref!r} in the catalog to ask access to")
    # What this person typed here before their session ended under the form, if they did.
    draft = draft_take(request) if request.method == "GET" else None
    wanted = (draft or {}).get("role") or request.GET.get("role") or request.POST.get("role") or ""
    # From a reminder's link: the form comes filled in as the grant it extends, one click away.
    extend = whole_number(request.GET.get("extend", ""))
    ask = asking(
        viewer=viewer_for(person), user=person, entity=entity, wanted=wanted,
        extend=extend if extend is not None and extend <= MAX_ID else None,
    )  # fmt: skip
    if wanted in ask.open_requests:
        messages.info(request, f"You asked for {wanted} already; this is that request.")
        return redirect("access:request_detail", ask.open_requests[wanted].pk)
    longest, extending = ask.longest, ask.extending
    initial: dict[str, Any] = {"role": ask.chosen}
    if extending is not None:
        initial["reason"] = f"Extending request {extending.pk}: {extending.reason}"[:2000]
    form = None
    if longest is not None:
        default = min(settings.ACCESS_DEFAULT_DURATION, longest)
        if extending is not None:
            default = min(extending.duration, longest)
        if draft:
            typed = {field: draft[field] for field in ("reason", "duration") if draft.get(field)}
            initial.update(typed)
            messages.info(request, "What you typed is back in the form: check it and send it.")
        form = AccessRequestForm(
            request.POST or None,
            initial=initial,
            roles=ask.askable,
            longest=longest,
            default=default,
        )
    if request.method == "POST" and form is not None and form.is_valid():
        try:
            access_request, created = access_request_create(
                requester=person, entity=entity, role=form.cleaned_data["role"],
                reason=form.cleaned_data["reason"], duration=form.cleaned_data["duration"],
                actor=actor_of(request),
            )  # fmt: skip
        except RequestRefused as refused:
            form.add_error(None, str(refused))
        else:
            if created:
                messages.success(request, "Your request was sent to the people who decide it.")
            return redirect("access:request_detail", access_request.pk)
    # The deciders', owners' and rules' groups' titles, for the page, in one lookup.
    prime_entities(
        request,
        [
            *ask.deciders,
            *(ref for c in ask.choices for ref in c.owners),
            *(rule.group for c in ask.choices for rule in c.auto_rules),
        ],
    )
    glass = [
        (choice, BreakGlassForm(longest=choice.longest, auto_id=f"glass-{n}-%s"))
        for n, choice in enumerate(ask.break_glass)
    ]
    context = {
        "entity": entity, "form": form, "choices": ask.choices, "chosen": ask.chosen,
        "break_glass": glass,
        "held": ask.held, "ending": ask.ending, "open_requests": list(ask.open_requests.values()),
        "deciders": ask.deciders, "longest": duration_words(longest) if longest else "",
        "draft_field": DRAFT_FIELD, "draft": draft_token(request, fields=DRAFT_FIELDS),
    }  # fmt: skip
    return render(request, "access/request_new.html", context)


@require_POST
def request_break_glass(request: HttpRequest) -> HttpResponse:
    """Break glass: the role at once, for a short time, saying why; the owners and admins are
    told and review the use."""
    person = _person(request)
    ref, role = request.POST.get("entity", ""), request.POST.get("role", "")
    entity = entity_by_ref(ref=ref) if ref else None
    if entity is None:
        raise Http404(f"No entity {ref!r} in the catalog")
    back = reverse("access:request_new") + "?" + urlencode({"entity": entity.ref, "role": role})
    rules = role_rules(names=[role])[role]
    rule = rules.entry.break_glass
    if rule is None:
        messages.error(request, f"{role} is not open to break-glass.")
        return redirect(back)
    form = BreakGlassForm(request.POST, longest=break_glass_longest(rule=rule, rules=rules))
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, f"Break-glass: {errors[0]}")
        return redirect(back)
    try:
        granted = access_break_glass(
            requester=person, entity=entity, role=role, reason=form.cleaned_data["reason"],
            duration=form.cleaned_data["duration"], actor=actor_of(request),
        )  # fmt: skip
    except RequestRefused as refused:
        messages.error(request, f"Break-glass refused: {refused}")
        return redirect(back)
    messages.warning(
        request,
        f"Break-glass: {role} is being granted to you now, for "
        f"{duration_words(granted.duration)}. Its owners and the portal's admins have been "
        "told, and the owners will review this use.",
    )
    return redirect("access:request_detail", granted.pk)


# What the request form keeps when the session ends before it arrives (portal.auth.drafts).
DRAFT_FIELDS = ("role", "reason", "duration")


def _visible_request(request: HttpRequest, request_id: int) -> tuple[AccessRequest, Standing]:
    """The request, if this person asked, decides on its entity or administers; 404 else."""
    access_request = get_object_or_404(
        AccessRequest.objects.select_related("requester").prefetch_related("decisions__approver"),
        pk=request_id,
    )
    standing = request_standing(viewer=viewer_for(_person(request)), request=access_request)
    if not standing.may_see:
        raise Http404("No such request")
    return access_request, standing


@require_GET
def request_detail(request: HttpRequest, request_id: int) -> HttpResponse:
    """A request's timeline: asked, decided, granted, ended — from the audit log."""
    access_request, standing = _visible_request(request, request_id)
    timeline = actors_named(request_timeline(request=access_request))
    prime_people(request, [access_request.requester.email, *(e.shown_email for e in timeline)])
    context = {
        "access_request": access_request,
        "entity_label": entity_labels(refs=[access_request.entity_ref]).get(
            access_request.entity_ref.lower()
        ),
        "timeline": timeline,
        "use_reviews": use_reviews_of(request=access_request),
        "may_decide": standing.offers_decision,
        "may_cancel": standing.offers_cancel,
        "may_retry": standing.offers_retry,
        "may_revoke": standing.offers_revoke,
    }
    return render(request, "access/request_detail.html", context)


@require_POST
def request_cancel(request: HttpRequest, request_id: int) -> HttpResponse:
    try:
        access_request_cancel(
            request_id=request_id, person=_person(request), actor=actor_of(request)
        )
    except AccessRequest.DoesNotExist as error:
        raise Http404(NO_SUCH_REQUEST) from error
    except (NotAllowed, AlreadyDecided) as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "Your request was cancelled.")
    return redirect("access:request_detail", request_id)


@require_POST
def request_retry(request: HttpRequest, request_id: int) -> HttpResponse:
    _require_admin(request)
    try:
        grant_retry(request_id=request_id, actor=actor_of(request))
    except AccessRequest.DoesNotExist as error:
        raise Http404(NO_SUCH_REQUEST) from error
    except AlreadyDecided as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "The grant is being carried into Auth0 again.")
    return redirect("access:request_detail", request_id)


@require_POST
def request_revoke(request: HttpRequest, request_id: int) -> HttpResponse:
    """Owners and admins end a grant early."""
    _, standing = _visible_request(request, request_id)
    if not standing.may_revoke:
        raise PermissionDenied("only the role's owners and portal admins revoke its grants")
    try:
        ended = grant_end(request_id=request_id, actor=actor_of(request), revoke=True)
    except Auth0Error as error:
        messages.error(request, f"Auth0 could not remove the role, so the grant stands: {error}")
    else:
        if ended:
            messages.success(request, "The grant was revoked and the role removed in Auth0.")
        else:
            messages.error(request, "This grant is not active.")
    return redirect("access:request_detail", request_id)


APPROVALS_PER_PAGE = 50


@require_GET
def approvals(request: HttpRequest) -> HttpResponse:
    """Pending requests I may decide, oldest first, a page at a time; or, on the history tab,
    what I decided."""
    person = _person(request)
    if request.GET.get("tab") == "history":
        decided = list(decisions_by(user=person))
        prime_people(request, [e.approver.email for d in decided for e in d.request.decisions.all()]
                     + [d.request.requester.email for d in decided])  # fmt: skip
        return render(request, "access/approvals.html", {"tab": "history", "decided": decided})
    waiting = requests_waiting_for(viewer=viewer_for(person))
    filterset = ApprovalsFilter(request.GET, queryset=waiting.requests)
    page = Paginator(filterset.qs, APPROVALS_PER_PAGE).get_page(request.GET.get("page"))
    if request.htmx.target == "approvals-total":  # type: ignore[attr-defined]
        # The total line, asked again after a decision: not the rows it sits above.
        context = {"page": page, "waiting": len(waiting.ids)}
        return render(request, "access/approvals.html#total", context)
    rows = waiting_details(requests=page.object_list)
    prime_people(request, [row.request.requester.email for row in rows])
    context = {
        "tab": "pending", "rows": rows, "page": page, "waiting": len(waiting.ids),
        "filters": filterset.form.cleaned_data if filterset.is_valid() else {},
        "roles": waiting.roles, "entities": waiting.entities,
        "query": _query_without(request, "page"),
    }  # fmt: skip
    return render(request, "access/approvals.html", context)


def _query_without(request: HttpRequest, *names: str) -> str:
    """This page's query string without these parameters, for links that change only them."""
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


@require_GET
def approvals_count(request: HttpRequest) -> HttpResponse:
    """How many requests wait for me, as the navigation bar and the Waiting tab show it: they
    fetch it again when a decision on the page fires `approvals-changed`."""
    count = count_to_decide(viewer=viewer_for(_person(request)))
    context = {"count": count, "tab": request.GET.get("as") == "tab"}
    return render(request, "components/approvals_count.html", context)


Problem = AlreadyDecided | NotAllowed | StepUpRequired | AccessRequest.DoesNotExist


def _decide(
    request: HttpRequest,
    request_id: int,
    outcome: str,
    comment: str,
    scopes: dict[tuple[str, str], DecisionScope] | None = None,
) -> Problem | None:
    """Decide one request; None when it went through, else the refusal (its kind says how
    the page answers: a decision that came too late is a conflict; one that needs a fresh
    multi-factor sign-in goes through one first)."""
    try:
        access_request_decide(
            request_id=request_id, approver=_person(request), outcome=outcome,
            comment=comment, actor=actor_of(request), scopes=scopes,
            mfa_at=session_mfa_at(request),
        )  # fmt: skip
    except (AlreadyDecided, NotAllowed, StepUpRequired) as error:
        return error
    except AccessRequest.DoesNotExist:
        return AccessRequest.DoesNotExist(NO_SUCH_REQUEST)
    return None


# Also what a person hears of a request they may not see: nothing more than of one that is not.
NO_SUCH_REQUEST = "No such request."


@require_POST
def approval_decide(request: HttpRequest, request_id: int) -> HttpResponse:
    """Approve or deny one request; htmx swaps its row for the outcome."""
    outcome = request.POST.get("outcome", "")
    if outcome not in Decision.Outcome.values:
        return HttpResponse("Choose approve or deny.", status=400)
    # The row's own comment box, or a plain form's `comment`.
    comment = (request.POST.get(f"comment-{request_id}") or request.POST.get("comment", ""))[:2000]
    problem = _decide(request, request_id, outcome, comment)
    if isinstance(problem, AccessRequest.DoesNotExist):
        raise Http404(NO_SUCH_REQUEST)
    if isinstance(problem, StepUpRequired):
        return _step_up(request, [request_id], outcome, comment, back=_approvals_back(request))
    if request.htmx:  # type: ignore[attr-defined]
        access_request = AccessRequest.objects.select_related("requester").get(pk=request_id)
        context = {"r": access_request, "problem": problem and str(problem), "outcome": outcome}
        status = 409 if isinstance(problem, AlreadyDecided) else 200
        response = render(request, "access/approvals.html#decided-row", context, status=status)
        # The counts of what waits (the navigation bar's, the Waiting tab's) fetch theirs again.
        response["HX-Trigger"] = "approvals-changed"
        return response
    if problem:
        messages.error(request, str(problem))
    else:
        messages.success(request, f"Request {request_id} {outcome}.")
    return redirect("access:approvals")


@require_POST
def approvals_bulk(request: HttpRequest) -> HttpResponse:
    """Decide every selected request the same way, and say what came of it."""
    # Back to the page and filters the form was sent from (only the approvals page's own).
    back = reverse("access:approvals")
    query = QueryDict(request.POST.get("query", "")[:2000]).urlencode()
    back += f"?{query}" if query else ""
    outcome = request.POST.get("outcome", "")
    if outcome not in Decision.Outcome.values:
        messages.error(request, "Choose approve or deny.")
        return redirect(back)
    selected = (whole_number(value) for value in request.POST.getlist("selected"))
    ids = [value for value in selected if value is not None and value <= MAX_ID]
    if not ids:
        verb = "approved" if outcome == Decision.Outcome.APPROVED else "denied"
        messages.error(request, f"Nothing was {verb}: tick the requests to decide first.")
        return redirect(back)
    comment = request.POST.get("comment", "")[:2000]
    return _decide_many(request, ids, outcome, comment, back=back)


def _decide_many(
    request: HttpRequest, ids: list[int], outcome: str, comment: str, *, back: str
) -> HttpResponse:
    """Decide these requests the same way and say what came of it. Those that need a fresh
    multi-factor sign-in wait for it: the person goes through one, and they proceed after."""
    # Who decides on each entity is read once for the lot, not once per request.
    pairs = AccessRequest.objects.filter(pk__in=ids).values_list("entity_ref", "role_name")
    scopes = decision_scopes(pairs=set(pairs))
    problems = {
        request_id: problem
        for request_id in ids
        if (problem := _decide(request, request_id, outcome, comment, scopes)) is not None
    }
    stepping_up = [i for i, problem in problems.items() if isinstance(problem, StepUpRequired)]
    problems = {i: problem for i, problem in problems.items() if i not in stepping_up}
    late = [request_id for request_id, problem in problems.items()
            if isinstance(problem, AlreadyDecided)]  # fmt: skip
    done = len(ids) - len(problems) - len(stepping_up)
    if done or problems or not stepping_up:
        said = bulk_outcome_words(
            outcome=outcome, done=done,
            late=decided_by(request_ids=late, person=_person(request)),
        )  # fmt: skip
        if done:
            messages.success(request, said)
        else:
            messages.warning(request, said)
    for request_id, problem in problems.items():
        if not isinstance(problem, AlreadyDecided):
            messages.error(request, f"Request {request_id}: {problem}")
    if stepping_up:
        return _step_up(request, stepping_up, outcome, comment, back=back)
    return redirect(back)


def _approvals_back(request: HttpRequest) -> str:
    """The approvals page a decision was made on, filters and page kept (htmx says which)."""
    current = urlsplit(request.headers.get("HX-Current-URL", ""))
    if current.path == reverse("access:approvals"):
        return current.path + (f"?{current.query}" if current.query else "")
    return reverse("access:approvals")


def _step_up(
    request: HttpRequest, ids: list[int], outcome: str, comment: str, *, back: str
) -> HttpResponse:
    """Keep the decision and send the person to the issuer for a multi-factor sign-in; the
    decision proceeds when they come back (`approvals_resume`)."""
    pending = PendingDecision(sub=_person(request).sub, request_ids=tuple(ids),
                              outcome=outcome, comment=comment, back=back)  # fmt: skip
    try:
        url = step_up_begin(request, pending=pending)
    except (requests.RequestException, ValueError) as error:
        logger.warning("step-up could not start: %s", error)
        messages.error(
            request,
            "Nothing was decided: deciding needs a multi-factor sign-in, "
            "and the sign-in service could not be reached. Try again in a moment.",
        )
        url = back
    if request.htmx:  # type: ignore[attr-defined]
        return HttpResponseClientRedirect(url)
    return redirect(url)


@require_GET
def approvals_resume(request: HttpRequest) -> HttpResponse:
    """Back from the multi-factor sign-in a decision waited for: it proceeds, once. Only a
    decision the person asked for (a POST with its CSRF token) and whose step-up the callback
    has just checked is kept for here, so reaching this page by a link decides nothing else."""
    pending = step_up_take(request)
    if pending is None or pending.outcome not in Decision.Outcome.values:
        messages.error(request, "There was no decision waiting for your multi-factor sign-in.")
        return redirect("access:approvals")
    return _decide_many(
        request, list(pending.request_ids), pending.outcome, pending.comment, back=pending.back
    )


def bulk_outcome_words(*, outcome: str, done: int, late: dict[str, int]) -> str:
    """What a bulk decision did, as "Approved 3 requests; 1 was already decided by Grace Hopper.";
    `late` counts the requests someone decided first, by who (or what they became)."""
    verb = "Approved" if outcome == Decision.Outcome.APPROVED else "Denied"
    said = f"{verb} {done} request{'' if done == 1 else 's'}" if done else f"{verb} none"
    parts = [
        f"{count} {'was' if count == 1 else 'were'} already {how}"
        for how, count in sorted(late.items())
    ]
    return said + ("; " + "; ".join(parts) if parts else "") + "."


# --- the audit log ---------------------------------------------------------------------------

AUDIT_PER_PAGE = 50
# The actor's name and e-mail last, so the columns a spreadsheet already reads stay where they were.
CSV_COLUMNS = ["at", "actor", "via", "action", "target", "correlation_id", "ip", "user_agent",
               "detail", "actor_name", "actor_email"]  # fmt: skip


# A spreadsheet reads a cell starting with one of these as a formula (OWASP's CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert_cell(value: str) -> str:
    """The cell as text a spreadsheet shows and never evaluates: a leading quote, as OWASP
    recommends, before anything that would start a formula."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


class _Echo:
    """A file-like object whose write returns the line, for csv.writer into a stream."""

    def write(self, value: str) -> str:
        return value


@require_GET
def audit(request: HttpRequest) -> HttpResponseBase:
    """Admins: who did what, through what, when; filtered, paged, or streamed as CSV."""
    _require_admin(request)
    filterset = AuditFilter(request.GET, queryset=AuditEvent.objects.order_by("-at", "-id"))
    events = filterset.qs
    if request.GET.get("format") == "csv":
        writer = csv.writer(_Echo())

        def rows() -> Iterator[str]:
            yield writer.writerow(CSV_COLUMNS)
            for event in events.iterator(chunk_size=2000):
                yield writer.writerow([inert_cell(cell) for cell in (
                    event.at.isoformat(), event.actor, event.via, event.action, event.target,
                    event.correlation_id, event.ip or "", event.user_agent,
                    json.dumps(event.detail, sort_keys=True), event.actor_name, event.actor_email,
                )])  # fmt: skip

        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="atrium-audit.csv"'
        return response
    table = AuditTable(events)
    RequestConfig(request, paginate={"per_page": AUDIT_PER_PAGE}).configure(table)
    params = request.GET.copy()
    params["format"] = "csv"
    params.pop("page", None)
    context = {"filter": filterset, "table": table, "csv_url": f"?{params.urlencode()}"}
    return render(request, "access/audit.html", context)
