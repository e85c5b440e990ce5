"""Signing and checking the devtenant's JWTs with joserfc (RS256 only)."""

from __future__ import annotations

import time
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from devtenant.store import Tenant


class TokenError(Exception):
    pass


def sign(tenant: Tenant, claims: dict[str, Any]) -> str:
    key: RSAKey = tenant.signing_key()
    return jwt.encode({"alg": "RS256", "typ": "JWT", "kid": key.kid}, claims, key, ["RS256"])


def verify(
    tenant: Tenant, token: str, *, audience: str, check_expiry: bool = True
) -> dict[str, Any]:
    """The claims of a token this tenant issued for `audience`; TokenError otherwise."""
    try:
        decoded = jwt.decode(token, tenant.key_set(), algorithms=["RS256"])
    except (JoseError, ValueError) as error:
        raise TokenError("Invalid token") from error
    claims: dict[str, Any] = dict(decoded.claims)
    if claims.get("iss") != tenant.issuer:
        raise TokenError("Invalid token")
    audiences = claims.get("aud")
    if audience not in (audiences if isinstance(audiences, list) else [audiences]):
        raise TokenError("Invalid token")
    if check_expiry and int(claims.get("exp", 0)) < time.time():
        raise TokenError("Expired token received for JSON Web Token validation")
    return claims
