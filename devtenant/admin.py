"""`/__admin/…`: seed, reset, inspect and break the devtenant from tests (loopback only)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.security import generate_password_hash

from devtenant.forgery import FORGERIES
from devtenant.limits import Fault
from devtenant.oauth import MANAGEMENT_GRANT
from devtenant.store import (
    Client,
    ResourceServer,
    Tenant,
    add_role,
    add_user,
    assign,
    block,
    delete_user,
)

admin = Blueprint("admin", __name__, url_prefix="/__admin")


def tenant() -> Tenant:
    found: Tenant = current_app.extensions["devtenant"]
    return found


def bad_request(message: str) -> tuple[Response, int]:
    return jsonify({"error": message}), 400


@admin.get("/state")
def state() -> Response:
    data = tenant().data
    return jsonify(
        {
            "users": [u.as_auth0() for u in data.users.values()],
            "roles": [r.as_auth0() for r in data.roles.values()],
            "assignments": [{"user_id": a.user_id, "role_id": a.role_id} for a in data.assignments],
            "clients": sorted(data.clients),
            "kids": [key["kid"] for key in data.keys],
        }
    )


@admin.post("/reset")
def reset() -> Response:
    """Forget users, roles and assignments (clients, APIs and keys stay), faults and limits."""
    with tenant().change() as data:
        data.users.clear()
        data.roles.clear()
        data.assignments.clear()
    current_app.extensions["devtenant.faults"].clear()
    current_app.extensions["devtenant.bucket"].configure(limit=150, per_seconds=60)
    current_app.extensions["devtenant.requests"].clear()
    current_app.extensions["devtenant.server"].sign_ins.clear()
    current_app.extensions["devtenant.forge_next_id_token"].clear()
    return jsonify({"reset": True})


@admin.post("/seed")
def seed() -> Any:
    """Add users, roles, assignments, clients and APIs from one JSON document."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return bad_request("send a JSON object")
    try:
        created = seed_tenant(tenant(), body)
    except (KeyError, TypeError, ValueError) as error:
        return bad_request(f"invalid seed: {error}")
    return jsonify(created)


def seed_tenant(target: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = {"users": {}, "roles": {}}
    # Hashing is slow on purpose; a seed of many users with one password hashes it once.
    hashes: dict[str, str] = {}

    def password_hash(password: str) -> str:
        if password not in hashes:
            hashes[password] = generate_password_hash(password)
        return hashes[password]

    with target.change() as data:
        # Indexes, not scans, for a seed of thousands of users (bench/roles_bench.py).
        users_by_email = {u.email: u for u in data.users.values()}
        held = {(a.user_id, a.role_id) for a in data.assignments}
        for api in body.get("apis", []):
            data.apis[api["identifier"]] = ResourceServer(**api)
        for client in body.get("clients", []):
            client = dict(client)
            grants = client.pop("client_grants", {})
            if "management" in client:
                grants[MANAGEMENT_GRANT] = client.pop("management")
            data.clients[client["client_id"]] = Client(**client, client_grants=grants)
        for role in body.get("roles", []):
            existing = next((r for r in data.roles.values() if r.name == role["name"]), None)
            made = existing or add_role(
                data,
                name=role["name"],
                description=role.get("description", ""),
                role_id=role.get("id"),
                permissions=role.get("permissions"),
            )
            created["roles"][made.name] = made.id
        for user in body.get("users", []):
            wanted = user["email"].lower()
            existing_user = users_by_email.get(wanted)
            person = existing_user or add_user(
                data,
                email=wanted,
                name=user.get("name", wanted),
                password_hash=password_hash(user["password"]),
                user_id=user.get("user_id"),
            )
            users_by_email[person.email] = person
            person.blocked = bool(user.get("blocked", person.blocked))
            person.email_verified = bool(user.get("email_verified", person.email_verified))
            created["users"][person.email] = person.user_id
            for role_name in user.get("roles", []):
                role_id = created["roles"].get(role_name) or next(
                    r.id for r in data.roles.values() if r.name == role_name
                )
                assign(data, user_id=person.user_id, role_id=role_id, held=held)
    return created


@admin.patch("/users/<email>")
def user_change(email: str) -> Any:
    """{"blocked": true}: block the user with this e-mail (false unblocks)."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("blocked"), bool):
        return bad_request('send {"blocked": true} or {"blocked": false}')
    user = tenant().user_by_email(email)
    if user is None:
        return jsonify({"error": f"no user has the e-mail {email}"}), 404
    with tenant().change() as data:
        block(data, user_id=user.user_id, blocked=body["blocked"])
    return jsonify(tenant().data.users[user.user_id].as_auth0())


@admin.delete("/users/<email>")
def user_delete(email: str) -> Any:
    """Delete the user with this e-mail, and their role assignments."""
    user = tenant().user_by_email(email)
    if user is None:
        return jsonify({"error": f"no user has the e-mail {email}"}), 404
    with tenant().change() as data:
        delete_user(data, user_id=user.user_id)
    return jsonify({"deleted": user.user_id})


@admin.post("/faults")
def fault_add() -> Any:
    """{"method": "GET", "path": "/api/v2/roles/*", "status": 429, "delay": 0, "times": 1,
    "after": 0}"""
    body = request.get_json(silent=True) or {}
    try:
        fault = Fault(
            method=str(body.get("method", "*")).upper(),
            path=str(body["path"]),
            status=int(body["status"]) if body.get("status") else None,
            delay=float(body.get("delay", 0)),
            times=int(body["times"]) if body.get("times") else None,
            after=int(body.get("after", 0)),
        )
    except (KeyError, ValueError) as error:
        return bad_request(f"invalid fault: {error}")
    current_app.extensions["devtenant.faults"].add(fault)
    return jsonify({"faults": len(current_app.extensions["devtenant.faults"].listing())})


@admin.delete("/faults")
def faults_clear() -> Response:
    current_app.extensions["devtenant.faults"].clear()
    return jsonify({"faults": 0})


@admin.post("/ratelimit")
def ratelimit() -> Any:
    """{"limit": 10, "per_seconds": 60}: the Management API's token bucket."""
    body = request.get_json(silent=True) or {}
    try:
        limit, per_seconds = int(body["limit"]), float(body.get("per_seconds", 60))
    except (KeyError, ValueError) as error:
        return bad_request(f"invalid limit: {error}")
    current_app.extensions["devtenant.bucket"].configure(limit=limit, per_seconds=per_seconds)
    return jsonify({"limit": limit, "per_seconds": per_seconds})


@admin.get("/requests")
def requests_log() -> Response:
    """Every Management API request so far: method, path, query, status, X-Correlation-ID."""
    return jsonify(current_app.extensions["devtenant.requests"])


@admin.post("/keys/rotate")
def keys_rotate() -> Response:
    return jsonify({"kid": tenant().rotate_key()})


@admin.post("/forge")
def forge_next() -> Any:
    """{"id_token": "expired"}: the next ID token issued is forged that way (see forgery.py)."""
    how = (request.get_json(silent=True) or {}).get("id_token")
    if how not in FORGERIES:
        return bad_request(f"id_token must be one of {', '.join(FORGERIES)}")
    current_app.extensions["devtenant.forge_next_id_token"].append(how)
    return jsonify({"forge": how})


@admin.post("/settings")
def settings() -> Any:
    """{"code_lifetime": seconds}: how long an authorization code may be exchanged."""
    body = request.get_json(silent=True) or {}
    server = current_app.extensions["devtenant.server"]
    if "code_lifetime" in body:
        server.code_lifetime = float(body["code_lifetime"])
    return jsonify({"code_lifetime": server.code_lifetime})


def install(app: Flask) -> None:
    app.register_blueprint(admin)
