"""Step-up: deciding a sensitive role's request needs a fresh multi-factor sign-in. Through the
devtenant over HTTP, as a browser would go (tests/browser/test_step_up.py clicks it in Chromium).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from django.conf import settings
from django.test import Client

from access.models import AccessRequest, AuditEvent
from devtenant.app import MFA_DEMO_CODE
from portal.auth.mfa import MFA_ACR, MFA_AT_SESSION_KEY
from tests.helpers import (
    CHECKOUT,
    LEDGER,
    DevTenant,
    catalog_add,
    own_role,
    person_of_tenant,
    pkce_pair,
    text,
)
from tests.portal.auth_helpers import SignInAttempt, machine_token, query_of, sign_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def sensitive(payments: None, tmp_path: Path, devtenant: DevTenant) -> AccessRequest:
    """payments.admin is sensitive; Ada asks for it on the ledger and waits for Grace."""
    catalog_add(tmp_path / "checkout.yaml", CHECKOUT)
    own_role("payments.admin", "team-payments", sensitive=True)
    _, as_ada = person_of_tenant(devtenant, "ada@example.com")
    form = {"entity": LEDGER, "role": "payments.admin", "reason": "Ledger fix", "duration": "P1D"}
    as_ada.post("/access/requests/new/", form)
    return AccessRequest.objects.get()


def grace_signed_in() -> tuple[Client, SignInAttempt]:
    client = Client()
    attempt = sign_in(client, "grace@example.com")
    assert attempt.response.status_code == 302
    return client, attempt


def second_factor(attempt: SignInAttempt, issuer_url: str, code: str = MFA_DEMO_CODE) -> str:
    """At the devtenant: its second-factor page, the code; the callback path it sends back to."""
    page = attempt.tenant_browser.get(issuer_url, timeout=10)
    assert page.status_code == 200 and "Verify your identity" in page.text
    answer = attempt.tenant_browser.post(
        issuer_url, data={"code": code, "action": "mfa"}, allow_redirects=False, timeout=10
    )
    assert answer.status_code == 302, answer.text
    callback = urlsplit(answer.headers["Location"])
    return f"{callback.path}?{callback.query}"


def test_a_decision_without_a_fresh_mfa_goes_to_the_issuer_and_proceeds_after_it(
    sensitive: AccessRequest,
) -> None:
    client, attempt = grace_signed_in()

    sent = client.post(f"/access/approvals/{sensitive.pk}/", {"outcome": "approved",
                       f"comment-{sensitive.pk}": "ok for the fix"})  # fmt: skip
    asked = query_of(sent["Location"])
    sensitive.refresh_from_db()
    waiting_state = sensitive.state
    back = client.get(second_factor(attempt, sent["Location"]))
    done = client.get(back["Location"], follow=True)

    assert sent["Location"].startswith(settings.AUTH0_ISSUER + "authorize?")
    assert asked["acr_values"] == MFA_ACR
    assert asked["max_age"] == str(int(settings.ACCESS_STEP_UP_MAX_AGE.total_seconds()))
    assert waiting_state == "pending"  # nothing was decided before the second factor
    assert back["Location"] == "/access/approvals/resume/"
    assert "Approved 1 request." in text(done.content)
    sensitive.refresh_from_db()
    assert sensitive.state == "approved"
    assert list(sensitive.decisions.values_list("outcome", "comment")) == [
        ("approved", "ok for the fix")
    ]
    stepped_up = AuditEvent.objects.get(action="auth.stepped_up")
    assert stepped_up.detail["acr"] == MFA_ACR and "mfa" in stepped_up.detail["amr"]
    # The same decision cannot be made twice from the kept one.
    again = client.get("/access/approvals/resume/", follow=True)
    assert "There was no decision waiting for your multi-factor sign-in." in text(again.content)


def test_within_the_fresh_window_the_next_decision_needs_no_second_round(
    sensitive: AccessRequest,
) -> None:
    client, attempt = grace_signed_in()
    sent = client.post("/access/approvals/bulk/", {"outcome": "denied", "selected": [sensitive.pk]})
    client.get(client.get(second_factor(attempt, sent["Location"]))["Location"])
    as_ada = Client()
    as_ada.force_login(sensitive.requester)
    as_ada.post("/access/requests/new/", {"entity": LEDGER, "role": "payments.admin",
                                          "reason": "Again", "duration": "P1D"})  # fmt: skip
    second = AccessRequest.objects.exclude(pk=sensitive.pk).get()

    decided = client.post(f"/access/approvals/{second.pk}/", {"outcome": "approved"},
                          HTTP_HX_REQUEST="true")  # fmt: skip

    assert decided.status_code == 200 and "You approved the request" in decided.content.decode()
    sensitive.refresh_from_db()
    assert sensitive.state == "denied"


def test_an_inline_decision_is_sent_to_the_issuer_by_htmx(sensitive: AccessRequest) -> None:
    client, _ = grace_signed_in()

    page = "http://testserver/access/approvals/?role=payments.admin"
    sent = client.post(f"/access/approvals/{sensitive.pk}/", {"outcome": "denied"},
                       HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL=page)  # fmt: skip

    assert sent.status_code == 200
    assert query_of(sent["HX-Redirect"])["acr_values"] == MFA_ACR
    sensitive.refresh_from_db()
    assert sensitive.state == "pending"


@pytest.mark.parametrize(
    ("forgery", "said"),
    [
        ("no_mfa", "the sign-in did not use a second factor."),
        ("stale_auth_time", "the multi-factor sign-in is too old."),
        ("no_auth_time", "the issuer did not say when you signed in (auth_time)."),
    ],
)
def test_a_sign_in_without_mfa_or_with_a_stale_auth_time_is_refused(
    sensitive: AccessRequest, devtenant: DevTenant, forgery: str, said: str
) -> None:
    client, attempt = grace_signed_in()
    sent = client.post(f"/access/approvals/{sensitive.pk}/", {"outcome": "approved"})
    devtenant.admin("forge", {"id_token": forgery})

    back = client.get(second_factor(attempt, sent["Location"]), follow=True)
    resumed = client.get("/access/approvals/resume/", follow=True)

    assert f"Nothing was decided: {said}" in text(back.content)
    assert "There was no decision waiting" in text(resumed.content)
    sensitive.refresh_from_db()
    assert sensitive.state == "pending" and not sensitive.decisions.exists()
    assert MFA_AT_SESSION_KEY not in client.session


def test_a_stale_step_up_in_the_session_is_asked_again(sensitive: AccessRequest) -> None:
    client, _ = grace_signed_in()
    session = client.session
    session[MFA_AT_SESSION_KEY] = (
        time.time() - settings.ACCESS_STEP_UP_MAX_AGE.total_seconds() - 120
    )
    session.save()

    sent = client.post(f"/access/approvals/{sensitive.pk}/", {"outcome": "approved"})

    assert query_of(sent["Location"])["acr_values"] == MFA_ACR
    sensitive.refresh_from_db()
    assert sensitive.state == "pending"


def test_a_second_factor_entered_by_another_account_decides_nothing(
    sensitive: AccessRequest,
) -> None:
    client, _ = grace_signed_in()
    sent = client.post(f"/access/approvals/{sensitive.pk}/", {"outcome": "approved"})
    # Someone else's browser signs in at the issuer with the URL Grace was sent to.
    other = requests.Session()
    other.get(sent["Location"], timeout=10)
    other.post(sent["Location"], data={"email": "linus@example.com", "password": "atrium-demo",
                                       "action": "login"}, timeout=10)  # fmt: skip
    answer = other.post(sent["Location"], data={"code": MFA_DEMO_CODE, "action": "mfa"},
                        allow_redirects=False, timeout=10)  # fmt: skip
    callback = urlsplit(answer.headers["Location"])

    back = client.get(f"{callback.path}?{callback.query}", follow=True)

    assert "Nothing was decided: the second factor was entered for another account" in text(
        back.content
    )
    sensitive.refresh_from_db()
    assert sensitive.state == "pending"


def person_token_with_mfa(devtenant: DevTenant, email: str) -> str:
    """An access token from a sign-in that asked for (and did) a second factor, as a person's
    tool gets one after the API's RFC 9470 answer."""
    verifier, challenge = pkce_pair()
    callback = settings.PORTAL_BASE_URL + "/auth/callback/"
    authorize = devtenant.url("authorize?") + urlencode({
        "response_type": "code", "client_id": settings.AUTH0_CLIENT_ID, "redirect_uri": callback,
        "scope": "openid approve:access read:access", "audience": "https://atrium.dev/api",
        "state": "s", "code_challenge": challenge, "code_challenge_method": "S256",
        "acr_values": MFA_ACR, "max_age": "600",
    })  # fmt: skip
    browser = requests.Session()
    browser.get(authorize, timeout=10)
    browser.post(authorize, data={"email": email, "password": "atrium-demo", "action": "login"},
                 timeout=10)  # fmt: skip
    answer = browser.post(authorize, data={"code": MFA_DEMO_CODE, "action": "mfa"},
                          allow_redirects=False, timeout=10)  # fmt: skip
    code = query_of(answer.headers["Location"])["code"]
    return devtenant.token(
        grant_type="authorization_code", client_id=settings.AUTH0_CLIENT_ID,
        client_secret=settings.AUTH0_CLIENT_SECRET, code=code, redirect_uri=callback,
        code_verifier=verifier,
    )  # fmt: skip


def test_the_api_answers_as_rfc_9470_says_and_takes_a_token_that_carries_a_fresh_mfa(
    sensitive: AccessRequest, devtenant: DevTenant
) -> None:
    from tests.portal.auth_helpers import person_token

    client, _ = grace_signed_in()
    by_session = client.post(f"/api/access/requests/{sensitive.pk}/approve", {},
                             content_type="application/json")  # fmt: skip
    plain = person_token(devtenant, "grace@example.com", "openid approve:access read:access")
    by_plain_token = Client().post(f"/api/access/requests/{sensitive.pk}/approve", {},
                                   content_type="application/json",
                                   headers={"Authorization": f"Bearer {plain}"})  # fmt: skip
    by_machine = Client().post(
        f"/api/access/requests/{sensitive.pk}/approve", {}, content_type="application/json",
        headers={"Authorization": f"Bearer {machine_token(devtenant)}"},
    )  # fmt: skip
    stepped = person_token_with_mfa(devtenant, "grace@example.com")
    by_mfa_token = Client().post(f"/api/access/requests/{sensitive.pk}/approve", {},
                                 content_type="application/json",
                                 headers={"Authorization": f"Bearer {stepped}"})  # fmt: skip

    for answer in (by_session, by_plain_token):
        assert answer.status_code == 401
        assert answer.json()["error"]["name"] == "StepUpRequired"
        challenge: Any = answer["WWW-Authenticate"]
        assert challenge.startswith('Bearer error="insufficient_user_authentication"')
        assert f'acr_values="{MFA_ACR}", max_age=600' in challenge
    assert by_machine.status_code == 403  # a machine decides nothing, nor signs in with MFA
    assert by_mfa_token.status_code == 200, by_mfa_token.content
    assert by_mfa_token.json()["state"] == "approved"


def test_an_unreachable_issuer_decides_nothing_and_says_why(
    sensitive: AccessRequest, settings: Any
) -> None:
    from tests.factories import UserFactory

    grace = Client()
    grace.force_login(UserFactory.create(email="grace@example.com"))
    settings.AUTH0_ISSUER = "http://127.0.0.1:9/"  # nothing listens there

    answer = grace.post(f"/access/approvals/{sensitive.pk}/", {"outcome": "approved"},
                        follow=True)  # fmt: skip

    assert "the sign-in service could not be reached" in text(answer.content)
    sensitive.refresh_from_db()
    assert sensitive.state == "pending"
