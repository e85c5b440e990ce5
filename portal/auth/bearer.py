"""API bearer tokens: RS256 JWTs from the issuer, checked for signature, iss, aud, exp and nbf."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
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
    # When the person last completed a multi-factor sign-in (Unix time), as their session or
    # their token says (AUTH0_MFA_CLAIM); None when it says nothing of one.
    mfa_at: float | None = None

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
    _kids_kept.pop(settings.AUTH0_ISSUER, None)
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


class VerifiedTokens:
    """Claims of tokens whose signature verified, by the token's SHA-256, in this process:
    the RS256 check and the import of the issuer's keys were most of a token call's fixed cost.

    Only the signature's answer is kept: `iss`, `aud`, `exp`, `nbf` are checked again at every
    use (against settings and the clock then), and a kept token whose key (`kid`) the issuer no
    longer publishes is verified again, so it fails as it would have. At most `size` tokens,
    the least recently used leaving first; one past its `exp` is never asked for again.
    """

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._claims: OrderedDict[str, tuple[str | None, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, digest: str) -> tuple[str | None, dict[str, Any]] | None:
        with self._lock:
            found = self._claims.get(digest)
            if found is not None:
                self._claims.move_to_end(digest)
            return found

    def put(self, digest: str, kid: str | None, claims: dict[str, Any]) -> None:
        with self._lock:
            self._claims[digest] = (kid, claims)
            self._claims.move_to_end(digest)
            while len(self._claims) > self.size:
                self._claims.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._claims.clear()
        _kids_kept.clear()


verified_tokens = VerifiedTokens()


# The published `kid`s, also kept in the process for a few seconds: a gateway's decision asks
# for them at every request, and the shared cache keeps the keys themselves ten minutes anyway.
KIDS_PROCESS_SECONDS = 5.0
_kids_kept: dict[str, tuple[float, set[str | None]]] = {}


def _published_kids() -> set[str | None]:
    """The `kid`s the issuer publishes now, as cached (fetched when the cache has none)."""
    kept = _kids_kept.get(settings.AUTH0_ISSUER)
    now = time.monotonic()
    if kept is not None and kept[0] > now:
        return kept[1]
    try:
        jwks = cache.get(_jwks_cache_key()) or _fetch_jwks()
    except (requests.RequestException, ValueError, KeyError) as error:
        logger.warning("could not fetch the issuer's signing keys: %s", error)
        raise BearerError("the issuer's signing keys could not be fetched") from error
    kids = {key.get("kid") for key in jwks.get("keys", [])}
    _kids_kept[settings.AUTH0_ISSUER] = (now + KIDS_PROCESS_SECONDS, kids)
    return kids


def principal_from_token(token: str, *, audience: str | None = None) -> Principal:
    """Who the token speaks for, once it is verified for `audience` (the portal's API's,
    AUTH0_AUDIENCE, unless another is named: a gateway route's); BearerError otherwise."""
    claims = verified_claims(token, audience=audience)
    return principal_of_claims(claims)


def verified_claims(token: str, *, audience: str | None = None) -> dict[str, Any]:
    """The claims of a token whose signature verified and whose claims hold now."""
    digest = VerifiedTokens.digest(token)
    kept = verified_tokens.get(digest)
    if kept is not None and kept[0] in _published_kids():
        claims = kept[1]
        _claims_check(claims, audience=audience)
    else:
        kid, claims = _signature_verified(token)
        _claims_check(claims, audience=audience)
        verified_tokens.put(digest, kid, claims)
    return claims


def principal_of_claims(claims: dict[str, Any]) -> Principal:
    """The caller of verified claims: a machine client (client credentials) or a person.

    A machine's token is one Auth0 issued by the client-credentials grant: `gty` says so, and
    its `sub` is `<client id>@clients`. Both, not either: a person's id may end in `@clients`
    (a custom-database connection that makes ids of e-mails), and a machine is trusted with
    what its scopes say, which on an API without RBAC is whatever a person asks for."""
    sub = str(claims["sub"])
    is_machine = claims.get("gty") == "client-credentials" and sub.endswith("@clients")
    client_id = str(claims.get("azp") or sub.removesuffix("@clients")) if is_machine else None
    mfa_claim = claims.get(settings.AUTH0_MFA_CLAIM)
    return Principal(
        sub=sub,
        via="bearer",
        client_id=client_id,
        scopes=frozenset(str(claims.get("scope", "")).split()),
        # A machine never signs in with a second factor, whatever its token carries.
        mfa_at=None if is_machine else _time_of(mfa_claim),
    )


def _time_of(value: Any) -> float | None:
    """A Unix time a claim holds, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return float(value)


def _signature_verified(token: str) -> tuple[str | None, dict[str, Any]]:
    """The token's `kid` and claims, once its RS256 signature verifies by the issuer's keys."""
    try:
        header = extract_compact(token.encode()).protected
    except (JoseError, ValueError, UnicodeError) as error:
        raise BearerError("the token is not a signed JWT") from error
    if header.get("alg") != "RS256":
        raise BearerError("only RS256-signed tokens are accepted")
    kid = header.get("kid")
    keys = signing_keys(kid)
    try:
        decoded = jwt.decode(token, keys, algorithms=["RS256"])
    except (JoseError, ValueError) as error:
        raise BearerError("the token's signature does not verify") from error
    return kid, dict(decoded.claims)


@dataclass(frozen=True)
class Finding:
    """One check of a token, as `/authz/explain` shows it: what was checked, whether it
    passed (None: not checked, since an earlier check failed), and what was found."""

    check: str
    passed: bool | None
    detail: str


# The order claims are checked and shown in; any other claim joserfc knows is checked after.
CLAIM_ORDER = ("iss", "aud", "exp", "nbf", "iat", "sub")


def _registry(audience: str | None) -> jwt.JWTClaimsRegistry:
    return jwt.JWTClaimsRegistry(
        leeway=settings.AUTH0_LEEWAY,
        iss={"essential": True, "value": settings.AUTH0_ISSUER},
        aud={"essential": True, "value": audience or settings.AUTH0_AUDIENCE},
        exp={"essential": True},
        sub={"essential": True},
    )


def _seconds(value: Any, now: int) -> str:
    """How far a NumericDate is from now, in words: `in 3,599 s` or `61 s ago`."""
    try:
        delta = int(value) - now
    except (TypeError, ValueError, OverflowError):
        return "not a time"
    return f"in {delta:,} s" if delta >= 0 else f"{-delta:,} s ago"


def claims_findings(claims: dict[str, Any], *, audience: str | None = None) -> list[Finding]:
    """Each claim checked for `audience`, against settings and the clock now: the checks every
    token passes (`verified_claims`), one finding each, as `/authz/explain` shows them."""
    registry = _registry(audience)
    expected = {"iss": settings.AUTH0_ISSUER, "aud": audience or settings.AUTH0_AUDIENCE}
    now = registry.now
    findings: list[Finding] = []
    for name in (*CLAIM_ORDER, *(key for key in claims if key not in CLAIM_ORDER)):
        value = claims.get(name)
        check = getattr(registry, f"validate_{name}", None)
        if value is None:
            if name in registry.essential_keys:
                findings.append(Finding(name, False, f"the token has no {name} claim"))
            continue
        if check is None:
            continue
        try:
            check(value)
        except ExpiredTokenError:
            ago = _seconds(value, now)
            leeway = f"leeway {settings.AUTH0_LEEWAY} s"
            findings.append(Finding(name, False, f"the token expired {ago} ({leeway})"))
        except (InvalidClaimError, MissingClaimError) as error:
            if name in expected:
                detail = f"the token's {name} is {value!r}, where {expected[name]!r} is expected"
            elif name == "nbf":
                detail = f"the token is valid only from {_seconds(value, now)}"
            else:
                detail = f"the token's {name} is not valid: {error.description}"
            findings.append(Finding(name, False, detail))
        except JoseError as error:
            findings.append(
                Finding(name, False, f"the token's {name} is not valid: {error.description}")
            )
        else:
            if name in ("exp", "nbf", "iat"):
                findings.append(Finding(name, True, f"{value} ({_seconds(value, now)})"))
            elif name in expected or name == "sub":
                findings.append(Finding(name, True, str(value)))
    return findings


def _claims_check(claims: dict[str, Any], *, audience: str | None = None) -> None:
    """`iss`, `aud` (AUTH0_AUDIENCE, or the audience named), `exp`, `sub` present and right,
    `exp` and `nbf` against the clock now: the first failing finding, as a BearerError."""
    for finding in claims_findings(claims, audience=audience):
        if finding.passed is False:
            raise BearerError(finding.detail)


def signature_findings(token: str) -> tuple[list[Finding], dict[str, Any] | None]:
    """The token's form, key id and signature checked as `verified_claims` checks them, one
    finding each, and its claims when the signature verified (None otherwise)."""
    try:
        header = extract_compact(token.encode()).protected
    except (JoseError, ValueError, UnicodeError):
        return [
            Finding("format", False, "the token is not a signed JWT (header.payload.signature)")
        ], None
    findings = [Finding("format", True, f"a JWS with alg {header.get('alg')!r}")]
    kid = header.get("kid")
    try:
        known = kid in _published_kids()
    except BearerError as error:
        return [*findings, Finding("kid", False, error.description)], None
    findings.append(
        Finding(
            "kid", known, f"{kid!r} is {'' if known else 'not '}one of the issuer's published keys"
        )
    )
    try:
        _, claims = _signature_verified(token)
    except BearerError as error:
        return [*findings, Finding("signature", False, error.description)], None
    return [*findings, Finding("signature", True, "verified with the issuer's key (RS256)")], claims
