"""Sign-in, the callback from Auth0, and sign-out."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import requests
from authlib.integrations.base_client.errors import MismatchingStateError, OAuthError
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods
from joserfc.errors import JoseError

from access.audit import Actor
from access.policy import mfa_fresh
from access.sync import role_memberships_record_from_token
from portal.auth.drafts import draft_forget_unless
from portal.auth.mfa import mfa_time_of, session_mfa_record
from portal.auth.oidc import id_token_claims_options, oidc_client
from portal.auth.redirects import safe_next_path
from portal.auth.stepup import (
    callback_url,
    step_up_abandon,
    step_up_answered,
    step_up_back,
    step_up_confirmed,
)
from portal.durations import duration_words
from portal.middleware import session_start
from portal.models import User
from portal.ratelimits import SIGN_IN_CALLBACK, SIGN_IN_START, client_address, rate_limited
from portal.services import user_sign_in_record

logger = logging.getLogger(__name__)

NEXT_SESSION_KEY = "auth_next"
ID_TOKEN_SESSION_KEY = "auth_id_token"

# What the provider's `error` means to the person who was trying to sign in.
PROVIDER_ERRORS = {
    "access_denied": (
        "Sign-in was cancelled",
        "Auth0 did not let the sign-in through: it was cancelled, or a rule of your company's "
        "tenant refused it.",
    ),
    "unauthorized": (
        "Your account is blocked",
        "Auth0 says your account may not sign in. Ask your identity team to unblock it.",
    ),
    "login_required": (
        "Please sign in again",
        "Your session at Auth0 has ended.",
    ),
}


def sign_in_failed(
    request: HttpRequest, *, title: str, detail: str, status: int, reason: str
) -> HttpResponse:
    logger.warning("sign-in failed: %s", reason)
    next_path = request.session.get(NEXT_SESSION_KEY, "/")
    retry = reverse("auth:login") + "?" + urlencode({"next": next_path})
    context = {"title": title, "detail": detail, "retry_url": retry}
    return render(request, "auth/sign_in_error.html", context, status=status)


@login_not_required
@never_cache
@require_GET
@rate_limited(SIGN_IN_START, client_address)
def login(request: HttpRequest) -> HttpResponse:
    next_path = safe_next_path(request.GET.get("next"))
    if request.user.is_authenticated:
        return HttpResponseRedirect(next_path)
    request.session[NEXT_SESSION_KEY] = next_path
    try:
        response: HttpResponse = oidc_client().authorize_redirect(request, callback_url())
    except (requests.RequestException, ValueError) as error:
        return sign_in_failed(
            request,
            title="Auth0 could not be reached",
            detail="Atrium could not reach the sign-in service. Try again in a moment.",
            status=503,
            reason=f"discovery failed: {error}",
        )
    return response


@login_not_required
@never_cache
@require_GET
@rate_limited(SIGN_IN_CALLBACK, client_address)
def callback(request: HttpRequest) -> HttpResponse:
    provider_error = request.GET.get("error")
    stepping_up = step_up_answered(request)
    if provider_error and stepping_up:
        return _step_up_refused(
            request, "the sign-in with a second factor was cancelled or refused at the issuer."
        )
    if provider_error:
        title, detail = PROVIDER_ERRORS.get(
            provider_error,
            ("Sign-in failed", f"Auth0 answered {provider_error!r}."),
        )
        description = request.GET.get("error_description", "")
        return sign_in_failed(
            request,
            title=title,
            detail=detail,
            status=403 if provider_error in {"access_denied", "unauthorized"} else 400,
            reason=f"provider error {provider_error}: {description}",
        )
    try:
        token = oidc_client().authorize_access_token(
            request, claims_options=id_token_claims_options(), leeway=settings.AUTH0_LEEWAY
        )
    except MismatchingStateError:
        return sign_in_failed(
            request,
            title="This sign-in link has already been used",
            detail="The answer from Auth0 did not match a sign-in started in this browser "
            "(it was used already, has expired, or was started elsewhere).",
            status=400,
            reason="state mismatch",
        )
    except OAuthError as error:
        return sign_in_failed(
            request,
            title="Auth0 refused the sign-in",
            detail="The sign-in code could not be exchanged for a session.",
            status=400,
            reason=f"token endpoint: {error.error} {error.description}",
        )
    except JoseError as error:
        return sign_in_failed(
            request,
            title="The sign-in could not be verified",
            detail="The identity token from Auth0 failed its checks, so Atrium did not trust it.",
            status=400,
            reason=f"ID token rejected: {error}",
        )
    except requests.RequestException as error:
        return sign_in_failed(
            request,
            title="Auth0 could not be reached",
            detail="Atrium could not finish the sign-in with Auth0. Try again in a moment.",
            status=503,
            reason=f"token exchange failed: {error}",
        )
    claims = token.get("userinfo") or {}
    if not claims.get("sub"):
        return sign_in_failed(
            request,
            title="The sign-in could not be verified",
            detail="Auth0 did not send an identity token.",
            status=400,
            reason="no ID token",
        )
    if stepping_up:
        return _step_up_finish(request, claims, id_token=token.get("id_token", ""))
    next_path = safe_next_path(request.session.pop(NEXT_SESSION_KEY, None))
    user = user_sign_in_record(
        sub=claims["sub"],
        email=claims.get("email", ""),
        name=claims.get("name", ""),
        # Only a literal true: an absent claim, "true" or 1 is not Auth0 saying it verified it.
        email_verified=claims.get("email_verified") is True,
    )
    if not user.is_active:
        why = user.auth0_state or "deactivated by an admin"
        return sign_in_failed(
            request, **_inactive_refusal(user), status=403, reason=f"{user.sub} is {why}"
        )
    roles = claims.get(settings.AUTH0_ROLES_CLAIM) or []
    held = role_memberships_record_from_token(
        user=user, role_names=roles if isinstance(roles, list) else []
    )
    # Django's login() gives the session a new key, so a planted session id is useless.
    auth_login(request, user, backend="access.backends.PolicyBackend")
    # login() keeps what the signed-out session held: a form's draft only for who typed it.
    draft_forget_unless(request, sub=user.sub)
    request.session[ID_TOKEN_SESSION_KEY] = token.get("id_token", "")
    session_start(request)
    # A tenant that asks every sign-in for a second factor spares the first decisions a step-up.
    signed_in_with_mfa = mfa_time_of(claims)
    if signed_in_with_mfa is not None and mfa_fresh(mfa_at=signed_in_with_mfa, now=time.time()):
        session_mfa_record(request, at=signed_in_with_mfa)
    Actor.of_request(request, user, "web").record("auth.signed_in", user.sub, roles=held)
    return HttpResponseRedirect(next_path)


def _step_up_finish(request: HttpRequest, claims: dict[str, Any], *, id_token: str) -> HttpResponse:
    """The issuer's answer to a step-up, its ID token verified as any sign-in's: accepted only
    for the person signed in here, with "mfa" in `amr` and an `auth_time` (required when
    `max_age` was sent, OIDC Core 3.1.2.1) within ACCESS_STEP_UP_MAX_AGE. Then the kept
    decision proceeds (access's resume page takes it)."""
    person = request.user
    if not person.is_authenticated or claims.get("sub") != getattr(person, "sub", None):
        return _step_up_refused(
            request, "the second factor was entered for another account than the one signed in."
        )
    if "auth_time" not in claims:
        return _step_up_refused(request, "the issuer did not say when you signed in (auth_time).")
    mfa_at = mfa_time_of(claims)
    if mfa_at is None:
        return _step_up_refused(request, "the sign-in did not use a second factor.")
    if not mfa_fresh(mfa_at=mfa_at, now=time.time()):
        return _step_up_refused(request, "the multi-factor sign-in is too old.")
    session_mfa_record(request, at=mfa_at)
    request.session[ID_TOKEN_SESSION_KEY] = id_token
    step_up_confirmed(request)
    Actor.of_request(request, person, "web").record(
        "auth.stepped_up", person.sub, acr=str(claims.get("acr", "")), amr=claims.get("amr")
    )
    return HttpResponseRedirect(reverse("access:approvals_resume"))


def _step_up_refused(request: HttpRequest, why: str) -> HttpResponse:
    logger.warning("step-up refused: %s", why)
    back = step_up_back(request)
    step_up_abandon(request)
    if not request.user.is_authenticated:
        return HttpResponseRedirect(reverse("auth:login") + "?" + urlencode({"next": back}))
    messages.error(request, f"Nothing was decided: {why} Decide again to try once more.")
    return HttpResponseRedirect(back)


def _inactive_refusal(user: User) -> dict[str, str]:
    """Title and detail for a person Atrium no longer lets in, though Auth0 signed them in."""
    every = duration_words(timedelta(seconds=settings.ROLE_SYNC_INTERVAL))
    if user.auth0_state == User.Auth0State.BLOCKED:
        return {
            "title": "Your account is blocked",
            "detail": "Atrium's last check with Auth0 found your account blocked. If it has "
            f"been unblocked since, Atrium learns so at its next check (every {every}): "
            "try again then.",
        }
    return {
        "title": "Your account is not active",
        "detail": "A portal admin has deactivated your account in Atrium. Ask them to "
        "reactivate it.",
    }


@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def logout(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        if not request.user.is_authenticated:
            return redirect("home")
        return render(request, "auth/sign_out.html")
    id_token = request.session.get(ID_TOKEN_SESSION_KEY, "")
    if request.user.is_authenticated:
        person: User = request.user
        Actor.of_request(request, person, "web").record("auth.signed_out", person.sub)
    auth_logout(request)
    return HttpResponseRedirect(provider_logout_url(id_token=id_token))


def provider_logout_url(*, id_token: str) -> str:
    """Where the browser ends its session at the provider, then comes back to Atrium."""
    return_to = settings.PORTAL_BASE_URL + "/"
    try:
        end_session = oidc_client().load_server_metadata().get("end_session_endpoint")
    except (requests.RequestException, ValueError):
        end_session = None
    if end_session:
        query = {"post_logout_redirect_uri": return_to, "client_id": settings.AUTH0_CLIENT_ID}
        if id_token:
            query["id_token_hint"] = id_token
        return f"{end_session}?{urlencode(query)}"
    query = {"client_id": settings.AUTH0_CLIENT_ID, "returnTo": return_to}
    return f"{settings.AUTH0_ISSUER.rstrip('/')}/v2/logout?{urlencode(query)}"
