"""Signing in and out through a running devtenant, over real HTTP, and every way it can fail."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from django.conf import settings
from django.test import Client

from access.models import RoleMembership
from devtenant.process import free_port
from portal.auth.redirects import safe_next_path
from portal.models import User
from tests.helpers import DevTenant
from tests.portal.auth_helpers import answer_at_tenant, query_of, sign_in, start_sign_in

pytestmark = pytest.mark.django_db


def test_sign_in_sends_the_browser_to_the_issuer_with_pkce_state_and_nonce(
    client: Client, devtenant: DevTenant
) -> None:
    authorize_url = start_sign_in(client)

    assert authorize_url.startswith(devtenant.issuer + "authorize?")
    params = query_of(authorize_url)
    assert params["client_id"] == settings.AUTH0_CLIENT_ID
    assert params["redirect_uri"] == settings.PORTAL_BASE_URL + "/auth/callback/"
    assert params["response_type"] == "code"
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) >= 43
    assert params["state"] and params["nonce"]
    assert set(params["scope"].split()) == {"openid", "profile", "email"}


def test_a_person_signs_in_and_comes_back_where_they_were(
    client: Client, devtenant: DevTenant
) -> None:
    attempt = sign_in(client, "grace@example.com", next_path="/admin/?page=2")

    assert attempt.response is not None
    assert attempt.response.status_code == 302
    assert attempt.response["Location"] == "/admin/?page=2"
    grace = User.objects.get(email="grace@example.com")
    assert grace.sub.startswith("auth0|")
    assert grace.name == "Grace Hopper"
    assert not grace.has_usable_password()
    roles = {m.role.name: m.source for m in RoleMembership.objects.filter(user=grace)}
    assert roles == {"engineer": "sign_in", "payments.admin": "sign_in"}
    home = client.get("/").content.decode()
    assert "Grace Hopper" in home
    assert "payments.admin" in home


def test_the_person_is_keyed_by_sub_and_their_details_follow_auth0(
    client: Client, devtenant: DevTenant
) -> None:
    sign_in(client, "ada@example.com")
    sub = User.objects.get(email="ada@example.com").sub
    client.logout()
    devtenant.admin(
        "seed",
        {
            "users": [{"email": "ada@example.com", "password": "x", "roles": ["payments.viewer"]}],
        },
    )

    sign_in(client, "ada@example.com")

    ada = User.objects.get(sub=sub)
    assert User.objects.filter(email="ada@example.com").count() == 1
    held = set(ada.role_memberships.values_list("role__name", flat=True))
    assert held == {"engineer", "checkout.viewer", "payments.viewer"}


def test_only_an_email_auth0_verified_gives_a_catalog_identity(
    client: Client, devtenant: DevTenant
) -> None:
    sign_in(client, "ada@example.com")
    verified = User.objects.get(email="ada@example.com").email_verified
    client.logout()
    devtenant.admin(
        "seed", {"users": [{"email": "ada@example.com", "password": "x", "email_verified": False}]}
    )

    sign_in(client, "ada@example.com")
    page = client.get("/access/").content.decode()

    assert verified is True
    assert User.objects.get(email="ada@example.com").email_verified is False
    assert "Auth0 has not verified your e-mail address" in page


def test_roles_no_longer_in_the_token_are_dropped(client: Client, devtenant: DevTenant) -> None:
    sign_in(client, "ada@example.com")
    ada = User.objects.get(email="ada@example.com")
    tenant_state = requests.get(devtenant.url("__admin/state"), timeout=5).json()
    checkout = next(r["id"] for r in tenant_state["roles"] if r["name"] == "checkout.viewer")
    # An admin takes the role away in Auth0, through the Management API.
    management = devtenant.token(
        grant_type="client_credentials",
        client_id=settings.AUTH0_CLIENT_ID,
        client_secret=settings.AUTH0_CLIENT_SECRET,
        audience=devtenant.issuer + "api/v2/",
    )
    requests.delete(
        devtenant.url(f"api/v2/users/{ada.sub}/roles"),
        json={"roles": [checkout]},
        headers={"Authorization": f"Bearer {management}"},
        timeout=5,
    ).raise_for_status()
    client.logout()

    sign_in(client, "ada@example.com")

    assert set(ada.role_memberships.values_list("role__name", flat=True)) == {"engineer"}


def test_the_session_key_changes_at_sign_in(client: Client, devtenant: DevTenant) -> None:
    authorize_url = start_sign_in(client)
    before = client.cookies["sessionid"].value
    attempt = answer_at_tenant(authorize_url, "ada@example.com")

    response = client.get(attempt.callback_path)

    assert response.status_code == 302
    after = client.cookies["sessionid"]
    assert after.value != before
    assert after["httponly"] is True
    assert after["samesite"] == "Lax"


def test_a_replayed_callback_is_refused_with_a_clear_page(
    client: Client, devtenant: DevTenant
) -> None:
    attempt = sign_in(client, "ada@example.com")
    client.logout()

    replay = client.get(attempt.callback_path)

    assert replay.status_code == 400
    page = replay.content.decode()
    assert "This sign-in link has already been used" in page
    assert "Try signing in again" in page
    assert "_auth_user_id" not in client.session


def test_a_wrong_state_is_refused(client: Client, devtenant: DevTenant) -> None:
    attempt = answer_at_tenant(start_sign_in(client), "ada@example.com")
    forged = attempt.callback_path.replace("state=", "state=x")

    response = client.get(forged)

    assert response.status_code == 400
    assert "already been used" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_callback_without_a_sign_in_started_here_is_refused(
    client: Client, devtenant: DevTenant
) -> None:
    attempt = answer_at_tenant(start_sign_in(Client()), "ada@example.com")

    response = client.get(attempt.callback_path)

    assert response.status_code == 400
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    "forgery", ["tampered", "expired", "wrong_aud", "wrong_iss", "wrong_nonce", "alg_none", "hs256"]
)
def test_a_forged_id_token_is_refused(client: Client, devtenant: DevTenant, forgery: str) -> None:
    devtenant.admin("forge", {"id_token": forgery})

    attempt = sign_in(client, "ada@example.com")

    assert attempt.response is not None
    assert attempt.response.status_code == 400
    assert "could not be verified" in attempt.response.content.decode()
    assert "_auth_user_id" not in client.session
    assert not User.objects.filter(email="ada@example.com").exists()


@pytest.mark.parametrize(
    ("error", "status", "title"),
    [
        ("access_denied", 403, "Sign-in was cancelled"),
        ("unauthorized", 403, "Your account is blocked"),
        ("login_required", 400, "Please sign in again"),
        ("server_error", 400, "Sign-in failed"),
    ],
)
def test_errors_auth0_sends_back_get_a_page_that_offers_to_try_again(
    client: Client, devtenant: DevTenant, error: str, status: int, title: str
) -> None:
    start_sign_in(client, "/admin/")

    response = client.get(f"/auth/callback/?error={error}&error_description=x&state=s")

    assert response.status_code == status
    page = response.content.decode()
    assert title in page
    assert 'href="/auth/login/?next=%2Fadmin%2F"' in page


def test_a_blocked_person_sees_that_they_are_blocked(client: Client, devtenant: DevTenant) -> None:
    devtenant.admin(
        "seed", {"users": [{"email": "ada@example.com", "password": "x", "blocked": True}]}
    )
    authorize_url = start_sign_in(client)
    browser = requests.Session()
    browser.get(authorize_url, timeout=5)
    answer = browser.post(
        authorize_url,
        data={"email": "ada@example.com", "password": "atrium-demo", "action": "login"},
        allow_redirects=False,
        timeout=5,
    )
    callback = answer.headers["Location"].split("/auth/callback/", 1)[1]

    response = client.get("/auth/callback/" + callback)

    assert response.status_code == 403
    assert "Your account is blocked" in response.content.decode()


def test_an_unreachable_issuer_is_a_clear_503(client: Client, settings: Any) -> None:
    settings.AUTH0_ISSUER = f"http://127.0.0.1:{free_port()}/"

    response = client.get("/auth/login/?next=/admin/")

    assert response.status_code == 503
    assert "Auth0 could not be reached" in response.content.decode()


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "http:/evil.example",
        "/\r\nLocation: https://evil.example",
        "javascript:alert(1)",
    ],
)
def test_next_never_leaves_the_site(target: str) -> None:
    assert safe_next_path(target) == "/"


def test_an_open_redirect_attempt_lands_on_the_home_page(
    client: Client, devtenant: DevTenant
) -> None:
    attempt = sign_in(client, "ada@example.com", next_path="//evil.example/")

    assert attempt.response is not None
    assert attempt.response["Location"] == "/"


def test_pages_need_a_signed_in_person_and_come_back_after(client: Client, settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.portal.urls_with_sections"

    response = client.get("/catalog/?kind=api")

    assert response.status_code == 302
    assert response["Location"] == "/auth/login/?next=/catalog/%3Fkind%3Dapi"
    assert client.get("/").status_code == 200
    assert client.get("/healthz").status_code == 200


def test_the_admin_site_signs_people_in_through_auth0(client: Client) -> None:
    admin_login = client.get("/admin/")["Location"]

    assert client.get(admin_login)["Location"] == "/auth/login/?next=%2Fadmin%2F"


def test_sign_out_ends_the_session_here_and_at_the_tenant(
    client: Client, devtenant: DevTenant
) -> None:
    attempt = sign_in(client, "ada@example.com")

    response = client.post("/auth/logout/")

    assert response.status_code == 302
    assert response["Location"].startswith(devtenant.issuer + "oidc/logout?")
    params = query_of(response["Location"])
    assert params["post_logout_redirect_uri"] == settings.PORTAL_BASE_URL + "/"
    assert params["client_id"] == settings.AUTH0_CLIENT_ID
    assert params["id_token_hint"].count(".") == 2
    assert "_auth_user_id" not in client.session
    back = attempt.tenant_browser.get(response["Location"], allow_redirects=False, timeout=5)
    assert back.status_code == 302
    assert back.headers["Location"] == settings.PORTAL_BASE_URL + "/"
    again = attempt.tenant_browser.get(start_sign_in(client), timeout=5)
    assert "Log in to Atrium" in again.text, "the tenant session should have ended"


def test_sign_out_uses_auth0s_v2_logout_when_discovery_has_no_end_session(
    client: Client, devtenant: DevTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    sign_in(client, "ada@example.com")
    from portal.auth.oidc import oidc_client

    metadata = dict(oidc_client().load_server_metadata())
    metadata.pop("end_session_endpoint")
    monkeypatch.setattr(type(oidc_client()), "load_server_metadata", lambda self: metadata)

    response = client.post("/auth/logout/")

    assert response["Location"].startswith(devtenant.issuer + "v2/logout?")
    assert query_of(response["Location"]) == {
        "client_id": settings.AUTH0_CLIENT_ID,
        "returnTo": settings.PORTAL_BASE_URL + "/",
    }


def test_sign_out_needs_a_post_with_csrf(devtenant: DevTenant) -> None:
    client = Client(enforce_csrf_checks=True)
    sign_in(client, "ada@example.com")

    forged = client.post("/auth/logout/")

    assert forged.status_code == 403
    assert "_auth_user_id" in client.session


def test_a_rotated_signing_key_is_accepted_without_a_restart(
    client: Client, devtenant: DevTenant
) -> None:
    sign_in(client, "ada@example.com")
    client.logout()
    devtenant.admin("keys/rotate")

    attempt = sign_in(client, "ada@example.com")

    assert attempt.response is not None
    assert attempt.response.status_code == 302
    assert "_auth_user_id" in client.session
