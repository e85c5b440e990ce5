"""API bearer tokens: RS256 JWTs from the issuer, checked for signature, iss, aud, exp and nbf."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import requests
from django.conf import settings
from django.core.cache import cache
from joserfc import jwt
from joserfc.errors import (
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from portal.auth.oidc import oidc_client

logger = logging.getLogger(__name__)

JWKS_CACHE_SECONDS = 600
# After fetching the keys again for an unknown `kid`, wait this long before the next try, so a
# flood of forged tokens cannot make the portal hammer the issuer.
JWKS_REFETCH_COOLDOWN = 30


class BearerError(Exception):
    """A request's token was refused: `status` 401 (invalid_token) or 403 (insufficient_scope)."""

    def __init__(self, description: str, *, status: int = 401, error: str = "invalid_token"):
        super().__init__(description)
        self.description, self.status, self.error = description, status, error

    @property
    def www_authenticate(self) -> str:
        description = self.description.replace('"', "'")
        return f'Bearer error="{self.error}", error_description="{description}"'


@dataclass(frozen=True)
class Principal:
    """Who is calling the API and how: a person (by `sub`) or a machine client."""

    sub: str
    via: str  # "session" or "bearer"
    client_id: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_machine(self) -> bool:
        return self.client_id is not None

    @property
    def actor(self) -> str:
        """How the audit log names the caller: `client:<id>` for machines, else the `sub`."""
        return f"client:{self.client_id}" if self.is_machine else self.sub

    def require_scope(self, scope: str) -> None:
        if scope not in self.scopes:
            raise BearerError(
                f"this request needs the scope {scope}",
                status=403,
                error="insufficient_scope",
            )


def _jwks_cache_key() -> str:
    return f"atrium:jwks:{settings.AUTH0_ISSUER}"


def _jwks_uri() -> str:

    uri: str = oidc_client().load_server_metadata()["jwks_uri"]
    return uri


def _fetch_jwks() -> dict[str, Any]:
    response = requests.get(_jwks_uri(), timeout=settings.AUTH0_HTTP_TIMEOUT)
    response.raise_for_status()
    jwks: dict[str, Any] = response.json()
    cache.set(_jwks_cache_key(), jwks, JWKS_CACHE_SECONDS)
    return jwks


def signing_keys(kid: str | None) -> KeySet:
    """The issuer's published keys; fetched again (at most every 30 s) for an unknown `kid`."""
    try:
        jwks = cache.get(_jwks_cache_key()) or _fetch_jwks()
        known = {key.get("kid") for key in jwks.get("keys", [])}
        # Only a `kid` the issuer may have just published is worth asking for again.
        if (
            kid
            and kid not in known
            and cache.add(f"{_jwks_cache_key()}:refetch", True, JWKS_REFETCH_COOLDOWN)
        ):
            jwks = _fetch_jwks()
    except (requests.RequestException, ValueError, KeyError) as error:
        logger.warning("could not fetch the issuer's signing keys: %s", error)
        raise BearerError("the issuer's signing keys could not be fetched") from error
    return KeySet.import_key_set(jwks)  # type: ignore[arg-type]


def principal_from_token(token: str) -> Principal:
    try:
        header = extract_compact(token.encode()).protected
    except (JoseError, ValueError, UnicodeError) as error:
        raise BearerError("the token is not a signed JWT") from error
    if header.get("alg") != "RS256":
        raise BearerError("only RS256-signed tokens are accepted")
    keys = signing_keys(header.get("kid"))
    try:
        decoded = jwt.decode(token, keys, algorithms=["RS256"])
    except (JoseError, ValueError) as error:
        raise BearerError("the token's signature does not verify") from error
    claims: dict[str, Any] = dict(decoded.claims)
    registry = jwt.JWTClaimsRegistry(
        leeway=settings.AUTH0_LEEWAY,
        iss={"essential": True, "value": settings.AUTH0_ISSUER},
        aud={"essential": True, "value": settings.AUTH0_AUDIENCE},
        exp={"essential": True},
        sub={"essential": True},
    )
    try:
        registry.validate(claims)
    except ExpiredTokenError as error:
        raise BearerError("the token has expired") from error
    except (InvalidClaimError, MissingClaimError) as error:
        raise BearerError(f"the token's claims are not valid here: {error.description}") from error
    except JoseError as error:
        raise BearerError(f"the token is not valid: {error.description}") from error
    sub = str(claims["sub"])
    is_machine = claims.get("gty") == "client-credentials" or sub.endswith("@clients")
    client_id = str(claims.get("azp") or sub.removesuffix("@clients")) if is_machine else None
    return Principal(
        sub=sub,
        via="bearer",
        client_id=client_id,
        scopes=frozenset(str(claims.get("scope", "")).split()),
    )
