"""Middleware of the portal app."""

import time
from collections.abc import Callable
from datetime import timedelta
from functools import cache
from typing import Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo, available_timezones

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY, logout
from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.http import HttpResponseClientRedirect

from portal import views
from portal.apikit import error_response
from portal.auth.drafts import draft_claim, draft_keep
from portal.auth.redirects import safe_next_path
from portal.durations import duration_words
from portal.metrics import metrics
from portal.models import User

_PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": views.healthz,
    "/readyz": views.readyz,
    # Prometheus scrapes by the internal address too; the token is what protects it.
    "/metrics": metrics,
}


class HealthCheckMiddleware:
    """Answer the probes before host validation and the https redirect.

    Container and load-balancer probes call the process by its internal address over plain
    http; they must not be refused for their Host header or redirected to https.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = _PROBES.get(request.path_info)
        if probe is not None:
            return probe(request)
        return self.get_response(request)


class PortalCSPMiddleware(CSPMiddleware):
    """django-csp's policy (CONTENT_SECURITY_POLICY), with the issuer's origin in `form-action`.

    Sign-out posts here and is redirected to the issuer, as is a form sent after the session
    ended (to sign in again); browsers hold the redirect of a form's answer to `form-action`.
    The origin is read per response because it is the issuer's as settings say now.
    """

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        issuer = urlsplit(settings.AUTH0_ISSUER)
        if not report_only and issuer.scheme and issuer.netloc:
            parts.update = {
                **(parts.update or {}),
                "form-action": [f"{issuer.scheme}://{issuer.netloc}"],
            }
        return parts


class PermissionsPolicyMiddleware:
    """Deny every browser feature in PERMISSIONS_POLICY, to the portal and what it embeds."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.header = ", ".join(f"{feature}=()" for feature in settings.PERMISSIONS_POLICY)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", self.header)
        return response


class NoStoreMiddleware:
    """No cache keeps an API answer or a signed-in page: either may show restricted details
    (who holds a role, an entity's links, a request's reason), and a shared computer's back
    button or a proxy must not show them to the next person. Static files never pass here."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path_info.startswith("/api/") or request.user.is_authenticated:
            add_never_cache_headers(response)
            patch_cache_control(response, private=True)
        return response


# When the person signed in, and when they were last seen, as Unix time in their session.
SIGNED_IN_AT = "atrium_signed_in_at"
SEEN_AT = "atrium_seen_at"
# Last activity is written at most this often, not at every request.
SEEN_EVERY_SECONDS = 60


def session_start(request: HttpRequest) -> None:
    """Start a signed-in session's clocks; the sign-in callback calls it after login()."""
    now = time.time()
    request.session[SIGNED_IN_AT] = now
    request.session[SEEN_AT] = now


class SessionLifetimeMiddleware:
    """End a session idle for SESSION_IDLE_TIMEOUT or older than SESSION_LIFETIME, and one
    whose person the portal no longer lets in (blocked or deleted in Auth0, seen by the sync).

    The person is signed out and sent to sign in again with a message saying why; an API
    caller by session gets a 401 in the API's error shape. Bearer-token calls carry no session
    and pass untouched.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "Authorization" in request.headers and request.path_info.startswith("/api/"):
            return self.get_response(request)
        if request.path_info == reverse("auth:logout"):
            # Signing out ends the session anyway, and at Auth0 too; sending the person to
            # sign in instead would sign them straight back in.
            return self.get_response(request)
        reason = self.ended_because(request)
        if reason:
            return self.signed_out(request, reason)
        return self.get_response(request)

    def ended_because(self, request: HttpRequest) -> str:
        """Why this request's session has ended, or "" while it goes on."""
        session = request.session
        user_id = session.get(SESSION_KEY)
        if user_id is None:
            return ""
        if not request.user.is_authenticated:
            # The backend no longer returns this person (PolicyBackend.get_user: inactive or
            # gone), though the session still names them.
            return account_refusal(user_id)
        now = time.time()
        signed_in_at = session.get(SIGNED_IN_AT)
        if signed_in_at is None:
            # A session begun before these clocks (or by login() elsewhere than the callback,
            # as tests do) counts from the person's last sign-in, without a write per request.
            last_login = getattr(request.user, "last_login", None)
            signed_in_at = last_login.timestamp() if last_login else now
            if last_login is None:
                session[SIGNED_IN_AT] = now
        seen_at = session.get(SEEN_AT, signed_in_at)
        lifetime: timedelta = settings.SESSION_LIFETIME
        idle: timedelta = settings.SESSION_IDLE_TIMEOUT
        if now - signed_in_at > lifetime.total_seconds():
            return (
                f"You were signed out: a session lasts at most {duration_words(lifetime)}. "
                "Sign in again to go on."
            )
        if now - seen_at > idle.total_seconds():
            return (
                f"You were signed out after {duration_words(idle)} without activity. "
                "Sign in again to go on."
            )
        if now - seen_at >= SEEN_EVERY_SECONDS:
            session[SEEN_AT] = now
        return ""

    def signed_out(self, request: HttpRequest, reason: str) -> HttpResponse:
        sub = getattr(request.user, "sub", "")
        logout(request)  # flushes the session: its key is useless from now on
        if request.path_info.startswith("/api/"):
            return error_response(
                request, 401, "AuthenticationError", reason,
                {"WWW-Authenticate": 'Bearer realm="atrium"'},
            )  # fmt: skip
        return sign_in_again(request, reason, typed_by=sub)


# What a person is told when a request arrives without a session (it ended and is gone, or
# there never was one); an ended one that is still there says why it ended instead.
NO_SESSION = "You are signed out: your session has ended. Sign in again to go on."
NOT_CARRIED_OUT = "What you sent was not carried out: send it again now that you are back."


def sign_in_again(request: HttpRequest, reason: str, *, typed_by: str | None) -> HttpResponse:
    """Send the person to sign in again, saying why, and bring them back where they were.

    htmx cannot follow a redirect to the issuer (the browser refuses it across origins, and
    nothing would show), so it is told to take the whole page there, and back to the page
    it was on (`HX-Current-URL`). A form's POST cannot be sent again from the sign-in's end,
    and its URL may answer only POST (a blank 405): the person comes back to the page the form
    was on, told that it was not carried out, with what they typed kept when the form asked
    for it (portal.auth.drafts) and was typed by `typed_by` (None: by whoever signed it).
    """
    writes = request.method not in ("GET", "HEAD", "OPTIONS")
    messages.warning(request, f"{reason} {NOT_CARRIED_OUT}" if writes else reason)
    claim = draft_claim(request) if writes else None
    if claim is not None and typed_by not in (None, claim.sub):
        claim = None  # another person's draft, posted into this person's session: not theirs
    if claim is not None:
        draft_keep(request, claim)
    if request.headers.get("HX-Request") == "true":
        if request.headers.get("HX-Boosted") == "true" and not writes:
            back = request.get_full_path()  # a boosted link: the page it was going to
        else:
            back = _path_of(request.headers.get("HX-Current-URL", ""))
        return HttpResponseClientRedirect(sign_in_url(safe_next_path(back)))
    if not writes:
        return HttpResponseRedirect(sign_in_url(safe_next_path(request.get_full_path())))
    back = claim.path if claim is not None else _form_page(request)
    return HttpResponseRedirect(sign_in_url(safe_next_path(back)))


def sign_in_url(next_path: str) -> str:
    return f"{reverse('auth:login')}?{urlencode({'next': next_path})}"


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _form_page(request: HttpRequest) -> str:
    """The page a form was sent from: its Referer when it is this site's (browsers send it to
    the same origin, `Referrer-Policy: same-origin`); else the home page."""
    referer = request.headers.get("Referer", "")
    same_site = url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return _path_of(referer) if referer and same_site else "/"


class PortalLoginRequiredMiddleware(LoginRequiredMiddleware):
    """Django's LoginRequiredMiddleware, answering a request without a session in a way the
    person can act on (`sign_in_again`): a page's GET is sent to sign in as Django does; htmx
    and forms are told why, and come back to the page they were on."""

    def handle_no_permission(  # type: ignore[override]  # htmx's answer is no redirect
        self, request: HttpRequest, view_func: Any
    ) -> HttpResponse:
        htmx = request.headers.get("HX-Request") == "true"
        writes = request.method not in ("GET", "HEAD", "OPTIONS")
        if request.path_info.startswith("/api/") or not (htmx or writes):
            response: HttpResponse = super().handle_no_permission(request, view_func)
            return response
        return sign_in_again(request, NO_SESSION, typed_by=None)


def account_refusal(user_id: str | int) -> str:
    """What a person whose account the portal refuses is told, by why it refuses it."""
    user = User.objects.filter(pk=user_id).only("auth0_state").first()
    if user is not None and user.auth0_state == User.Auth0State.BLOCKED:
        return "You were signed out: your account is blocked in Auth0."
    if user is not None and user.auth0_state == User.Auth0State.DELETED:
        return "You were signed out: your account no longer exists in Auth0."
    return "You were signed out: your account is no longer active in Atrium."


# The browser's IANA time zone, set by static/js/atrium.js; pages show times in it.
TIMEZONE_COOKIE = "atrium_tz"


class TimezoneMiddleware:
    """Show times in the viewer's time zone, as their browser names it (a cookie); in
    TIME_ZONE (UTC) until it has, and for any name that is not a known zone."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        zone = _zone(request.COOKIES.get(TIMEZONE_COOKIE, ""))
        if zone is None:
            timezone.deactivate()
        else:
            timezone.activate(zone)
        return self.get_response(request)


def _zone(name: str) -> ZoneInfo | None:
    if not name or len(name) > 64 or name not in _known_zones():
        return None
    return ZoneInfo(name)


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())
