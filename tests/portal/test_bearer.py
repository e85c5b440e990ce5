"""API bearer tokens from the devtenant: machines and people accepted, forgeries refused."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from devtenant.demo import (
    AUTOMATION_CLIENT_ID,
    AUTOMATION_CLIENT_SECRET,
    PORTAL_AUDIENCE,
)
from portal.auth.bearer import Principal
from tests.helpers import DevTenant
from tests.portal.auth_helpers import machine_token, person_token, sign_in

pytestmark = pytest.mark.django_db


def forged_token(devtenant: DevTenant, token: str, how: str) -> str:
    """The devtenant forges on request: the same code that forges ID tokens for sign-in tests."""
    from devtenant.forgery import forge
    from devtenant.store import Tenant

    tenant = Tenant(devtenant.state_path, devtenant.issuer)
    return forge(tenant, token, how)


def me(client: Client, token: str) -> Any:
    return client.get("/api/access/me", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_a_machine_client_is_answered_as_client(client: Client, devtenant: DevTenant) -> None:
    response = me(client, machine_token(devtenant))

    assert response.status_code == 200, response.content
    assert response.json() == {
        "sub": f"{AUTOMATION_CLIENT_ID}@clients",
        "name": "",
        "email": "",
        "via": "bearer",
        "clientId": AUTOMATION_CLIENT_ID,
        "scopes": ["read:access", "read:audit", "read:catalog"],
        "roles": [],
    }


def test_a_signed_in_person_is_answered_from_the_session(
    client: Client, devtenant: DevTenant
) -> None:
    sign_in(client, "linus@example.com")

    body = client.get("/api/access/me").json()

    assert body["via"] == "session"
    assert body["sub"].startswith("auth0|")
    assert body["email"] == "linus@example.com"
    assert body["clientId"] is None
    assert {role["name"] for role in body["roles"]} == {"engineer", "portal-admin"}
    assert body["roles"][0] == {"name": "engineer", "source": "sign_in", "expiresAt": None}


def test_no_credentials_is_401(client: Client) -> None:
    response = client.get("/api/access/me")

    assert response.status_code == 401
    assert response.json()["error"]["name"] == "AuthenticationError"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("forgery", "reason"),
    [
        ("tampered", "signature does not verify"),
        ("expired", "expired"),
        ("wrong_aud", "aud"),
        ("wrong_iss", "iss"),
        ("alg_none", "only RS256"),
        ("hs256", "only RS256"),
    ],
)
def test_forged_tokens_are_refused_without_echoing_them(
    client: Client, devtenant: DevTenant, forgery: str, reason: str
) -> None:
    token = forged_token(devtenant, machine_token(devtenant), forgery)

    response = me(client, token)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    body = response.json()
    assert body["error"]["name"] == "AuthenticationError"
    assert reason in body["error"]["message"]
    assert token not in response.content.decode()


def test_a_token_for_another_api_is_refused(client: Client, devtenant: DevTenant) -> None:
    devtenant.admin(
        "seed",
        {
            "apis": [{"identifier": "https://other.example/api", "name": "Other"}],
            "clients": [
                {
                    "client_id": AUTOMATION_CLIENT_ID,
                    "client_secret": AUTOMATION_CLIENT_SECRET,
                    "name": "Atrium automation",
                    "app_type": "non_interactive",
                    "grant_types": ["client_credentials"],
                    "client_grants": {"https://other.example/api": ["read:access"]},
                }
            ],
        },
    )

    response = me(client, machine_token(devtenant, "https://other.example/api"))

    assert response.status_code == 401
    assert "aud" in response.json()["error"]["message"]


def test_a_token_without_the_scope_is_403_insufficient_scope(
    client: Client, devtenant: DevTenant
) -> None:
    response = me(client, machine_token(devtenant, scope="read:catalog"))

    assert response.status_code == 403
    assert response["WWW-Authenticate"].startswith('Bearer error="insufficient_scope"')
    assert "read:access" in response.json()["error"]["message"]


def test_a_malformed_authorization_header_is_401(client: Client) -> None:
    for header in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer not-a-jwt"):
        response = client.get("/api/access/me", HTTP_AUTHORIZATION=header)
        assert response.status_code == 401, header


def test_a_bearer_token_wins_over_a_session(client: Client, devtenant: DevTenant) -> None:
    sign_in(client, "linus@example.com")

    response = me(client, forged_token(devtenant, machine_token(devtenant), "expired"))

    assert response.status_code == 401


def test_a_rotated_signing_key_is_accepted_without_a_restart(
    client: Client, devtenant: DevTenant
) -> None:
    assert me(client, machine_token(devtenant)).status_code == 200
    devtenant.admin("keys/rotate")

    response = me(client, machine_token(devtenant))

    assert response.status_code == 200


def test_an_unknown_key_id_does_not_make_the_portal_hammer_the_issuer(
    client: Client, devtenant: DevTenant
) -> None:
    assert me(client, machine_token(devtenant)).status_code == 200
    devtenant.admin("keys/rotate")
    assert me(client, machine_token(devtenant)).status_code == 200
    devtenant.admin("keys/rotate")

    # The keys were fetched again moments ago: within the cool-down the new key is unknown.
    response = me(client, machine_token(devtenant))

    assert response.status_code == 401
    assert "signature" in response.json()["error"]["message"]


# SPEC's "URLs": every operation of the API, as (method, path).
SPEC_OPERATIONS = {
    ("get", "/api/catalog/entities"),
    ("get", "/api/catalog/entities/by-name/{kind}/{namespace}/{name}"),
    ("get", "/api/catalog/entities/by-query"),
    ("post", "/api/catalog/entities/by-query"),
    ("post", "/api/catalog/entities/by-refs"),
    ("get", "/api/catalog/entity-facets"),
    ("post", "/api/catalog/validate-entity"),
    ("get", "/api/catalog/locations"),
    ("post", "/api/catalog/locations"),
    ("delete", "/api/catalog/locations/{id}"),
    ("post", "/api/catalog/refresh"),
    ("get", "/api/access/roles"),
    ("get", "/api/access/roles/{name}"),
    ("put", "/api/access/roles/{name}"),
    ("get", "/api/access/roles/{name}/members"),
    ("get", "/api/access/me"),
    ("get", "/api/access/requests"),
    ("post", "/api/access/requests"),
    ("get", "/api/access/requests/{id}"),
    ("post", "/api/access/requests/{id}/approve"),
    ("post", "/api/access/requests/{id}/deny"),
    ("post", "/api/access/requests/{id}/cancel"),
    ("get", "/api/access/grants"),
    ("get", "/api/audit/events"),
}


def test_the_openapi_document_describes_every_operation_spec_lists(client: Client) -> None:
    response = client.get("/api/openapi.json")

    assert response.status_code == 200
    document = response.json()
    # Parameter names are the code's ({request_id}); SPEC calls an id {id}.
    described = {
        (method, re.sub(r"\{\w+_id\}", "{id}", path))
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert SPEC_OPERATIONS - described == set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary") or operation.get("description"), (method, path)


def test_a_persons_access_token_is_answered_as_that_person(
    client: Client, devtenant: DevTenant
) -> None:
    sign_in(Client(), "grace@example.com")  # the mirror knows her roles from a sign-in

    response = me(client, person_token(devtenant, "grace@example.com"))

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["via"] == "bearer"
    assert body["clientId"] is None
    assert body["email"] == "grace@example.com"
    assert body["scopes"] == ["openid", "read:access"]
    assert {role["name"] for role in body["roles"]} == {"engineer", "payments.admin"}


def test_a_person_whose_id_ends_in_at_clients_is_a_person_not_a_machine(
    client: Client, devtenant: DevTenant
) -> None:
    """A custom-database connection may make a person's id of their e-mail, `auth0|eve@clients`:
    what makes a machine is Auth0's client-credentials grant, not how a `sub` ends."""
    import time

    from devtenant import tokens
    from devtenant.store import Tenant

    now = int(time.time())
    token = tokens.sign(Tenant(devtenant.state_path, devtenant.issuer), {
        "iss": devtenant.issuer, "aud": PORTAL_AUDIENCE, "sub": "auth0|eve@clients",
        "iat": now, "exp": now + 600, "azp": "atrium-demo-cli",
        "scope": "read:access read:audit",  # what an API without RBAC grants whoever asks
    })  # fmt: skip

    body = me(client, token).json()
    audit = client.get("/api/audit/events", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert (body["sub"], body["clientId"]) == ("auth0|eve@clients", None)
    assert audit.status_code == 403  # the audit log is for admins and machines


def test_the_audit_actor_names_machines_as_clients() -> None:
    machine = Principal(sub="automation@clients", via="bearer", client_id="automation")
    person = Principal(sub="auth0|abc", via="bearer")

    assert machine.actor == "client:automation"
    assert person.actor == "auth0|abc"


def test_a_token_verified_once_is_still_checked_at_every_use(
    client: Client, devtenant: DevTenant, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import joserfc._rfc7519.claims as joserfc_claims
    from joserfc import jwt

    token = machine_token(devtenant)
    assert me(client, token).status_code == 200

    def no_second_verification(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the signature was verified again")

    # Kept: the signature is not verified a second time in this process...
    monkeypatch.setattr(jwt, "decode", no_second_verification)
    assert me(client, token).status_code == 200

    # ...but its expiry is read against the clock at each use,
    later = joserfc_claims._generate_now() + 2 * 24 * 3600
    with monkeypatch.context() as clock:
        clock.setattr(joserfc_claims, "_generate_now", lambda: later)
        expired = me(client, token)
    assert expired.status_code == 401
    assert "expired" in expired["WWW-Authenticate"]

    # ...and its audience against the settings then.
    settings.AUTH0_AUDIENCE = "https://another-api.example.com"
    elsewhere = me(client, token)
    assert elsewhere.status_code == 401
    assert "aud" in elsewhere["WWW-Authenticate"]
