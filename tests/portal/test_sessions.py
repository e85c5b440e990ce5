"""Sessions end when idle and when too old: the person is signed out and told why."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from portal.middleware import SEEN_AT, SIGNED_IN_AT
from portal.models import User
from tests.helpers import DevTenant, load_settings
from tests.portal.auth_helpers import machine_token, sign_in

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


def test_a_form_sent_after_the_session_ended_starts_over_at_home(ada: Client) -> None:
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
