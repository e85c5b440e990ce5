"""The Management API routes the portal uses, with Auth0's shapes, paging, limits and errors."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request

from devtenant import tokens
from devtenant.limits import Faults, TokenBucket
from devtenant.store import Role, Tenant, User, assign, unassign

management = Blueprint("management", __name__, url_prefix="/api/v2")

OFFSET_LIMIT = 1000
STATUS_NAMES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ManagementError(Exception):
    def __init__(self, status: int, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.error_code = status, message, error_code


def error_body(status: int, message: str, error_code: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "statusCode": status,
        "error": STATUS_NAMES.get(status, "Error"),
        "message": message,
    }
    if error_code:
        body["errorCode"] = error_code
    return body


@management.errorhandler(ManagementError)
def _management_error(error: ManagementError) -> tuple[Response, int]:
    return jsonify(error_body(error.status, error.message, error.error_code)), error.status


def tenant() -> Tenant:
    found: Tenant = current_app.extensions["devtenant"]
    return found


@management.before_request
def _limits_faults_and_authentication() -> tuple[Response, int] | None:
    g.started = time.monotonic()
    fault = current_app.extensions["devtenant.faults"].take(request.method, request.path)
    bucket: TokenBucket = current_app.extensions["devtenant.bucket"]
    allowed, g.ratelimit_headers = bucket.take()
    if fault is not None:
        if fault.delay:
            time.sleep(fault.delay)
        if fault.status:
            message = "Global limit has been reached" if fault.status == 429 else "Injected fault"
            code = "too_many_requests" if fault.status == 429 else None
            return jsonify(error_body(fault.status, message, code)), fault.status
    if not allowed:
        return jsonify(error_body(429, "Global limit has been reached", "too_many_requests")), 429
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return jsonify(error_body(401, "Missing authentication")), 401
    try:
        claims = tokens.verify(tenant(), header[7:], audience=tenant().management_audience)
    except tokens.TokenError as error:
        return jsonify({**error_body(401, str(error)), "attributes": {"error": str(error)}}), 401
    g.scopes = set(str(claims.get("scope", "")).split())
    return None


@management.after_request
def _ratelimit_headers_and_log(response: Response) -> Response:
    for name, value in getattr(g, "ratelimit_headers", {}).items():
        response.headers[name] = value
    current_app.extensions["devtenant.requests"].append(
        {
            "method": request.method,
            "path": request.path,
            "query": request.query_string.decode(),
            "status": response.status_code,
            "correlationId": request.headers.get("X-Correlation-ID"),
            # Time spent answering, for benches to tell the emulator's share from the caller's.
            "seconds": round(time.monotonic() - g.started, 4) if "started" in g else None,
        }
    )
    return response


def require_scope(*any_of: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not g.scopes.intersection(any_of):
                raise ManagementError(
                    403,
                    f"Insufficient scope, expected any of: {','.join(any_of)}",
                    "insufficient_scope",
                )
            return view(*args, **kwargs)

        wrapped.__name__ = view.__name__
        return wrapped

    return decorate


def int_arg(name: str, default: int, *, low: int = 0, high: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"\d+", raw) or int(raw) < low or (high is not None and int(raw) > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ManagementError(
            400,
            f'Query validation error: \'Invalid value "{raw}" for {name}; '
            f"expected an integer {bounds}' on property {name}.",
            "invalid_query_string",
        )
    return int(raw)


def include_totals() -> bool:
    return request.args.get("include_totals", "false").lower() == "true"


def offset_page(items: list[Any], key: str) -> Any:
    page = int_arg("page", 0)
    per_page = int_arg("per_page", 50, low=1, high=100)
    start = page * per_page
    chunk = items[start : start + per_page]
    if include_totals():
        return {key: chunk, "start": start, "limit": per_page, "length": len(chunk),
                "total": len(items)}  # fmt: skip
    return chunk


def role_or_404(role_id: str) -> Role:
    role = tenant().data.roles.get(role_id)
    if role is None:
        raise ManagementError(404, "The role does not exist.", "inexistent_role")
    return role


def user_or_404(user_id: str) -> User:
    user = tenant().data.users.get(user_id)
    if user is None:
        raise ManagementError(404, "The user does not exist.", "inexistent_user")
    return user


def id_list(field: str) -> list[str]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or field not in body:
        raise ManagementError(
            400,
            f"Payload validation error: 'Missing required property: {field}'.",
            "invalid_body",
        )
    values = body[field]
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise ManagementError(
            400,
            f"Payload validation error: 'Array is too short (0), minimum 1' on property {field}.",
            "invalid_body",
        )
    return values


def assign_all(pairs: list[tuple[str, str]]) -> None:
    """Give each (user, role) pair, all or none: every id is checked before anything changes."""
    for user_id, role_id in pairs:
        user_or_404(user_id)
        role_or_404(role_id)
    with tenant().change() as data:
        for user_id, role_id in pairs:
            assign(data, user_id=user_id, role_id=role_id)


def member(user: User) -> dict[str, str]:
    return {"user_id": user.user_id, "email": user.email, "name": user.name, "picture": ""}


def encode_checkpoint(seq: int) -> str:
    return base64.urlsafe_b64encode(f"seq:{seq}".encode()).decode().rstrip("=")


def decode_checkpoint(raw: str) -> int:
    try:
        decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        prefix, seq = decoded.split(":", 1)
        if prefix != "seq":
            raise ValueError(prefix)
        return int(seq)
    except ValueError as error:
        raise ManagementError(
            400, "Query validation error: 'Invalid value for from'.", "invalid_query_string"
        ) from error


# --- roles ---------------------------------------------------------------------------------------


@management.get("/roles")
@require_scope("read:roles")
def roles_list() -> Any:
    roles = sorted(tenant().data.roles.values(), key=lambda r: r.name)
    name_filter = request.args.get("name_filter")
    if name_filter:
        roles = [r for r in roles if name_filter.lower() in r.name.lower()]
    return jsonify(offset_page([r.as_auth0() for r in roles], "roles"))


@management.get("/roles/<role_id>/users")
@require_scope("read:users", "read:roles", "read:role_members")
def role_users(role_id: str) -> Any:
    role_or_404(role_id)
    members = sorted(tenant().members_of(role_id), key=lambda pair: pair[0])
    if "from" in request.args or "take" in request.args:
        take = int_arg("take", 50, low=1, high=100)
        after = decode_checkpoint(request.args["from"]) if request.args.get("from") else 0
        remaining = [(seq, user) for seq, user in members if seq > after]
        chunk = remaining[:take]
        body: dict[str, Any] = {"users": [member(user) for _, user in chunk]}
        if len(remaining) > take:
            body["next"] = encode_checkpoint(chunk[-1][0])
        return jsonify(body)
    page = int_arg("page", 0)
    per_page = int_arg("per_page", 50, low=1, high=100)
    if page * per_page + per_page > OFFSET_LIMIT:
        raise ManagementError(
            400,
            f"Requesting page {page} exceeds the allowed maximum of {OFFSET_LIMIT} records. "
            "To fetch results beyond 1000, use the checkpoint pagination method.",
        )
    return jsonify(offset_page([member(user) for _, user in members], "users"))


@management.post("/roles/<role_id>/users")
@require_scope("update:roles", "create:role_members")
def role_users_add(role_id: str) -> Any:
    role_or_404(role_id)
    assign_all([(user_id, role_id) for user_id in id_list("users")])
    return Response(status=200)


# --- users ---------------------------------------------------------------------------------------


@management.get("/users")
@require_scope("read:users")
def users_list() -> Any:
    users = sorted(tenant().data.users.values(), key=lambda u: u.created_at + u.user_id)
    query = request.args.get("q", "")
    wanted = re.fullmatch(r'email:"?([^"]+)"?', query.strip())
    if query and wanted is None:
        raise ManagementError(
            400, 'The devtenant understands only q=email:"…" queries.', "invalid_query"
        )
    if wanted:
        users = [u for u in users if u.email.lower() == wanted.group(1).lower()]
    return jsonify(offset_page([u.as_auth0() for u in users], "users"))


@management.get("/users/<user_id>")
@require_scope("read:users")
def user_detail(user_id: str) -> Any:
    return jsonify(user_or_404(user_id).as_auth0())


@management.get("/users/<user_id>/roles")
@require_scope("read:users", "read:roles", "read:role_members")
def user_roles(user_id: str) -> Any:
    user_or_404(user_id)
    roles = [r.as_auth0() for r in tenant().roles_of(user_id)]
    return jsonify(offset_page(roles, "roles"))


@management.post("/users/<user_id>/roles")
@require_scope("update:users", "create:role_members")
def user_roles_add(user_id: str) -> Any:
    user_or_404(user_id)
    assign_all([(user_id, role_id) for role_id in id_list("roles")])
    return Response(status=204)


@management.delete("/users/<user_id>/roles")
@require_scope("update:users", "delete:role_members")
def user_roles_remove(user_id: str) -> Any:
    user_or_404(user_id)
    role_ids = id_list("roles")
    with tenant().change() as data:
        for role_id in role_ids:
            unassign(data, user_id=user_id, role_id=role_id)
    return Response(status=204)


def install(app: Any) -> None:
    app.extensions["devtenant.faults"] = Faults()
    app.extensions["devtenant.bucket"] = TokenBucket()
    app.extensions["devtenant.requests"] = []
    app.register_blueprint(management)
