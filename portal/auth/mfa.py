"""Multi-factor sign-ins as the portal knows them: what an ID token says of one, and when the
person signed in with a second factor last, kept in their session."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

# What the portal asks the issuer for (`acr_values`) when a decision needs a second factor:
# the OpenID PAPE multi-factor policy, the name Auth0 gives a multi-factor sign-in.
MFA_ACR = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
# In the session: the Unix time of the person's last multi-factor sign-in.
MFA_AT_SESSION_KEY = "atrium_mfa_at"


def mfa_time_of(claims: dict[str, Any]) -> float | None:
    """When the sign-in of these (verified) ID token claims was made, if it used a second
    factor: `amr` lists "mfa" and `auth_time` says when. None otherwise."""
    amr, auth_time = claims.get("amr"), claims.get("auth_time")
    if not isinstance(amr, list) or "mfa" not in amr:
        return None
    if isinstance(auth_time, bool) or not isinstance(auth_time, int | float) or auth_time <= 0:
        return None
    return float(auth_time)


def session_mfa_at(request: HttpRequest) -> float | None:
    session = getattr(request, "session", None)
    value = session.get(MFA_AT_SESSION_KEY) if session is not None else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def session_mfa_record(request: HttpRequest, *, at: float) -> None:
    request.session[MFA_AT_SESSION_KEY] = at
