"""The devtenant signs people in and issues tokens the way an Auth0 tenant does."""

from __future__ import annotations

import time
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from devtenant.app import create_app
from devtenant.demo import AUTOMATION_CLIENT_ID, PORTAL_AUDIENCE, PORTAL_CLIENT_ID
from tests.devtenant.conftest import (
    CALLBACK,
    ISSUER,
    PORTAL,
    Authorization,
    claims_of,
    client_credentials,
    exchange,
    new_authorization,
    redirect_params,
    sign_in,
)


def test_discovery_names_every_endpoint_under_the_issuer(browser: FlaskClient) -> None:
    config = browser.get("/.well-known/openid-configuration").get_json()

    assert config["issuer"] == ISSUER
    assert config["authorization_endpoint"] == ISSUER + "authorize"
    assert config["token_endpoint"] == ISSUER + "oauth/token"
    assert config["userinfo_endpoint"] == ISSUER + "userinfo"
    assert config["jwks_uri"] == ISSUER + ".well-known/jwks.json"
    assert config["end_session_endpoint"] == ISSUER + "oidc/logout"
    assert config["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "S256" in config["code_challenge_methods_supported"]


def test_sign_in_page_says_when_the_password_is_wrong(
    browser: FlaskClient, authorization: Authorization
) -> None:
    page = browser.get(f"/authorize?{authorization.query()}")
    assert page.status_code == 200
    assert "Log in to Atrium" in page.get_data(as_text=True)

    wrong = sign_in(browser, authorization, "ada@example.com", "not-her-password")

    assert wrong.status_code == 401
    assert "Wrong email or password." in wrong.get_data(as_text=True)
    assert 'value="ada@example.com"' in wrong.get_data(as_text=True)


def test_code_flow_with_pkce_gives_auth0_shaped_tokens(
    tenant_app: Flask, browser: FlaskClient, authorization: Authorization
) -> None:
    params = redirect_params(sign_in(browser, authorization, "linus@example.com"))
    assert params["state"] == authorization.state

    response = exchange(browser, params["code"], authorization.verifier)

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    id_token = claims_of(tenant_app, body["id_token"])
    assert id_token["iss"] == ISSUER
    assert id_token["sub"].startswith("auth0|")
    assert id_token["aud"] == PORTAL_CLIENT_ID
    assert id_token["nonce"] == authorization.nonce
    assert id_token["exp"] > id_token["iat"] >= int(time.time()) - 5
    assert id_token["sid"]
    assert id_token["amr"] == ["pwd"]
    assert id_token["email"] == "linus@example.com"
    assert id_token["email_verified"] is True
    assert id_token["name"] == "Linus Torvalds"
    assert id_token["https://atrium.dev/roles"] == ["engineer", "portal-admin"]
    access = claims_of(tenant_app, body["access_token"])
    assert access["aud"] == [PORTAL_AUDIENCE, ISSUER + "userinfo"]
    assert access["sub"] == id_token["sub"]
    assert access["scope"] == "openid profile email"
    assert "approve:access" in access["permissions"]
    assert access["azp"] == PORTAL_CLIENT_ID


def test_userinfo_answers_for_the_access_token(
    browser: FlaskClient, authorization: Authorization
) -> None:
    params = redirect_params(sign_in(browser, authorization, "ada@example.com"))
    access_token = exchange(browser, params["code"], authorization.verifier).get_json()[
        "access_token"
    ]

    info = browser.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})

    assert info.status_code == 200
    assert info.get_json()["email"] == "ada@example.com"
    assert browser.get("/userinfo", headers={"Authorization": "Bearer x.y.z"}).status_code == 401


def test_a_code_works_once(browser: FlaskClient, authorization: Authorization) -> None:
    code = redirect_params(sign_in(browser, authorization, "ada@example.com"))["code"]
    assert exchange(browser, code, authorization.verifier).status_code == 200

    replay = exchange(browser, code, authorization.verifier)

    assert replay.status_code == 403
    assert replay.get_json() == {
        "error": "invalid_grant",
        "error_description": "Invalid authorization code",
    }


def test_an_expired_code_is_refused(
    tenant_app: Flask, browser: FlaskClient, authorization: Authorization
) -> None:
    browser.post("/__admin/settings", json={"code_lifetime": 0.2})
    code = redirect_params(sign_in(browser, authorization, "ada@example.com"))["code"]
    time.sleep(0.4)

    response = exchange(browser, code, authorization.verifier)

    assert response.status_code == 403
    assert response.get_json()["error"] == "invalid_grant"


def test_a_pkce_mismatch_is_refused(browser: FlaskClient, authorization: Authorization) -> None:
    code = redirect_params(sign_in(browser, authorization, "ada@example.com"))["code"]

    response = exchange(browser, code, "a-different-verifier-" + "x" * 30)

    assert response.status_code == 403
    assert response.get_json() == {
        "error": "invalid_grant",
        "error_description": "Failed to verify code verifier",
    }


def test_a_wrong_client_secret_is_refused(
    browser: FlaskClient, authorization: Authorization
) -> None:
    code = redirect_params(sign_in(browser, authorization, "ada@example.com"))["code"]

    response = exchange(browser, code, authorization.verifier, client_secret="guess")

    assert response.status_code == 401
    assert response.get_json() == {"error": "access_denied", "error_description": "Unauthorized"}


def test_an_unknown_client_is_refused(browser: FlaskClient, authorization: Authorization) -> None:
    page = browser.get(f"/authorize?{authorization.query(client_id='nobody')}")
    assert page.status_code == 400
    assert "Unknown client: nobody" in page.get_data(as_text=True)

    token = client_credentials(browser, PORTAL_AUDIENCE, client_id="nobody", secret="x")
    assert token.status_code == 401
    assert token.get_json()["error"] == "access_denied"


def test_an_unregistered_redirect_uri_is_never_redirected_to(
    browser: FlaskClient, authorization: Authorization
) -> None:
    evil = "https://evil.example/callback"

    page = browser.get(f"/authorize?{authorization.query(redirect_uri=evil)}")

    assert page.status_code == 400
    assert "Callback URL mismatch" in page.get_data(as_text=True)
    assert "Location" not in page.headers


def test_prompt_none_without_a_session_answers_login_required(
    browser: FlaskClient, authorization: Authorization
) -> None:
    params = redirect_params(browser.get(f"/authorize?{authorization.query(prompt='none')}"))

    assert params["error"] == "login_required"
    assert params["state"] == authorization.state


def test_a_signed_in_browser_gets_a_code_without_the_page(
    browser: FlaskClient, authorization: Authorization
) -> None:
    redirect_params(sign_in(browser, authorization, "ada@example.com"))

    again = browser.get(f"/authorize?{new_authorization().query()}")

    assert "code" in redirect_params(again)


def test_a_blocked_user_is_sent_back_with_unauthorized(
    browser: FlaskClient, authorization: Authorization
) -> None:
    browser.post(
        "/__admin/seed",
        json={"users": [{"email": "ada@example.com", "password": "x", "blocked": True}]},
    )

    params = redirect_params(sign_in(browser, authorization, "ada@example.com"))

    assert params == {
        "error": "unauthorized",
        "error_description": "user is blocked",
        "state": authorization.state,
    }


def test_cancel_answers_access_denied(browser: FlaskClient, authorization: Authorization) -> None:
    response = browser.post(f"/authorize?{authorization.query()}", data={"action": "cancel"})

    params = redirect_params(response)
    assert params["error"] == "access_denied"
    assert params["state"] == authorization.state


def test_client_credentials_tokens_look_like_auth0s(
    tenant_app: Flask, browser: FlaskClient
) -> None:
    response = client_credentials(browser, PORTAL_AUDIENCE)

    assert response.status_code == 200
    claims = claims_of(tenant_app, response.get_json()["access_token"])
    assert claims["sub"] == f"{AUTOMATION_CLIENT_ID}@clients"
    assert claims["gty"] == "client-credentials"
    assert claims["azp"] == AUTOMATION_CLIENT_ID
    assert claims["aud"] == PORTAL_AUDIENCE
    assert claims["scope"] == "read:catalog read:access read:audit"

    narrowed = client_credentials(browser, PORTAL_AUDIENCE, scope="read:catalog approve:access")
    assert claims_of(tenant_app, narrowed.get_json()["access_token"])["scope"] == "read:catalog"


def test_client_credentials_for_an_api_without_a_grant_is_refused(browser: FlaskClient) -> None:
    response = client_credentials(browser, ISSUER + "api/v2/")

    assert response.status_code == 403
    assert response.get_json()["error"] == "access_denied"
    assert "client-grant" in response.get_json()["error_description"]


def test_v2_logout_checks_return_to_and_ends_the_session(
    browser: FlaskClient, authorization: Authorization
) -> None:
    redirect_params(sign_in(browser, authorization, "ada@example.com"))

    refused = browser.get(f"/v2/logout?client_id={PORTAL_CLIENT_ID}&returnTo=https://evil.example/")
    assert refused.status_code == 400
    assert "Allowed Logout URLs" in refused.get_data(as_text=True)

    done = browser.get(f"/v2/logout?client_id={PORTAL_CLIENT_ID}&returnTo={PORTAL}/")
    assert done.status_code == 302
    assert done.headers["Location"] == f"{PORTAL}/"
    assert browser.get(f"/authorize?{new_authorization().query()}").status_code == 200


def test_oidc_logout_uses_the_id_token_hint_and_returns_state(
    browser: FlaskClient, authorization: Authorization
) -> None:
    code = redirect_params(sign_in(browser, authorization, "ada@example.com"))["code"]
    id_token = exchange(browser, code, authorization.verifier).get_json()["id_token"]

    done = browser.get(
        "/oidc/logout",
        query_string={
            "id_token_hint": id_token,
            "post_logout_redirect_uri": f"{PORTAL}/",
            "state": "s1",
        },
    )

    assert done.status_code == 302
    assert done.headers["Location"] == f"{PORTAL}/?state=s1"
    assert browser.get(f"/authorize?{new_authorization().query()}").status_code == 200
    forged = browser.get(
        "/oidc/logout",
        query_string={
            "id_token_hint": id_token[:-4] + "AAAA",
            "post_logout_redirect_uri": CALLBACK,
        },
    )
    assert forged.status_code == 400


def test_rotated_keys_sign_new_tokens_and_the_old_key_stays_published(
    tenant_app: Flask, browser: FlaskClient
) -> None:
    old = client_credentials(browser, PORTAL_AUDIENCE).get_json()["access_token"]
    old_kids = [key["kid"] for key in browser.get("/.well-known/jwks.json").get_json()["keys"]]

    new_kid = browser.post("/__admin/keys/rotate").get_json()["kid"]

    kids = [key["kid"] for key in browser.get("/.well-known/jwks.json").get_json()["keys"]]
    assert kids == [new_kid, *old_kids]
    new = client_credentials(browser, PORTAL_AUDIENCE).get_json()["access_token"]
    assert claims_of(tenant_app, new)["sub"] == f"{AUTOMATION_CLIENT_ID}@clients"
    assert claims_of(tenant_app, old)["sub"] == f"{AUTOMATION_CLIENT_ID}@clients"


def test_state_survives_a_restart(tmp_path: Path, tenant_app: Flask) -> None:
    state_file = tenant_app.extensions["devtenant"].path

    again = create_app(state_path=state_file, issuer=ISSUER)

    users = again.test_client().get("/__admin/state").get_json()["users"]
    assert {u["email"] for u in users} == {
        "ada@example.com",
        "grace@example.com",
        "linus@example.com",
    }


def test_the_rotate_key_command_adds_a_key_and_keeps_the_old_one(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    state = tmp_path / "tenant.json"
    for _ in range(2):
        subprocess.run(
            [sys.executable, "-m", "devtenant", "rotate-key", "--state", str(state)],
            check=True,
            capture_output=True,
        )

    keys = json.loads(state.read_text())["keys"]
    assert len(keys) == 3
    assert len({key["kid"] for key in keys}) == 3


# --- A second factor, when the client asks for one (acr_values), and max_age ------------------

MFA = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"


def test_acr_values_asking_for_mfa_brings_the_second_factor_page_and_its_claims(
    tenant_app: Flask, browser: FlaskClient, authorization: Authorization
) -> None:
    from devtenant.app import MFA_DEMO_CODE

    sign_in(browser, authorization, "grace@example.com")  # a session at the tenant, no MFA
    stepping_up = new_authorization()
    query = stepping_up.query(acr_values=MFA, max_age="600", audience=PORTAL_AUDIENCE)

    page = browser.get(f"/authorize?{query}")
    wrong = browser.post(f"/authorize?{query}", data={"code": "000000", "action": "mfa"})
    right = browser.post(f"/authorize?{query}", data={"code": MFA_DEMO_CODE, "action": "mfa"})
    body = exchange(browser, redirect_params(right)["code"], stepping_up.verifier).get_json()

    assert page.status_code == 200 and "Verify your identity" in page.get_data(as_text=True)
    assert wrong.status_code == 401 and "That code is not right." in wrong.get_data(as_text=True)
    id_token = claims_of(tenant_app, body["id_token"])
    assert id_token["amr"] == ["pwd", "mfa"]
    assert id_token["acr"] == MFA
    assert abs(id_token["auth_time"] - time.time()) < 5
    access = claims_of(tenant_app, body["access_token"])
    assert access["https://atrium.dev/mfa_time"] == id_token["auth_time"]


def test_max_age_signs_an_older_session_in_again(
    tenant_app: Flask, browser: FlaskClient, authorization: Authorization
) -> None:
    sign_in(browser, authorization, "grace@example.com")
    server = tenant_app.extensions["devtenant.server"]
    for session in server.sign_ins.values():
        session.auth_time -= 900  # signed in a quarter of an hour ago

    older = browser.get(f"/authorize?{new_authorization().query(max_age='600')}")
    recent_enough = browser.get(f"/authorize?{new_authorization().query(max_age='3600')}")

    assert older.status_code == 200 and "Log in to Atrium" in older.get_data(as_text=True)
    assert recent_enough.status_code == 302


def test_without_acr_values_no_second_factor_is_asked(
    browser: FlaskClient, authorization: Authorization
) -> None:
    params = redirect_params(sign_in(browser, authorization, "ada@example.com"))
    assert params["code"]


def test_the_demo_command_line_gets_a_person_s_token_with_the_password_grant(
    tenant_app: Flask, browser: FlaskClient
) -> None:
    from devtenant.demo import CLI_CLIENT_ID, CLI_CLIENT_SECRET, PAYMENTS_AUDIENCE

    form = {"grant_type": "password", "username": "ada@example.com", "password": "atrium-demo",
            "audience": PAYMENTS_AUDIENCE, "client_id": CLI_CLIENT_ID,
            "client_secret": CLI_CLIENT_SECRET, "scope": "openid"}  # fmt: skip

    answer = browser.post("/oauth/token", data=form)
    wrong = browser.post("/oauth/token", data={**form, "password": "guess"})
    elsewhere = browser.post("/oauth/token", data={**form, "client_id": AUTOMATION_CLIENT_ID})

    assert answer.status_code == 200, answer.get_json()
    claims = claims_of(tenant_app, answer.get_json()["access_token"])
    assert claims["aud"][0] == PAYMENTS_AUDIENCE
    assert claims["sub"].startswith("auth0|") and "gty" not in claims
    assert wrong.status_code >= 400
    # Only a client allowed the grant may use it.
    assert elsewhere.status_code >= 400
