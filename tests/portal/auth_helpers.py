"""Signing in through a running devtenant, as a browser would, from Django's test client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from django.conf import settings
from django.test import Client

from devtenant.demo import (
    AUTOMATION_CLIENT_ID,
    AUTOMATION_CLIENT_SECRET,
    DEMO_PASSWORD,
    PORTAL_AUDIENCE,
)
from tests.helpers import DevTenant, pkce_pair


@dataclass
class SignInAttempt:
    callback_path: str  # the portal's callback as Auth0 sent the browser to it
    tenant_browser: requests.Session  # the browser's cookies at the tenant
    response: Any = None  # the test client's response to the callback


def start_sign_in(client: Client, next_path: str = "/") -> str:
    """The authorization URL the portal sends the browser to."""
    start = client.get("/auth/login/?" + urlencode({"next": next_path}))
    assert start.status_code == 302, start.content
    location: str = start["Location"]
    return location


def answer_at_tenant(
    authorize_url: str,
    email: str,
    password: str = DEMO_PASSWORD,
    tenant_browser: requests.Session | None = None,
) -> SignInAttempt:
    browser = tenant_browser or requests.Session()
    assert browser.get(authorize_url, timeout=10).status_code == 200
    answer = browser.post(
        authorize_url,
        data={"email": email, "password": password, "action": "login"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text
    callback = urlsplit(answer.headers["Location"])
    return SignInAttempt(callback_path=f"{callback.path}?{callback.query}", tenant_browser=browser)


def sign_in(client: Client, email: str, next_path: str = "/") -> SignInAttempt:
    attempt = answer_at_tenant(start_sign_in(client, next_path), email)
    attempt.response = client.get(attempt.callback_path)
    return attempt


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def machine_token(devtenant: DevTenant, audience: str = PORTAL_AUDIENCE, **extra: str) -> str:
    """An access token of the demo's automation client (client credentials)."""
    return devtenant.token(
        grant_type="client_credentials",
        client_id=AUTOMATION_CLIENT_ID,
        client_secret=AUTOMATION_CLIENT_SECRET,
        audience=audience,
        **extra,
    )


def client_token(devtenant: DevTenant, scopes: list[str], client_id: str = "test-client") -> str:
    """An access token of a machine client the devtenant is told to grant exactly these scopes."""
    secret = f"{client_id}-secret"
    devtenant.admin("seed", {"clients": [{
        "client_id": client_id, "client_secret": secret, "name": client_id,
        "app_type": "non_interactive", "grant_types": ["client_credentials"],
        "client_grants": {PORTAL_AUDIENCE: scopes},
    }]})  # fmt: skip
    return devtenant.token(
        grant_type="client_credentials", client_id=client_id, client_secret=secret,
        audience=PORTAL_AUDIENCE,
    )  # fmt: skip


def person_token(devtenant: DevTenant, email: str, scope: str = "openid read:access") -> str:
    """An access token for the portal's API, as a person's own tool would get one."""
    verifier, challenge = pkce_pair()
    callback = settings.PORTAL_BASE_URL + "/auth/callback/"
    authorize = devtenant.url("authorize?") + urlencode(
        {
            "response_type": "code",
            "client_id": settings.AUTH0_CLIENT_ID,
            "redirect_uri": callback,
            "scope": scope,
            "audience": PORTAL_AUDIENCE,
            "state": "s",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    attempt = answer_at_tenant(authorize, email)
    code = query_of(attempt.callback_path)["code"]
    return devtenant.token(
        grant_type="authorization_code",
        client_id=settings.AUTH0_CLIENT_ID,
        client_secret=settings.AUTH0_CLIENT_SECRET,
        code=code,
        redirect_uri=callback,
        code_verifier=verifier,
    )
