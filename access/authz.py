"""`/authz/`, the gateways' decision endpoint, and `/authz/explain`, its decisions shown to people.

`/authz/` is answered by a middleware near the top of the stack, as the probes are: a gateway
calls it with any method, any Host (Envoy's check carries the request's own) and over plain
http, and it must answer fast, before sessions, CSRF and sign-in are looked at. One contract
for the four gateways:

- forward-auth (NGINX `auth_request`, Traefik `forwardAuth`, APISIX `forward-auth`): the
  request's target in `X-Forwarded-Method`, `X-Forwarded-Host` and `X-Forwarded-Uri`;
- Envoy's `ext_authz` HTTP service with `path_prefix: /authz`: the request's own method, Host
  and path after `/authz`.

It answers 200 (with `X-Atrium-Subject` and `X-Atrium-Roles` for the upstream), 401 (with
`WWW-Authenticate`) or 403, with a short JSON reason. Denials are written to the audit log,
once per subject and route every AUTHZ_DENIAL_AUDIT_SECONDS; every decision is counted for
/metrics.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port, validate_host

from access.audit import Actor
from access.gateway import Outcome, Target, gateway_decide
from access.models import AuditEvent
from catalog.routes import request_host
from portal.metrics import decisions_count

logger = logging.getLogger(__name__)

EXPLAIN_PATH = "/authz/explain"


def _is_decision_path(path: str) -> bool:
    return path == "/authz" or path.startswith("/authz/")


def _own_host(request: HttpRequest) -> bool:
    # The Host header, or the server's name without one (Django's own fallback).
    domain, _ = split_domain_port(request._get_raw_host())  # type: ignore[attr-defined]
    return bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)


class GatewayDecisionMiddleware:
    """Answer `/authz/…` before host validation, the https redirect, sessions and CSRF.

    `/authz/explain` on the portal's own host is the page, not a decision: an Envoy check of
    a path `/explain` carries its upstream's Host, which is not the portal's."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if not _is_decision_path(path):
            return self.get_response(request)
        if path.rstrip("/") == EXPLAIN_PATH and _own_host(request):
            return self.get_response(request)
        return authz_decide(request)


def request_target(request: HttpRequest) -> Target:
    """What the gateway asks about: forward-auth's X-Forwarded-* headers when it sends them,
    else (Envoy) the request itself, less the `/authz` prefix."""
    headers = request.headers
    if "X-Forwarded-Uri" in headers or "X-Forwarded-Host" in headers:
        return Target(
            method=headers.get("X-Forwarded-Method", request.method or "GET").upper(),
            host=request_host(headers.get("X-Forwarded-Host", "")),
            raw_path=headers.get("X-Forwarded-Uri", "/"),
        )
    # The path as the client sent it (gunicorn's RAW_URI), so that what the decision matches
    # is what the upstream reads; else the decoded path, which matches the same routes.
    raw = request.META.get("RAW_URI") or request.META.get("REQUEST_URI") or request.path
    raw = raw.split("?", 1)[0]
    rest = raw[len("/authz") :] if raw.startswith("/authz") else raw
    return Target(
        method=(request.method or "GET").upper(),
        host=request_host(request.META.get("HTTP_HOST", "")),
        raw_path=rest or "/",
    )


@login_not_required
def authz_decide(request: HttpRequest) -> HttpResponse:
    """The decision, as a gateway reads it."""
    outcome = gateway_decide(
        target=request_target(request), authorization=request.headers.get("Authorization")
    )
    decision = outcome.decision
    if decision.allowed:
        decisions_count("allowed")
        response = HttpResponse(status=200)
        # Both, always (empty without a subject): a gateway that copies them to the upstream
        # request replaces whatever the client sent under those names.
        response["X-Atrium-Subject"] = decision.subject
        response["X-Atrium-Roles"] = ",".join(decision.roles)
    else:
        decisions_count("unauthenticated" if decision.status == 401 else "denied")
        denial_record(request, outcome)
        body = json.dumps({"status": decision.status, "reason": decision.reason})
        response = HttpResponse(body, status=decision.status, content_type="application/json")
        if outcome.www_authenticate:
            response["WWW-Authenticate"] = outcome.www_authenticate
        # Not a line of django.request's log for each refusal at the edge: the audit log
        # has them, once per subject and route a minute.
        response._has_been_logged = True  # type: ignore[attr-defined]
    response["Cache-Control"] = "no-store"
    return response


# Keys whose audit window this process took or found taken, until when (monotonic seconds).
_recently_recorded: dict[str, float] = {}


def denials_forget() -> None:
    """Forget which denials this process recorded lately (tests)."""
    _recently_recorded.clear()


def denial_record(request: HttpRequest, outcome: Outcome) -> None:
    """The audit record of a refusal, at most once per subject and route (or per subject for
    every undeclared route) in AUTHZ_DENIAL_AUDIT_SECONDS: a client retrying in a loop is one
    record, not thousands."""
    decision = outcome.decision
    subject = decision.subject or "anonymous"
    route = outcome.rule.route if outcome.rule is not None else "(no route)"
    key = hashlib.sha256(f"{subject}\0{route}".encode()).hexdigest()[:32]
    now = time.monotonic()
    if _recently_recorded.get(key, 0.0) > now:
        return  # this process knows the window is taken: no round trip to the cache
    if len(_recently_recorded) > 10_000:
        _recently_recorded.clear()
    _recently_recorded[key] = now + settings.AUTHZ_DENIAL_AUDIT_SECONDS
    try:
        first = caches["ratelimit"].add(
            f"authz-denied:{key}", 1, settings.AUTHZ_DENIAL_AUDIT_SECONDS
        )
    except Exception:  # the audit's rate limit is a guard: without the cache, record it
        logger.warning("authz: denial rate limit unreadable", exc_info=True)
        first = True
    if not first:
        return
    actor = Actor.of_request(request, subject, AuditEvent.Via.API)
    entity = outcome.rule.entity_ref if outcome.rule is not None else ""
    actor.record(
        "authz.denied", str(outcome.target), status=decision.status, reason=decision.reason,
        route=route, entity=entity,
    )  # fmt: skip
