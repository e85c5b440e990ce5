"""Auth0's Management API as the portal uses it: roles, their members, a person's roles.

A thin httpx client rather than the `auth0-python` SDK. The portal needs four things the SDK
keeps to itself or does its own way: the rate-limit headers of every answer (to wait for
`x-ratelimit-reset` before the bucket is empty rather than after a 429), one retry policy for
429, 5xx and timeouts with a bounded count, an `X-Correlation-ID` on each write, and a count
of the calls made (the sync reports it). Wrapping the SDK would mean turning its retries off
and re-reading its exceptions for all of that; these few calls are simpler said directly.

The base URL is the issuer's, so the devtenant and any test server stand in for Auth0.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from django.conf import settings
from django.core.cache import cache

from portal.metrics import auth0_rate_limited

PAGE_SIZE = 100  # the most Auth0 gives per page
# A cached Management API token is dropped this long before Auth0 would refuse it.
TOKEN_MARGIN_SECONDS = 60


class Auth0Error(Exception):
    """Auth0 could not be asked, or refused; the message says which call and why."""


@dataclass(frozen=True)
class DirectoryRole:
    id: str
    name: str
    description: str = ""


@dataclass(frozen=True)
class DirectoryUser:
    user_id: str
    email: str = ""
    name: str = ""


@dataclass(frozen=True)
class DirectoryAccount:
    """Whether Auth0 still lets a person in: `exists` False when it answers 404."""

    user_id: str
    exists: bool
    blocked: bool = False


class Directory:
    """One conversation with the Management API; `calls` counts the requests it made."""

    def __init__(
        self,
        *,
        issuer: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        timeout: float | None = None,
        retries: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.issuer = (issuer or settings.AUTH0_ISSUER).rstrip("/") + "/"
        self.client_id = client_id or settings.AUTH0_MGMT_CLIENT_ID
        self.client_secret = client_secret or settings.AUTH0_MGMT_CLIENT_SECRET
        self.retries = retries
        self.sleep = sleep
        self.calls = 0
        self.token_calls = 0
        self.waited = 0.0
        self._remaining: int | None = None
        self._reset_at = 0.0
        self._limit = 1
        self._http = httpx.Client(timeout=timeout or settings.AUTH0_HTTP_TIMEOUT)

    def __enter__(self) -> Directory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- reads ---------------------------------------------------------------------------------

    def roles(self) -> list[DirectoryRole]:
        """Every role of the tenant (offset paging: a tenant has far fewer than 1,000 roles)."""
        roles: list[DirectoryRole] = []
        page = 0
        while True:
            body = self._json(
                "GET",
                "roles",
                params={"page": page, "per_page": PAGE_SIZE, "include_totals": "true"},
            )
            items = body.get("roles", []) if isinstance(body, dict) else body
            roles += [DirectoryRole(r["id"], r["name"], r.get("description") or "") for r in items]
            total = body.get("total", len(roles)) if isinstance(body, dict) else len(roles)
            if not items or len(roles) >= total:
                return roles
            page += 1

    def role_members(self, role_id: str) -> list[DirectoryUser]:
        """Everyone holding the role, by checkpoint paging: offset paging stops at 1,000."""
        members: list[DirectoryUser] = []
        params: dict[str, Any] = {"take": PAGE_SIZE}
        while True:
            body = self._json("GET", f"roles/{role_id}/users", params=params)
            members += [
                DirectoryUser(u["user_id"], u.get("email") or "", u.get("name") or "")
                for u in body.get("users", [])
            ]
            if not body.get("next"):
                return members
            params = {"take": PAGE_SIZE, "from": body["next"]}

    def user_roles(self, user_id: str) -> list[DirectoryRole]:
        body = self._json("GET", f"users/{_segment(user_id)}/roles", params={"per_page": PAGE_SIZE})
        items = body.get("roles", []) if isinstance(body, dict) else body
        return [DirectoryRole(r["id"], r["name"], r.get("description") or "") for r in items]

    def account(self, user_id: str) -> DirectoryAccount:
        """The person's account as Auth0 has it now (GET /api/v2/users/{id}); a 404 says it was
        deleted, anything else that fails raises Auth0Error as every read does."""
        response = self._request(
            "GET", f"users/{_segment(user_id)}", params={"fields": "user_id,blocked"},
            missing_ok=True,
        )  # fmt: skip
        if response.status_code == 404:
            return DirectoryAccount(user_id, exists=False)
        blocked = response.json().get("blocked") is True
        return DirectoryAccount(user_id, exists=True, blocked=blocked)

    # --- writes --------------------------------------------------------------------------------

    def assign(self, user_id: str, role_ids: list[str], *, correlation_id: str) -> None:
        self._request(
            "POST",
            f"users/{_segment(user_id)}/roles",
            json={"roles": role_ids},
            correlation_id=correlation_id,
        )

    def unassign(self, user_id: str, role_ids: list[str], *, correlation_id: str) -> None:
        self._request(
            "DELETE",
            f"users/{_segment(user_id)}/roles",
            json={"roles": role_ids},
            correlation_id=correlation_id,
        )

    # --- the conversation ----------------------------------------------------------------------

    def _token(self, *, fresh: bool = False) -> str:
        """A Management API token, shared through the cache by every worker until near its end."""
        key = f"atrium:auth0-management-token:{self.issuer}:{self.client_id}"
        if not fresh:
            cached = cache.get(key)
            if cached:
                return str(cached)
        try:
            response = self._http.post(
                self.issuer + "oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "audience": self.issuer + "api/v2/",
                },
            )
        except httpx.HTTPError as error:
            raise Auth0Error(f"could not get a Management API token: {error}") from error
        self.token_calls += 1
        if response.status_code != 200:
            raise Auth0Error(
                f"Auth0 refused a Management API token ({response.status_code}): "
                f"{_message(response)}; check AUTH0_MGMT_CLIENT_ID/SECRET and the client's "
                "grant on the Management API"
            )
        body = response.json()
        token = str(body["access_token"])
        lifetime = int(body.get("expires_in", 86400)) - TOKEN_MARGIN_SECONDS
        if lifetime > 0:
            cache.set(key, token, timeout=lifetime)
        return token

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        correlation_id: str = "",
        missing_ok: bool = False,
    ) -> httpx.Response:
        """One call, retried on 429, 5xx and network trouble a bounded number of times; a 404
        is returned rather than raised when `missing_ok`."""
        fresh_token = False
        problem = ""
        for attempt in range(self.retries + 1):
            self._wait_for_budget()
            headers = {"Authorization": f"Bearer {self._token(fresh=fresh_token)}"}
            if correlation_id:
                headers["X-Correlation-ID"] = correlation_id
            try:
                response = self._http.request(
                    method, self.issuer + "api/v2/" + path, params=params, json=json,
                    headers=headers,
                )  # fmt: skip
            except httpx.HTTPError as error:
                self.calls += 1
                problem = f"{type(error).__name__}: {error}"
                self._back_off(attempt)
                continue
            self.calls += 1
            self._note_limits(response)
            if response.status_code == 401 and not fresh_token:
                fresh_token = True  # the cached token was revoked or the keys rotated
                continue
            if response.status_code == 429:
                problem = f"429 {_message(response)}"
                auth0_rate_limited()
                self._wait_for_reset(attempt)
                continue
            if response.status_code >= 500:
                problem = f"{response.status_code} {_message(response)}"
                self._back_off(attempt)
                continue
            if response.status_code == 404 and missing_ok:
                return response
            if response.status_code >= 400:
                raise Auth0Error(
                    f"{method} /api/v2/{path}: Auth0 answered {response.status_code} "
                    f"{_message(response)}"
                )
            return response
        raise Auth0Error(
            f"{method} /api/v2/{path}: gave up after {self.retries + 1} attempts; last: {problem}"
        )

    def _note_limits(self, response: httpx.Response) -> None:
        try:
            self._remaining = int(response.headers["x-ratelimit-remaining"])
            self._reset_at = float(response.headers["x-ratelimit-reset"])
            self._limit = max(1, int(response.headers.get("x-ratelimit-limit", 1)))
        except (KeyError, ValueError):
            self._remaining = None

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self.waited += seconds
            self.sleep(seconds)

    def _wait_for_budget(self) -> None:
        """With the bucket empty, wait for the next request's worth instead of spending a call on
        a 429. `x-ratelimit-reset` is when the whole bucket is full again, in whole seconds;
        waiting for all of it would idle through most of the refill, so wait for one share."""
        if self._remaining is not None and self._remaining <= 0:
            one_request = (self._reset_at - time.time()) / self._limit
            self._pause(one_request + random.uniform(0.01, 0.05))
            self._remaining = None

    def _wait_for_reset(self, attempt: int) -> None:
        """After a 429: wait for one request's share of the refill (not the whole bucket, which
        can be a minute of idling), and longer with each attempt."""
        share = 0.0
        if self._remaining is not None:
            share = (self._reset_at - time.time()) / self._limit
        self._pause(max(share, 0.25 * 2**attempt) + random.uniform(0.05, 0.25))
        self._remaining = None

    def _back_off(self, attempt: int) -> None:
        self._pause(min(0.25 * 2**attempt, 8) + random.uniform(0, 0.1))


_shared: dict[tuple[str, str], Directory] = {}


def shared_directory() -> Directory:
    """The process's one client for grants: it keeps its connection and its reading of the
    rate limit from one task to the next, so a run of grants paces itself instead of each
    starting blind. (A sync makes a Directory of its own, to count its calls.)"""
    key = (settings.AUTH0_ISSUER, settings.AUTH0_MGMT_CLIENT_ID)
    directory = _shared.get(key)
    if directory is None:
        directory = _shared[key] = Directory()
    return directory


def _segment(value: str) -> str:
    """A path segment as Auth0 documents it: `auth0|123` is sent as `auth0%7C123`."""
    return quote(value, safe="")


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error_description") or body.get("error"))
    return str(body)[:200]
