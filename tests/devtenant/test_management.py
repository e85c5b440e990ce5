"""The devtenant's Management API answers, pages, limits and fails like Auth0's."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from devtenant.demo import PORTAL_AUDIENCE
from tests.devtenant.conftest import client_credentials, management_token


@pytest.fixture
def api(browser: FlaskClient) -> FlaskClient:
    token = management_token(browser)
    browser.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return browser


def role_id(api: FlaskClient, name: str) -> str:
    roles = api.get("/api/v2/roles", query_string={"name_filter": name}).get_json()
    return str(next(role["id"] for role in roles if role["name"] == name))


def user_id(api: FlaskClient, email: str) -> str:
    users = api.get("/api/v2/users", query_string={"q": f'email:"{email}"'}).get_json()
    return str(users[0]["user_id"])


def seed_members(api: FlaskClient, role: str, count: int) -> None:
    api.post(
        "/__admin/seed",
        json={
            "roles": [{"name": role}],
            "users": [
                {"email": f"member{i:04}@example.com", "password": "x", "roles": [role]}
                for i in range(count)
            ],
        },
    )


def test_missing_token_is_401_in_auth0s_shape(browser: FlaskClient) -> None:
    response = browser.get("/api/v2/roles")

    assert response.status_code == 401
    assert response.get_json() == {
        "statusCode": 401,
        "error": "Unauthorized",
        "message": "Missing authentication",
    }


def test_a_token_for_another_audience_is_refused(browser: FlaskClient) -> None:
    token = client_credentials(browser, PORTAL_AUDIENCE).get_json()["access_token"]

    response = browser.get("/api/v2/roles", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.get_json()["message"] == "Invalid token"


def test_a_token_without_the_scope_is_403(browser: FlaskClient) -> None:
    token = management_token(browser, scope="read:users")

    response = browser.get("/api/v2/roles", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 403
    assert response.get_json() == {
        "statusCode": 403,
        "error": "Forbidden",
        "message": "Insufficient scope, expected any of: read:roles",
        "errorCode": "insufficient_scope",
    }


def test_roles_list_pages_with_totals(api: FlaskClient) -> None:
    plain = api.get("/api/v2/roles").get_json()
    assert {role["name"] for role in plain} >= {"portal-admin", "payments.viewer"}
    assert set(plain[0]) == {"id", "name", "description"}
    assert plain[0]["id"].startswith("rol_")

    paged = api.get("/api/v2/roles?page=1&per_page=2&include_totals=true").get_json()

    assert paged["start"] == 2
    assert paged["limit"] == 2
    assert paged["total"] == len(plain)
    assert paged["roles"] == plain[2:4]


def test_offset_paging_of_role_members_stops_at_1000_records_as_auth0s_does(
    api: FlaskClient,
) -> None:
    admin = role_id(api, "portal-admin")

    allowed = api.get(f"/api/v2/roles/{admin}/users?page=9&per_page=100")
    refused = api.get(f"/api/v2/roles/{admin}/users?page=10&per_page=100")

    assert allowed.status_code == 200
    assert refused.status_code == 400
    assert refused.get_json()["message"] == (
        "Requesting page 10 exceeds the allowed maximum of 1000 records. "
        "To fetch results beyond 1000, use the checkpoint pagination method."
    )


def test_checkpoint_paging_walks_every_member(api: FlaskClient) -> None:
    seed_members(api, "big.role", 230)
    role = role_id(api, "big.role")
    seen: list[str] = []
    pages = 0
    params: dict[str, Any] = {"take": 100}

    while True:
        body = api.get(f"/api/v2/roles/{role}/users", query_string=params).get_json()
        pages += 1
        seen += [user["email"] for user in body["users"]]
        if "next" not in body:
            break
        params = {"take": 100, "from": body["next"]}

    assert pages == 3
    assert len(seen) == len(set(seen)) == 230
    assert set(body["users"][0]) == {"user_id", "email", "name", "picture"}


def test_a_bad_checkpoint_is_400(api: FlaskClient) -> None:
    role = role_id(api, "portal-admin")

    response = api.get(f"/api/v2/roles/{role}/users?take=10&from=garbage")

    assert response.status_code == 400


def test_roles_are_granted_and_removed_per_user(api: FlaskClient) -> None:
    ada = user_id(api, "ada@example.com")
    viewer = role_id(api, "payments.viewer")

    added = api.post(
        f"/api/v2/users/{ada}/roles", json={"roles": [viewer]}, headers={"X-Correlation-ID": "g-1"}
    )
    assert added.status_code == 204
    names = {role["name"] for role in api.get(f"/api/v2/users/{ada}/roles").get_json()}
    assert "payments.viewer" in names
    members = api.get(f"/api/v2/roles/{viewer}/users").get_json()
    assert [member["email"] for member in members] == ["ada@example.com"]

    removed = api.delete(f"/api/v2/users/{ada}/roles", json={"roles": [viewer]})
    assert removed.status_code == 204
    names = {role["name"] for role in api.get(f"/api/v2/users/{ada}/roles").get_json()}
    assert "payments.viewer" not in names
    log = api.get("/__admin/requests").get_json()
    assert {"method": "POST", "correlationId": "g-1"}.items() <= next(
        entry for entry in log if entry["method"] == "POST"
    ).items()


def test_members_are_added_per_role(api: FlaskClient) -> None:
    grace = user_id(api, "grace@example.com")
    viewer = role_id(api, "payments.viewer")

    response = api.post(f"/api/v2/roles/{viewer}/users", json={"users": [grace]})

    assert response.status_code == 200
    assert [m["user_id"] for m in api.get(f"/api/v2/roles/{viewer}/users").get_json()] == [grace]


def test_unknown_ids_and_bad_bodies_are_refused(api: FlaskClient) -> None:
    ada = user_id(api, "ada@example.com")

    unknown_role = api.post(f"/api/v2/users/{ada}/roles", json={"roles": ["rol_nope"]})
    unknown_user = api.get("/api/v2/users/auth0|nobody/roles")
    no_body = api.post(f"/api/v2/users/{ada}/roles", json={})

    assert unknown_role.status_code == 404
    assert unknown_role.get_json()["errorCode"] == "inexistent_role"
    assert unknown_user.status_code == 404
    assert unknown_user.get_json()["message"] == "The user does not exist."
    assert no_body.status_code == 400
    assert no_body.get_json()["errorCode"] == "invalid_body"


def test_users_are_shown_as_auth0_shows_them(api: FlaskClient) -> None:
    users = api.get("/api/v2/users?include_totals=true").get_json()
    assert users["total"] == 3
    ada = next(u for u in users["users"] if u["email"] == "ada@example.com")

    detail = api.get(f"/api/v2/users/{ada['user_id']}").get_json()

    assert detail["user_id"].startswith("auth0|")
    assert detail["identities"][0]["provider"] == "auth0"
    assert detail["email_verified"] is True
    assert "password_hash" not in detail


def test_every_answer_carries_rate_limit_headers(api: FlaskClient) -> None:
    response = api.get("/api/v2/roles")

    assert response.headers["x-ratelimit-limit"] == "150"
    assert int(response.headers["x-ratelimit-remaining"]) == 149
    assert int(response.headers["x-ratelimit-reset"]) > 0


def test_an_exhausted_bucket_answers_429_until_it_refills(api: FlaskClient) -> None:
    api.post("/__admin/ratelimit", json={"limit": 2, "per_seconds": 60})

    statuses = [api.get("/api/v2/roles").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    limited = api.get("/api/v2/roles")
    assert limited.get_json()["errorCode"] == "too_many_requests"
    assert limited.headers["x-ratelimit-remaining"] == "0"


def test_injected_faults_answer_once_then_clear(api: FlaskClient) -> None:
    api.post(
        "/__admin/faults",
        json={"method": "GET", "path": "/api/v2/roles/*/users", "status": 503, "times": 1},
    )
    role = role_id(api, "portal-admin")

    first = api.get(f"/api/v2/roles/{role}/users")
    second = api.get(f"/api/v2/roles/{role}/users")

    assert first.status_code == 503
    assert first.get_json()["statusCode"] == 503
    assert second.status_code == 200
