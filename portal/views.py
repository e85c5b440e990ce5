"""The portal's own pages and probes."""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from access.policy import is_portal_admin
from access.selectors import role_memberships_of
from portal.health import details, readiness


@login_not_required
@require_safe
def home(request: HttpRequest) -> HttpResponse:
    memberships = role_memberships_of(user=request.user) if request.user.is_authenticated else []
    return render(request, "portal/home.html", {"memberships": memberships})


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
