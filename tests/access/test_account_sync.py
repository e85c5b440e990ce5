"""A person blocked or deleted in Auth0 is signed out at their next request after the sync
sees it, and let back in once unblocked; an Auth0 that fails changes nothing. Against the
devtenant over real HTTP."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from access.auth0 import Directory
from access.models import AuditEvent, RoleSyncRun
from access.sync import roles_sync
from portal.models import User
from tests.helpers import DevTenant
from tests.portal.auth_helpers import answer_at_tenant, sign_in, start_sign_in

pytestmark = pytest.mark.django_db


def signed_in_client(email: str) -> Client:
    client = Client()
    attempt = sign_in(client, email, next_path="/access/")
    assert attempt.response is not None and attempt.response.status_code == 302
    assert client.get("/access/").status_code == 200
    return client


def account_reads(devtenant: DevTenant) -> list[str]:
    """The users whose account the sync asked Auth0 for (GET /api/v2/users/{id})."""
    return [
        r["path"].rsplit("/", 1)[1]
        for r in devtenant.requests_log()
        if r["method"] == "GET" and r["path"].count("/") == 4 and "/users/" in r["path"]
    ]


def test_a_person_blocked_in_auth0_is_signed_out_at_their_next_request(
    devtenant: DevTenant,
) -> None:
    ada = signed_in_client("ada@example.com")
    grace = signed_in_client("grace@example.com")
    devtenant.block("ada@example.com")

    report = roles_sync()

    assert report.outcome == RoleSyncRun.Outcome.OK, report.run.message
    person = User.objects.get(email="ada@example.com")
    assert (person.is_active, person.auth0_state) == (False, "blocked")
    event = AuditEvent.objects.get(action="user.deactivated")
    assert (event.target, event.detail["reason"], event.via) == (
        person.sub,
        "blocked in Auth0",
        "sync",
    )
    response = ada.get("/access/")
    assert response.status_code == 302 and response["Location"].startswith("/auth/login/")
    assert "your account is blocked in Auth0" in ada.get("/").content.decode()
    assert "_auth_user_id" not in ada.session  # flushed, so it cannot resume later
    assert grace.get("/access/").status_code == 200  # nobody else is touched
    # The API by that session answers 401 as well.
    api = Client()
    sign_in(api, "grace@example.com")
    devtenant.block("grace@example.com")
    roles_sync()
    assert api.get("/api/access/me").status_code == 401


def test_a_person_deleted_in_auth0_is_signed_out_too(devtenant: DevTenant) -> None:
    ada = signed_in_client("ada@example.com")
    devtenant.delete_user("ada@example.com")

    report = roles_sync()

    assert report.deactivated == [(User.objects.get(email="ada@example.com").sub, "deleted")]
    assert ada.get("/access/").status_code == 302
    assert "your account no longer exists in Auth0" in ada.get("/").content.decode()


def test_an_unblocked_person_is_let_back_in_by_a_later_sync(devtenant: DevTenant) -> None:
    signed_in_client("ada@example.com")
    devtenant.block("ada@example.com")
    roles_sync()
    devtenant.block("ada@example.com", blocked=False)

    roles_sync()

    person = User.objects.get(email="ada@example.com")
    assert (person.is_active, person.auth0_state) == (True, "")
    assert AuditEvent.objects.get(action="user.reactivated").detail == {
        "reason": "unblocked in Auth0"
    }
    assert signed_in_client("ada@example.com").get("/access/").status_code == 200


def test_a_blocked_person_is_refused_at_sign_in_while_the_portal_holds_them_blocked(
    devtenant: DevTenant,
) -> None:
    signed_in_client("ada@example.com")
    devtenant.block("ada@example.com")
    roles_sync()
    # Auth0 unblocked her, but the portal has not looked again yet.
    devtenant.block("ada@example.com", blocked=False)
    client = Client()

    attempt = answer_at_tenant(start_sign_in(client), "ada@example.com")
    response = client.get(attempt.callback_path)

    assert response.status_code == 403
    page = response.content.decode()
    assert "Your account is blocked" in page
    assert "at its next check (every 5 minutes)" in page
    assert "_auth_user_id" not in client.session


def test_a_person_an_admin_deactivated_is_refused_and_kept_out_by_the_sync(
    devtenant: DevTenant,
) -> None:
    signed_in_client("ada@example.com")
    User.objects.filter(email="ada@example.com").update(is_active=False)
    client = Client()

    attempt = answer_at_tenant(start_sign_in(client), "ada@example.com")
    response = client.get(attempt.callback_path)
    roles_sync()

    assert response.status_code == 403
    assert "A portal admin has deactivated your account" in response.content.decode()
    assert User.objects.get(email="ada@example.com").is_active is False


def test_only_people_who_may_hold_a_live_session_are_asked_about(
    devtenant: DevTenant, settings: Any
) -> None:
    signed_in_client("ada@example.com")
    signed_in_client("grace@example.com")
    User.objects.filter(email="grace@example.com").update(
        last_login=timezone.now() - settings.SESSION_LIFETIME - timedelta(minutes=1)
    )
    before = len(account_reads(devtenant))

    report = roles_sync()

    asked = account_reads(devtenant)[before:]
    ada = User.objects.get(email="ada@example.com")
    # linus never signed in here; grace did, but longer ago than any session lasts.
    assert asked == [ada.sub]
    assert report.accounts_checked == 1


@pytest.mark.parametrize("fault", [{"status": 503}, {"delay": 2}])
def test_an_auth0_that_fails_signs_nobody_out(
    devtenant: DevTenant, settings: Any, fault: dict[str, Any]
) -> None:
    ada = signed_in_client("ada@example.com")
    devtenant.block("ada@example.com")
    devtenant.admin("faults", {"method": "GET", "path": "/api/v2/users/*", **fault})

    report = roles_sync(directory=Directory(retries=1, timeout=0.5, sleep=lambda _: None))

    assert report.outcome == RoleSyncRun.Outcome.FAILED
    assert "/api/v2/users/" in report.run.message
    assert User.objects.get(email="ada@example.com").is_active
    assert not AuditEvent.objects.filter(action="user.deactivated").exists()
    assert ada.get("/access/").status_code == 200


def test_a_mass_shut_out_waits_for_force(devtenant: DevTenant, settings: Any) -> None:
    settings.ROLE_SYNC_BREAKER_MINIMUM = 1
    settings.ADMINS = []
    ada = signed_in_client("ada@example.com")
    signed_in_client("grace@example.com")
    devtenant.block("ada@example.com")

    stopped = roles_sync()

    assert stopped.outcome == RoleSyncRun.Outcome.BLOCKED
    assert "1 of the 2 people who signed in lately are blocked" in stopped.run.message
    assert User.objects.get(email="ada@example.com").is_active
    assert ada.get("/access/").status_code == 200

    forced = roles_sync(force=True)

    assert forced.outcome == RoleSyncRun.Outcome.OK
    assert not User.objects.get(email="ada@example.com").is_active


def test_sync_roles_prints_who_was_shut_out(devtenant: DevTenant, capsys: Any) -> None:
    signed_in_client("ada@example.com")
    devtenant.block("ada@example.com")

    call_command("sync_roles")

    out = capsys.readouterr().out
    sub = User.objects.get(email="ada@example.com").sub
    assert f"x {sub} is blocked in Auth0: signed out at their next request" in out
    assert "1 accounts checked" in out
