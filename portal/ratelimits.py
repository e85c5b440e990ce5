"""Rate limits on sign-ins, refused tokens, role refreshes and API calls, answered with 429."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

import django_ratelimit.core as ratelimit_core  # type: ignore[import-untyped]
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_ratelimit.core import (
    EXPIRATION_FUDGE,
    _get_window,
    _make_cache_key,
    _split_rate,
    get_usage,
)
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

View = TypeVar("View", bound=Callable[..., HttpResponse])


@dataclass(frozen=True)
class Limit:
    """One limit: the name its counters go by, the setting holding its rate, and how a refusal
    names what was done too often."""

    group: str
    setting: str
    too_many: str

    @property
    def rate(self) -> str | None:
        rate: str = getattr(settings, self.setting)
        return rate or None


SIGN_IN_START = Limit("sign-in-start", "RATE_LIMIT_SIGN_IN", "sign-ins started from your address")
SIGN_IN_CALLBACK = Limit(
    "sign-in-callback", "RATE_LIMIT_SIGN_IN", "sign-ins answered from your address"
)
BAD_TOKENS = Limit("bad-tokens", "RATE_LIMIT_BAD_TOKENS", "refused tokens from this address")
ROLE_REFRESH = Limit("role-refresh", "RATE_LIMIT_ROLE_REFRESH", "role refreshes")
API_CALLS = Limit("api-calls", "RATE_LIMIT_API", "API calls")
AUTHZ_EXPLAIN = Limit("authz-explain", "RATE_LIMIT_AUTHZ_EXPLAIN", "token checks")


class RateLimited(Exception):
    """A limit is used up; `retry_after` is how many seconds until its window frees."""

    def __init__(self, limit: Limit, *, retry_after: int) -> None:
        unit = "second" if retry_after == 1 else "seconds"
        super().__init__(f"Too many {limit.too_many}: try again in {retry_after} {unit}.")
        self.limit, self.retry_after = limit, retry_after


def _counted(limit: Limit, *, rate: str, key: str) -> dict[str, Any] | None:
    """One more under `key`, as django-ratelimit's get_usage(increment=True) counts it (the same
    Redis key, window and expiry, so that its reads see this count), in one round trip to
    Redis instead of its three (SET NX, then EXISTS and INCR): every API call pays for it.
    None when the cache is not Redis: get_usage counts then."""
    cache = caches[settings.RATELIMIT_USE_CACHE]
    if not isinstance(cache, RedisCache):
        return None
    allowed, period = _split_rate(rate)
    window = _get_window(key, period)
    cache_key = cache.make_and_validate_key(
        _make_cache_key(limit.group, window, rate, key, get_usage.ALL)
    )
    # Django's Redis client (its `_cache`, absent from the stubs), as its own add and incr use.
    client = cache._cache.get_client(cache_key, write=True)  # type: ignore[attr-defined]
    pipeline = client.pipeline(transaction=False)
    pipeline.set(cache_key, 0, ex=period + EXPIRATION_FUDGE, nx=True)
    pipeline.incr(cache_key)
    _, counted = pipeline.execute()
    return {
        "count": counted,
        "limit": allowed,
        "should_limit": counted > allowed,
        "time_left": window - int(ratelimit_core.time.time()),
    }


def _usage(limit: Limit, *, request: HttpRequest, key: str, count: bool) -> dict[str, Any] | None:
    rate = limit.rate
    if rate is None or not getattr(settings, "RATELIMIT_ENABLE", True):
        return None
    try:
        usage: dict[str, Any] | None = _counted(limit, rate=rate, key=key) if count else None
        if usage is None:
            usage = get_usage(
                request, group=limit.group, key=lambda _group, _request: key, rate=rate,
                increment=count,
            )  # fmt: skip
    except RedisError:
        # A limit is a guard, not a gate: with Redis away, requests go on (and say so in the log)
        # rather than every sign-in and API call answering 500.
        logger.warning("rate limit %s not counted: Redis is unreachable", limit.group)
        return None
    return usage


def _refusal(limit: Limit, usage: dict[str, Any]) -> RateLimited:
    # django-ratelimit's window still holds during its last whole second, hence the one more.
    return RateLimited(limit, retry_after=max(1, usage["time_left"] + 1))


def limit_hit(limit: Limit, *, request: HttpRequest, key: str) -> None:
    """Count one more under `key`; RateLimited once that is more than the limit allows."""
    usage = _usage(limit, request=request, key=key, count=True)
    if usage is not None and usage["should_limit"]:
        raise _refusal(limit, usage)


def limit_check(limit: Limit, *, request: HttpRequest, key: str) -> None:
    """Count nothing; RateLimited when `key` has used the limit up already."""
    usage = _usage(limit, request=request, key=key, count=False)
    if usage is not None and usage["count"] >= usage["limit"]:
        raise _refusal(limit, usage)


def limit_count(limit: Limit, *, request: HttpRequest, key: str) -> None:
    """Count one more under `key`, refusing nothing: for failures, refused by `limit_check`."""
    _usage(limit, request=request, key=key, count=True)


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(raw: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(raw)
    except ValueError:
        pass
    try:  # some proxies write the client's port too: 203.0.113.9:51234, [2001:db8::1]:51234
        host = urlsplit(f"//{raw}").hostname
        return ipaddress.ip_address(host) if host else None
    except ValueError:
        return None


def _seen_address(request: HttpRequest) -> tuple[str, IPAddress | None]:
    """The raw address a request came from and its parse: the connection's, or the one the
    trusted proxies saw. Only the last TRUSTED_PROXY_COUNT entries of X-Forwarded-For were
    written by our proxies; whatever is left of them the client wrote itself."""
    raw = request.META.get("REMOTE_ADDR") or ""
    trusted = settings.TRUSTED_PROXY_COUNT
    if trusted:
        header = request.META.get("HTTP_X_FORWARDED_FOR", "")
        forwarded = [entry.strip() for entry in header.split(",") if entry.strip()]
        if forwarded:
            raw = forwarded[-min(trusted, len(forwarded))]
    address = _address(raw)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return raw, address


def request_address(request: HttpRequest) -> str | None:
    """The client's address exactly, as the audit log records it; None when it is no address."""
    _raw, address = _seen_address(request)
    return str(address) if address is not None else None


def client_address(request: HttpRequest) -> str:
    """The address a request counts by: `request_address`, but an IPv6 client by its /64,
    which one machine usually holds whole."""
    raw, address = _seen_address(request)
    if address is None:
        return raw or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{address}/64", strict=False).network_address)
    return str(address)


def person_key(request: HttpRequest) -> str:
    return f"person:{request.user.sub}"  # type: ignore[union-attr]


def too_many_page(request: HttpRequest, refusal: RateLimited) -> HttpResponse:
    context = {"message": str(refusal), "retry_after": refusal.retry_after}
    response = render(request, "429.html", context, status=429)
    response["Retry-After"] = str(refusal.retry_after)
    return response


def rate_limited(limit: Limit, key: Callable[[HttpRequest], str]) -> Callable[[View], View]:
    """A view answered with the 429 page once `key(request)` has used `limit` up."""

    def decorate(view: View) -> View:
        @wraps(view)
        def limited(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                limit_hit(limit, request=request, key=key(request))
            except RateLimited as refusal:
                return too_many_page(request, refusal)
            return view(request, *args, **kwargs)

        return limited  # type: ignore[return-value]

    return decorate
