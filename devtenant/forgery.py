"""Forged and broken tokens, for tests that prove the portal refuses them.

`forge(tenant, token, how)` returns a variant of a token this tenant issued: re-signed with
changed claims, or broken in the ways attackers try (no signature, HMAC with the public key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey

from devtenant import tokens
from devtenant.store import Tenant

FORGERIES = (
    "tampered", "expired", "wrong_aud", "wrong_iss", "wrong_nonce", "alg_none", "hs256",
    # Signed as the tenant signs, saying less of how the person signed in than they did.
    "no_mfa", "stale_auth_time", "no_auth_time",
)  # fmt: skip


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())


def forge(tenant: Tenant, token: str, how: str) -> str:
    claims: dict[str, Any] = dict(jwt.decode(token, tenant.key_set(), algorithms=["RS256"]).claims)
    now = int(time.time())
    if how == "tampered":
        header_part, _, signature = token.split(".")
        changed = _b64(json.dumps({**claims, "sub": claims["sub"] + "x"}).encode())
        return f"{header_part}.{changed}.{signature}"
    if how == "expired":
        return tokens.sign(tenant, {**claims, "iat": now - 7200, "exp": now - 3600})
    if how == "wrong_aud":
        return tokens.sign(tenant, {**claims, "aud": "someone-else"})
    if how == "wrong_iss":
        return tokens.sign(tenant, {**claims, "iss": "https://evil.example/"})
    if how == "wrong_nonce":
        return tokens.sign(tenant, {**claims, "nonce": "not-the-nonce"})
    if how == "no_mfa":
        return tokens.sign(
            tenant, {k: v for k, v in claims.items() if k != "acr"} | {"amr": ["pwd"]}
        )
    if how == "stale_auth_time":
        return tokens.sign(tenant, {**claims, "auth_time": now - 7200})
    if how == "no_auth_time":
        return tokens.sign(tenant, {k: v for k, v in claims.items() if k != "auth_time"})
    if how == "alg_none":
        return _unsigned({"alg": "none", "typ": "JWT"}, claims) + "."
    if how == "hs256":
        # The classic confusion attack: HMAC keyed with the published RSA public key.
        public: RSAKey = RSAKey.import_key(tenant.signing_key().as_dict(private=False))
        secret = public.as_pem(private=False)
        signing_input = _unsigned({"alg": "HS256", "typ": "JWT", "kid": public.kid}, claims)
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(mac)}"
    raise ValueError(f"unknown forgery {how!r}; one of {', '.join(FORGERIES)}")
