"""The portal's own pages and probes."""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from access.selectors import role_memberships_of
from portal.health import readiness


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
