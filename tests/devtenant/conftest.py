"""A devtenant seeded with the demo tenant, driven in-process through Flask's test client."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import KeySet

from devtenant.admin import seed_tenant
from devtenant.app import create_app
from devtenant.demo import (
    AUTOMATION_CLIENT_ID,
    AUTOMATION_CLIENT_SECRET,
    DEMO_PASSWORD,
    PORTAL_AUDIENCE,
    PORTAL_CLIENT_ID,
    PORTAL_CLIENT_SECRET,
    demo_tenant,
)
from tests.helpers import pkce_pair

ISSUER = "http://127.0.0.1:8400/"
PORTAL = "http://127.0.0.1:8000"
CALLBACK = f"{PORTAL}/auth/callback/"


@pytest.fixture
def tenant_app(tmp_path: Path) -> Flask:
    app = create_app(state_path=tmp_path / "devtenant.json", issuer=ISSUER)
    seed_tenant(app.extensions["devtenant"], demo_tenant(portal_base_url=PORTAL))
    app.testing = True
    return app


@pytest.fixture
def browser(tenant_app: Flask) -> FlaskClient:
    """A client with a cookie jar, as a person's browser at the tenant."""
    return tenant_app.test_client()


@dataclass
class Authorization:
    verifier: str
    challenge: str
    state: str
    nonce: str

    def query(self, **extra: str) -> str:
        params = {
            "response_type": "code",
            "client_id": PORTAL_CLIENT_ID,
            "redirect_uri": CALLBACK,
            "scope": "openid profile email",
            "audience": PORTAL_AUDIENCE,
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        }
        params.update(extra)
        return urlencode(params)


def new_authorization() -> Authorization:
    """What a relying party makes afresh for each sign-in: verifier, state and nonce."""
    verifier, challenge = pkce_pair()
    return Authorization(verifier, challenge, secrets.token_urlsafe(12), secrets.token_urlsafe(12))


@pytest.fixture
def authorization() -> Authorization:
    return new_authorization()


def sign_in(
    browser: FlaskClient, authorization: Authorization, email: str, password: str = DEMO_PASSWORD
) -> Any:
    return browser.post(
        f"/authorize?{authorization.query()}",
        data={"email": email, "password": password, "action": "login"},
    )


def redirect_params(response: Any) -> dict[str, str]:
    assert response.status_code == 302, response.get_data(as_text=True)
    location = urlsplit(response.headers["Location"])
    return {key: values[0] for key, values in parse_qs(location.query).items()}


def exchange(browser: FlaskClient, code: str, verifier: str, **extra: str) -> Any:
    form = {
        "grant_type": "authorization_code",
        "client_id": PORTAL_CLIENT_ID,
        "client_secret": PORTAL_CLIENT_SECRET,
        "code": code,
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
    }
    form.update(extra)
    return browser.post("/oauth/token", data=form)


def claims_of(tenant_app: Flask, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(tenant_app.test_client().get("/.well-known/jwks.json").get_json())
    return dict(jwt.decode(token, keys, algorithms=["RS256"]).claims)


def client_credentials(
    browser: FlaskClient,
    audience: str,
    client_id: str = AUTOMATION_CLIENT_ID,
    secret: str = AUTOMATION_CLIENT_SECRET,
    **extra: str,
) -> Any:
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "audience": audience,
        **extra,
    }
    return browser.post("/oauth/token", data=form)


def management_token(browser: FlaskClient, scope: str | None = None) -> str:
    extra = {"scope": scope} if scope else {}
    response = client_credentials(
        browser, ISSUER + "api/v2/", PORTAL_CLIENT_ID, PORTAL_CLIENT_SECRET, **extra
    )
    assert response.status_code == 200, response.get_json()
    token: str = response.get_json()["access_token"]
    return token
