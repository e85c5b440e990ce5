"""Sessions end when idle and when too old: the person is signed out and told why."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from access.models import AccessRequest
from portal.auth.drafts import DRAFT_FIELD, SESSION_KEY
from portal.middleware import SEEN_AT, SIGNED_IN_AT
from portal.models import User
from tests.helpers import ENTITY, DevTenant, load_settings, text
from tests.portal.auth_helpers import answer_at_tenant, machine_token, sign_in

pytestmark = pytest.mark.django_db


def shift_clocks(client: Client, **seconds_ago: float) -> None:
    """Pretend the session was signed in (`signed_in`) or last seen (`seen`) that long ago."""
    session = client.session
    now = time.time()
    if "signed_in" in seconds_ago:
        session[SIGNED_IN_AT] = now - seconds_ago["signed_in"]
    if "seen" in seconds_ago:
        session[SEEN_AT] = now - seconds_ago["seen"]
    session.save()


@pytest.fixture
def ada(client: Client, devtenant: DevTenant) -> Client:
    attempt = sign_in(client, "ada@example.com", next_path="/access/")
    assert attempt.response is not None and attempt.response.status_code == 302
    return client


def test_sign_in_starts_both_clocks(ada: Client) -> None:
    session = ada.session

    assert abs(session[SIGNED_IN_AT] - time.time()) < 30
    assert session[SEEN_AT] == session[SIGNED_IN_AT]


def test_the_defaults_are_thirty_minutes_idle_and_twelve_hours_in_all(settings: Any) -> None:
    assert settings.SESSION_IDLE_TIMEOUT.total_seconds() == 30 * 60
    assert settings.SESSION_LIFETIME.total_seconds() == 12 * 3600
    # The cookie does not outlive the longest session.
    assert settings.SESSION_COOKIE_AGE == 12 * 3600


def test_a_session_in_use_goes_on(ada: Client, settings: Any) -> None:
    shift_clocks(ada, signed_in=11 * 3600, seen=29 * 60)

    response = ada.get("/access/")

    assert response.status_code == 200
    assert abs(ada.session[SEEN_AT] - time.time()) < 30  # seen again, so idle starts anew


def test_last_activity_is_written_at_most_once_a_minute(ada: Client) -> None:
    shift_clocks(ada, seen=20)
    seen = ada.session[SEEN_AT]

    ada.get("/access/")
    ada.get("/catalog/")

    assert ada.session[SEEN_AT] == seen
    shift_clocks(ada, seen=61)
    ada.get("/access/")
    assert ada.session[SEEN_AT] > seen


def test_an_idle_session_ends_with_a_message_and_a_way_back(ada: Client) -> None:
    session_key = ada.session.session_key
    shift_clocks(ada, seen=31 * 60)

    response = ada.get("/access/requests/new/?entity=x")

    assert response.status_code == 302
    assert response["Location"] == "/auth/login/?next=%2Faccess%2Frequests%2Fnew%2F%3Fentity%3Dx"
    assert not Session.objects.filter(session_key=session_key).exists()
    home = ada.get("/").content.decode()
    assert "You were signed out after 30 minutes without activity. Sign in again" in home
    assert "Sign out" not in home
    assert ada.get("/access/").status_code == 302  # still signed out


def test_a_session_past_its_lifetime_ends_however_busy(ada: Client) -> None:
    shift_clocks(ada, signed_in=12 * 3600 + 5, seen=5)

    response = ada.get("/access/")

    assert response.status_code == 302
    assert response["Location"].startswith("/auth/login/")
    home = ada.get("/").content.decode()
    assert "You were signed out: a session lasts at most 12 hours." in home


def test_the_limits_are_settings(ada: Client, settings: Any) -> None:
    settings.SESSION_IDLE_TIMEOUT = timedelta(minutes=5)
    shift_clocks(ada, seen=6 * 60)

    assert ada.get("/access/").status_code == 302
    assert "after 5 minutes without activity" in ada.get("/").content.decode()


def test_a_form_sent_after_the_session_ended_without_a_referer_starts_over_at_home(
    ada: Client,
) -> None:
    shift_clocks(ada, seen=31 * 60)

    response = ada.post("/access/refresh/")

    assert response.status_code == 302
    assert response["Location"] == "/auth/login/?next=%2F"


def test_signing_out_of_an_ended_session_signs_out_at_auth0_too(
    ada: Client, devtenant: DevTenant
) -> None:
    shift_clocks(ada, seen=31 * 60)

    response = ada.post("/auth/logout/")

    assert response.status_code == 302
    assert response["Location"].startswith(devtenant.issuer)
    assert "_auth_user_id" not in ada.session


def test_htmx_is_told_to_send_the_whole_page_to_sign_in(ada: Client) -> None:
    shift_clocks(ada, seen=31 * 60)

    response = ada.get(
        "/catalog/?q=pay",
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/catalog/?kind=API"},
    )

    assert response.status_code == 200
    assert response["HX-Redirect"] == "/auth/login/?next=%2Fcatalog%2F%3Fkind%3DAPI"


def test_the_api_by_session_answers_401_in_its_error_shape(ada: Client) -> None:
    shift_clocks(ada, seen=31 * 60)

    response = ada.get("/api/access/me")

    assert response.status_code == 401
    error = response.json()["error"]
    assert error["name"] == "AuthenticationError"
    assert "30 minutes without activity" in error["message"]
    assert ada.get("/api/access/me").status_code == 401  # the session is gone


def test_bearer_token_calls_are_not_session_calls(ada: Client, devtenant: DevTenant) -> None:
    token = machine_token(devtenant)
    shift_clocks(ada, seen=31 * 60)

    response = ada.get("/api/access/me", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == 200
    assert response.json()["sub"] == "atrium-automation@clients"


def test_a_session_without_clocks_counts_from_the_last_sign_in(settings: Any) -> None:
    person = User.objects.create_user("auth0|old", "old@example.com")
    client = Client()
    client.force_login(person)

    assert client.get("/access/").status_code == 200
    assert SIGNED_IN_AT not in client.session  # nothing written for it
    User.objects.filter(pk=person.pk).update(
        last_login=timezone.now() - settings.SESSION_LIFETIME - timedelta(seconds=5)
    )
    assert client.get("/access/").status_code == 302
    assert "a session lasts at most 12 hours" in client.get("/").content.decode()


@pytest.mark.parametrize("variable", ["SESSION_IDLE_TIMEOUT", "SESSION_LIFETIME"])
def test_a_limit_that_is_not_a_duration_is_refused_by_name(tmp_path: Any, variable: str) -> None:

    loaded = load_settings(tmp_path, DEBUG="true", **{variable: "8 hours"})

    assert loaded.returncode != 0
    assert f"{variable}='8 hours' is not a positive ISO 8601 duration" in loaded.stderr


# --- What a person's last action becomes when their session has ended under it ---------------


def message_after_sign_in(client: Client) -> str:
    """The page the person next sees, with the message waiting for them."""
    return text(client.get("/").content)


def test_htmx_without_any_session_is_sent_to_sign_in_and_back_to_its_page() -> None:
    # No session cookie at all: Django would redirect to sign-in, then to the issuer, a
    # redirect the browser's XHR is refused (another origin), so nothing would show.
    browser = Client()

    response = browser.get(
        "/access/approvals/count/",
        headers={
            "HX-Request": "true",
            "HX-Current-URL": "http://testserver/access/approvals/?role=payments.viewer",
        },
    )

    assert response.status_code == 200
    assert response["HX-Redirect"] == (
        "/auth/login/?next=%2Faccess%2Fapprovals%2F%3Frole%3Dpayments.viewer"
    )
    assert "your session has ended. Sign in again to go on." in message_after_sign_in(browser)


def test_an_htmx_approve_after_the_session_ended_says_it_was_not_carried_out(
    ada: Client,
) -> None:
    shift_clocks(ada, seen=31 * 60)

    response = ada.post(
        "/access/approvals/1/",
        {"outcome": "approved"},
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/access/approvals/"},
    )

    assert response["HX-Redirect"] == "/auth/login/?next=%2Faccess%2Fapprovals%2F"
    said = message_after_sign_in(ada)
    assert "You were signed out after 30 minutes without activity." in said
    assert "What you sent was not carried out: send it again" in said


def test_htmx_is_never_sent_off_the_site_by_its_current_url() -> None:
    response = Client().get(
        "/access/", headers={"HX-Request": "true", "HX-Current-URL": "https://evil.example//x"}
    )

    assert response["HX-Redirect"] == "/auth/login/?next=%2F"


def test_a_boosted_link_without_a_session_signs_in_on_the_way_to_where_it_went() -> None:
    response = Client().get(
        "/access/",
        headers={
            "HX-Request": "true",
            "HX-Boosted": "true",
            "HX-Current-URL": "http://testserver/",
        },
    )

    assert response["HX-Redirect"] == "/auth/login/?next=%2Faccess%2F"


def test_a_form_sent_after_the_session_ended_comes_back_to_the_page_it_was_on(
    ada: Client,
) -> None:
    shift_clocks(ada, seen=31 * 60)

    response = ada.post("/access/refresh/", headers={"Referer": "http://testserver/access/"})

    # Back to the page, never a GET of the URL that takes only POST (a blank 405).
    assert response["Location"] == "/auth/login/?next=%2Faccess%2F"
    said = message_after_sign_in(ada)
    assert "What you sent was not carried out: send it again now that you are back." in said


def test_a_referer_from_another_site_is_not_followed(ada: Client) -> None:
    shift_clocks(ada, seen=31 * 60)

    response = ada.post("/access/refresh/", headers={"Referer": "https://evil.example/access/"})

    assert response["Location"] == "/auth/login/?next=%2F"


@pytest.mark.parametrize("ended", ["idle", "gone"])
def test_a_form_whose_session_ended_reaches_the_sign_in_not_a_csrf_refusal(
    ada: Client, ended: str
) -> None:
    # The CSRF token is the cookie's (not the session's): it outlives the session, so a form
    # sent after the session ended is answered by the portal's sign-in, not a 403.
    browser = Client(enforce_csrf_checks=True)
    browser.cookies = ada.cookies
    page = browser.get("/access/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    if ended == "idle":
        shift_clocks(browser, seen=31 * 60)
    else:
        Session.objects.all().delete()

    response = browser.post(
        "/access/refresh/",
        {"csrfmiddlewaretoken": token.group(1)},
        headers={"Referer": "http://testserver/access/"},
    )

    assert response.status_code == 302
    assert response["Location"] == "/auth/login/?next=%2Faccess%2F"
    assert "not carried out" in message_after_sign_in(browser)


# --- The request form keeps what was typed -----------------------------------------------------

FORM_PAGE = f"/access/requests/new/?entity={ENTITY}&role=payments.admin"


def typed_form(client: Client) -> dict[str, str]:
    """The request form as Ada fills it in."""
    page = client.get(FORM_PAGE).content.decode()
    draft = re.search(rf'name="{DRAFT_FIELD}" value="([^"]+)"', page)
    assert draft is not None
    return {
        "entity": ENTITY, "role": "payments.admin", "reason": "Rotating the card vault keys",
        "duration": "P1D", DRAFT_FIELD: draft.group(1),
    }  # fmt: skip


def sign_in_from(client: Client, location: str, email: str) -> Any:
    """Follow the portal's sign-in link through the devtenant, as the browser would."""
    authorize = client.get(location)["Location"]
    attempt = answer_at_tenant(authorize, email)
    return client.get(attempt.callback_path)


@pytest.mark.parametrize("ended", ["idle", "gone"])
def test_the_request_form_keeps_what_was_typed_across_signing_in_again(
    ada: Client, payments: None, ended: str
) -> None:
    form = typed_form(ada)
    if ended == "idle":
        shift_clocks(ada, seen=31 * 60)
    else:
        Session.objects.all().delete()

    sent = ada.post(FORM_PAGE, form, headers={"Referer": f"http://testserver{FORM_PAGE}"})
    back = sign_in_from(ada, sent["Location"], "ada@example.com")

    assert back.status_code == 302 and back["Location"] == FORM_PAGE
    page = ada.get(FORM_PAGE).content.decode()
    assert "Rotating the card vault keys</textarea>" in page
    assert '<option value="P1D" selected>' in page
    assert '<option value="payments.admin" selected>' in page
    said = text(page.encode())
    assert "What you sent was not carried out" in said
    assert "What you typed is back in the form: check it and send it." in said
    assert not AccessRequest.objects.exists()
    # Taken once: a reload shows the form as it comes.
    assert "Rotating the card vault keys" not in ada.get(FORM_PAGE).content.decode()


def test_a_draft_never_reaches_someone_else_who_signs_in_on_that_browser(
    ada: Client, payments: None
) -> None:
    form = typed_form(ada)
    Session.objects.all().delete()

    sent = ada.post(FORM_PAGE, form)
    sign_in_from(ada, sent["Location"], "grace@example.com")

    assert "Rotating the card vault keys" not in ada.get(FORM_PAGE).content.decode()
    assert SESSION_KEY not in ada.session


def test_a_forged_or_foreign_draft_is_not_kept(ada: Client, payments: None) -> None:
    form = typed_form(ada)
    # Mallory's own signed draft, posted into Ada's ended session, is not Ada's to keep.
    mallory = Client()
    mallory.force_login(User.objects.create_user("auth0|mallory", "mallory@example.com"))
    foreign = typed_form(mallory)[DRAFT_FIELD]
    shift_clocks(ada, seen=31 * 60)

    ada.post(FORM_PAGE, {**form, DRAFT_FIELD: foreign})
    assert SESSION_KEY not in ada.session
    Session.objects.all().delete()
    ada.post(FORM_PAGE, {**form, DRAFT_FIELD: form[DRAFT_FIELD] + "x"})
    assert SESSION_KEY not in ada.session


def test_sessions_are_read_by_their_own_statement_with_djangos_answers(settings: Any) -> None:
    """portal.sessions reads the row itself: a live session is the person's, an expired or
    signed-out one is nobody's, and a person made inactive is refused at the next request."""
    assert settings.SESSION_ENGINE == "portal.sessions"
    person = User.objects.create_user("auth0|sessions", "sessions@example.com")
    client = Client()
    client.force_login(person)
    assert client.get("/api/catalog/entities?limit=1").status_code == 200

    key = client.session.session_key
    ended = timezone.now() - timedelta(seconds=1)
    Session.objects.filter(session_key=key).update(expire_date=ended)
    assert client.get("/api/catalog/entities?limit=1").status_code == 401

    client.force_login(person)
    User.objects.filter(pk=person.pk).update(is_active=False)
    refused = client.get("/api/catalog/entities?limit=1")
    assert refused.status_code == 401
    assert "no longer active" in refused.json()["error"]["message"]

    User.objects.filter(pk=person.pk).update(is_active=True)
    client.force_login(person)
    signed_out = str(client.session.session_key)
    client.post("/auth/logout/")
    assert not Session.objects.filter(session_key=signed_out).exists()
    client.cookies[settings.SESSION_COOKIE_NAME] = signed_out
    assert client.get("/api/catalog/entities?limit=1").status_code == 401


def test_a_malformed_session_key_is_nobodys() -> None:
    client = Client()
    client.cookies["sessionid"] = "'; DROP TABLE django_session; --"
    assert client.get("/api/catalog/entities?limit=1").status_code == 401
