"""The portal's own pages and probes."""

from datetime import timedelta

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from access.models import AccessRequest
from access.policy import is_portal_admin, viewer_for
from access.selectors import requests_of, requests_waiting_for, role_memberships_of
from catalog.selectors import entity_labels
from catalog.templatetags.people import prime_people
from catalog.views import request_access_url
from portal.durations import duration_words
from portal.health import details, readiness
from portal.models import User

# The dashboard names the oldest few requests waiting for a decision, and grants ending within
# this long.
WAITING_SHOWN = 5
ENDING_SOON = timedelta(days=7)


@login_not_required
@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """What Atrium is, for someone signed out; for a person, their dashboard: what waits for
    them to decide, their open requests, their grants ending soon, and the catalog's search."""
    if not request.user.is_authenticated:
        return render(request, "portal/home.html", {})
    user: User = request.user
    waiting = requests_waiting_for(viewer=viewer_for(user))
    oldest = list(waiting.requests[:WAITING_SHOWN])
    mine = requests_of(user=user)
    memberships = role_memberships_of(user=user)
    # The active grant behind each role (the newest, should there be several): asking again
    # from it extends it.
    grants = {r.role_name: r for r in reversed(mine) if r.state == AccessRequest.State.ACTIVE}
    soon = timezone.now() + ENDING_SOON
    ending = [
        (membership, grants.get(membership.role.name))
        for membership in memberships
        if membership.expires_at is not None and membership.expires_at <= soon
    ]
    open_requests = [r for r in mine if r.state in AccessRequest.OPEN_STATES]
    titles = entity_labels(
        refs={r.entity_ref for r in [*oldest, *open_requests]}
        | {grant.entity_ref for _, grant in ending if grant}
    )
    prime_people(request, [r.requester.email for r in oldest])
    context = {
        "memberships": memberships,
        "waiting": [(r, titles.get(r.entity_ref)) for r in oldest],
        "waiting_count": len(waiting.ids),
        "open_requests": [(r, titles.get(r.entity_ref)) for r in open_requests],
        "ending": [
            {
                "membership": membership,
                "entity": titles.get(grant.entity_ref) if grant else None,
                "extend_url": request_access_url(
                    entity_ref=grant.entity_ref, role=grant.role_name, extend=grant.pk
                )
                if grant
                else "",
            }
            for membership, grant in ending
        ],  # fmt: skip
        "ending_within": duration_words(ENDING_SOON),
    }
    return render(request, "portal/home.html", context)


@login_not_required
@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """The process answers; nothing behind it is consulted."""
    return JsonResponse({"status": "ok"})


@login_not_required
@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to serve: every dependency answered. 503 names the ones that did not."""
    results = readiness()
    down = [result.name for result in results if not result.ok]
    body = {
        "status": "unavailable" if down else "ok",
        "down": down,
        "checks": {
            result.name: "ok" if result.ok else f"down: {result.error}" for result in results
        },
    }
    return JsonResponse(body, status=503 if down else 200)


@login_not_required
@never_cache
@require_safe
def healthz_details(request: HttpRequest) -> JsonResponse:
    """What /readyz checks, with its messages, and the roles mirror's age: for portal admins.

    Not answered before host checks like the probes: it names internals, so it is a page like
    any other, reached through the proxy by a signed-in admin.
    """
    if not request.user.is_authenticated:
        return JsonResponse({"detail": "sign in as a portal admin"}, status=401)
    if not is_portal_admin(request.user):
        return JsonResponse({"detail": "for portal admins"}, status=403)
    return JsonResponse(details())
