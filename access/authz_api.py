"""The gateways' part of the API: the OPA bundle, and `/authz/explain` as JSON."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.http import parse_etags
from django.views.decorators.debug import sensitive_variables
from ninja import Router, Schema
from ninja.errors import HttpError
from pydantic import Field

from access.gateway import Explanation, Target, gateway_bundle, gateway_explain
from access.policy import may_download_gateway_bundle, may_explain_gateway_decisions, viewer_for
from catalog.routes import request_host
from portal.apikit import person_of, principal_of
from portal.ratelimits import AUTHZ_EXPLAIN, limit_hit

router = Router(tags=["authz"])


@router.get(
    "/bundle.tar.gz",
    summary="An OPA bundle of the gateway routes and who holds the roles they require",
    response={200: None, 304: None},
)
def bundle(request: HttpRequest) -> HttpResponse:
    """`.manifest` (revision, roots ["atrium"]), `atrium/routes/data.json`,
    `atrium/holders/data.json`; 304 when `If-None-Match` names its revision. For machine
    clients and portal admins, with `read:catalog` and `read:access`."""
    principal = principal_of(request)
    principal.require_scope("read:catalog")
    principal.require_scope("read:access")
    if not may_download_gateway_bundle(principal, person_of(request)):
        raise HttpError(
            403, "the bundle holds who holds each role: it is for machines and portal admins"
        )
    found = gateway_bundle()
    wanted = parse_etags(request.headers.get("If-None-Match", ""))
    if found.etag in wanted or "*" in wanted:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(found.content, content_type="application/gzip")
        response["Content-Disposition"] = 'attachment; filename="bundle.tar.gz"'
    response["ETag"] = found.etag
    return response


class ExplainIn(Schema):
    # An access token is a few kilobytes; the limit keeps a pasted file out.
    token: str = Field(min_length=1, max_length=16_384)
    method: str = Field(default="GET", min_length=1, max_length=10)
    host: str = Field(min_length=1, max_length=253)
    path: str = Field(default="/", min_length=1, max_length=2_000)


class StepOut(Schema):
    check: str
    passed: bool | None
    detail: str


class ExplainOut(Schema):
    status: int
    reason: str
    subject: str
    roles: list[str]
    steps: list[StepOut]


def explanation_json(explanation: Explanation) -> dict[str, Any]:
    decision = explanation.outcome.decision
    return {
        "status": decision.status,
        "reason": decision.reason,
        "subject": decision.subject if decision.allowed else "",
        "roles": list(decision.roles),
        "steps": [
            {"check": step.check, "passed": step.passed, "detail": step.detail}
            for step in explanation.steps
        ],
    }


@router.post(
    "/explain",
    response=ExplainOut,
    summary="What /authz/ would answer for this token at this route, step by step",
)
def explain(request: HttpRequest, payload: ExplainIn) -> dict[str, Any]:
    """For people (a session, or their own token with `read:catalog`); the token pasted is
    checked and forgotten, never stored nor logged."""
    principal = principal_of(request)
    if not may_explain_gateway_decisions(principal):
        raise HttpError(403, "explaining gateway decisions is for people, with read:catalog")
    limit_hit(AUTHZ_EXPLAIN, request=request, key=f"caller:{principal.actor}")
    return _explained(request, payload)


@sensitive_variables("payload", "token")
def _explained(request: HttpRequest, payload: ExplainIn) -> dict[str, Any]:
    # Django's error reports leave the token out, should anything fail from here.
    token = payload.token.strip()
    target = Target(method=payload.method.upper(), host=request_host(payload.host),
                    raw_path=payload.path)  # fmt: skip
    explanation = gateway_explain(target=target, token=token, viewer=viewer_for(person_of(request)))
    return explanation_json(explanation)
