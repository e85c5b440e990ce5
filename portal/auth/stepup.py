"""Step-up: a decision that needs a fresh multi-factor sign-in sends the person to the issuer
(`acr_values` asking for a second factor, `max_age`) and proceeds when they come back.

The decision waits in the session meanwhile, signed and bound to the person, to the sign-in
started for it (its OAuth `state`) and to the time it was asked; it is taken once, and only
after the callback has checked the new ID token (the sign-in's own checks: signature, iss, aud,
exp, nonce; then `amr` with "mfa", a recent `auth_time`, the same person). A decision started
and abandoned is never made by a later sign-in: the next step-up replaces it, and it lapses
with ACCESS_STEP_UP_MAX_AGE.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing
from django.http import HttpRequest
from django.urls import reverse

from portal.auth.mfa import MFA_ACR
from portal.auth.oidc import oidc_client
from portal.auth.redirects import safe_next_path

STEP_UP_SESSION_KEY = "atrium_step_up"
_SALT = "portal.auth.stepup"
# The most requests one decision carries across: a bulk decision of a page's worth and more.
MOST_REQUESTS = 1_000


@dataclass(frozen=True)
class PendingDecision:
    """A decision kept across the round trip to the issuer."""

    sub: str
    request_ids: tuple[int, ...]
    outcome: str
    comment: str
    back: str  # the page it was made on, to come back to


def callback_url() -> str:
    return settings.PORTAL_BASE_URL + reverse("auth:callback")


def step_up_begin(request: HttpRequest, *, pending: PendingDecision) -> str:
    """Keep the decision and start a sign-in asking for a second factor; the issuer's URL to
    send the person to."""
    client = oidc_client()
    max_age = int(settings.ACCESS_STEP_UP_MAX_AGE.total_seconds())
    found = client.create_authorization_url(callback_url(), acr_values=MFA_ACR, max_age=max_age)
    # As authorize_redirect keeps it: the state, PKCE verifier and nonce the callback checks.
    client.save_authorize_data(request, redirect_uri=callback_url(), **found)
    decision = {
        "sub": pending.sub, "ids": list(pending.request_ids[:MOST_REQUESTS]),
        "outcome": pending.outcome, "comment": pending.comment[:2000],
        "back": safe_next_path(pending.back), "state": found["state"],
    }  # fmt: skip
    request.session[STEP_UP_SESSION_KEY] = {
        "state": found["state"],
        "decision": signing.dumps(decision, salt=_SALT, compress=True),
        "ready": False,
    }
    url: str = found["url"]
    return url


def step_up_answered(request: HttpRequest) -> bool:
    """Is this callback the answer to the step-up under way (its `state`)?"""
    under_way = request.session.get(STEP_UP_SESSION_KEY)
    state = request.GET.get("state", "")
    return isinstance(under_way, dict) and bool(state) and under_way.get("state") == state


def step_up_back(request: HttpRequest) -> str:
    """Where the step-up under way was started, for a refusal to send the person back to."""
    decision = _decision(request, max_age=None)
    return str(decision.get("back", "/")) if decision else reverse("access:approvals")


def step_up_confirmed(request: HttpRequest) -> None:
    """The callback checked the multi-factor sign-in: the kept decision may now be taken."""
    under_way = request.session.get(STEP_UP_SESSION_KEY)
    if isinstance(under_way, dict):
        request.session[STEP_UP_SESSION_KEY] = {**under_way, "ready": True}


def step_up_abandon(request: HttpRequest) -> None:
    request.session.pop(STEP_UP_SESSION_KEY, None)


def step_up_take(request: HttpRequest) -> PendingDecision | None:
    """The decision kept for the step-up just confirmed, once: None when there is none, it
    was not confirmed, it is older than ACCESS_STEP_UP_MAX_AGE, or it is another person's."""
    under_way = request.session.get(STEP_UP_SESSION_KEY)
    if not isinstance(under_way, dict) or under_way.get("ready") is not True:
        return None
    decision = _decision(request, max_age=settings.ACCESS_STEP_UP_MAX_AGE)
    step_up_abandon(request)
    if not decision or decision.get("state") != under_way.get("state"):
        return None
    sub = getattr(request.user, "sub", "")
    ids = decision.get("ids")
    if not sub or decision.get("sub") != sub or not isinstance(ids, list):
        return None
    return PendingDecision(
        sub=sub,
        request_ids=tuple(i for i in ids if isinstance(i, int) and not isinstance(i, bool)),
        outcome=str(decision.get("outcome", "")),
        comment=str(decision.get("comment", "")),
        back=safe_next_path(str(decision.get("back", ""))),
    )


def _decision(request: HttpRequest, *, max_age: timedelta | None) -> dict[str, Any] | None:
    under_way = request.session.get(STEP_UP_SESSION_KEY)
    token = under_way.get("decision") if isinstance(under_way, dict) else None
    if not isinstance(token, str):
        return None
    try:
        value = signing.loads(token, salt=_SALT, max_age=max_age)
    except signing.BadSignature:  # also one older than max_age
        return None
    return value if isinstance(value, dict) else None
