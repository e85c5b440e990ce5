"""Root URL configuration."""

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import include, path, re_path

from access.authz_views import authz_explain
from access.policy import is_portal_admin
from portal import views
from portal.api import api, not_found
from portal.metrics import metrics


@login_not_required
def admin_sign_in(
    request: HttpRequest, extra_context: dict[str, Any] | None = None
) -> HttpResponse:
    # The admin site signs people in through Auth0 like every other page. A person already
    # signed in who lacks staff access is refused, not sent round the sign-in loop again.
    if request.user.is_authenticated:
        raise PermissionDenied("the admin site is for portal staff")
    return redirect(f"/auth/login/?{urlencode({'next': request.GET.get('next', '/admin/')})}")


def admin_site_permitted(request: HttpRequest) -> bool:
    # Portal admins, as the access policy counts them, not a flag set by hand on the user.
    return is_portal_admin(request.user)  # type: ignore[arg-type]


admin.site.login = admin_sign_in  # type: ignore[method-assign]
admin.site.has_permission = admin_site_permitted  # type: ignore[method-assign]

api_patterns, api_app_name, api_namespace = api.urls
for pattern in api_patterns:
    # The API answers 401 itself (bearer or session) rather than redirecting to sign-in.
    pattern.callback.login_required = False  # type: ignore[union-attr]

urlpatterns = [
    path("", views.home, name="home"),
    # Also answered by HealthCheckMiddleware before host checks; routed here for reverse().
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("healthz/details", views.healthz_details, name="healthz-details"),
    path("metrics", metrics, name="metrics"),
    path("auth/", include("portal.auth.urls")),
    path("catalog/", include("catalog.urls")),
    path("access/", include("access.urls")),
    # The page; every other path under /authz/ is a gateway's decision (access.authz).
    path("authz/explain", authz_explain, name="authz-explain"),
    path("api/", (api_patterns, api_app_name, api_namespace)),
    # Paths under /api/ that no API route takes: Backstage's JSON 404, not the HTML page.
    re_path(r"^api/(?P<path>.*)$", not_found),
    path("admin/", admin.site.urls),
]

# What was wrong with a request Django refused (a body too large, too many fields).
handler400 = "portal.bounds.bad_request"
