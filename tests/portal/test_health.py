"""The probes: /healthz says the process answers, /readyz says what it depends on answers;
/healthz/details tells admins the rest."""

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from access.models import RoleSyncRun
from portal.celery import app as celery_app
from tests.helpers import signed_in


def test_healthz_answers_without_touching_the_database(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_200_when_database_and_broker_answer(client: Client) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert body["down"] == []
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"] == "ok"
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_readyz_is_503_and_names_an_unreachable_broker(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens on port 1: the connection is refused at once.
    monkeypatch.setattr(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["down"] == ["broker"]
    assert body["checks"]["broker"].startswith("down:")
    assert body["checks"]["database"] == "ok"
    assert "127.0.0.1:1" not in response.content.decode(), "details belong in the log"


@pytest.mark.django_db
def test_probes_answer_whatever_the_host_header(client: Client) -> None:
    # Container health checks call the process by an internal name that ALLOWED_HOSTS lacks.
    assert client.get("/readyz", HTTP_HOST="10.0.0.7:8000").status_code == 200
    assert client.head("/healthz", HTTP_HOST="web:8000").status_code == 200
    assert client.get("/", HTTP_HOST="web:8000").status_code == 400


def stale_mirror(settings: Any) -> None:
    """A mirror last synced 950 s ago, three intervals of 300 s being 900."""
    settings.ROLE_SYNC_INTERVAL = 300
    RoleSyncRun.objects.create(
        started_at=timezone.now() - timedelta(seconds=1000),
        finished_at=timezone.now() - timedelta(seconds=950),
        outcome=RoleSyncRun.Outcome.OK,
        api_calls=4,
    )


@pytest.mark.django_db
def test_a_stale_roles_mirror_leaves_readyz_200(client: Client, settings: Any) -> None:
    # Wrong Management API credentials stop the sync, not the pages: web must not be restarted.
    stale_mirror(settings)

    response = client.get("/readyz")

    assert response.status_code == 200, response.json()
    assert "roles mirror" not in response.json()["checks"]
    assert response.json()["down"] == []


@pytest.mark.django_db
def test_details_tell_admins_the_mirror_is_stale_and_how_the_last_sync_went(
    settings: Any,
) -> None:
    stale_mirror(settings)

    response = signed_in("linus@example.com", settings.PORTAL_ADMIN_ROLE).get("/healthz/details")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"] == "ok"
    assert body["roles_mirror"]["stale"] is True
    assert 940 <= body["roles_mirror"]["age_seconds"] <= 1000
    assert body["roles_mirror"]["stale_after_seconds"] == 900
    assert "last synced" in body["roles_mirror"]["stale_reason"]
    assert body["last_sync"]["outcome"] == "ok"
    assert body["last_sync"]["api_calls"] == 4
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_details_name_the_broker_error_for_admins(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")

    body = signed_in("linus@example.com", settings.PORTAL_ADMIN_ROLE).get("/healthz/details")

    assert body.json()["status"] == "degraded"
    assert body.json()["checks"]["broker"].startswith("down: ")
    assert body.json()["roles_mirror"]["stale"] is False
    assert body.json()["last_sync"] is None


@pytest.mark.django_db
def test_details_are_for_portal_admins_only(client: Client) -> None:
    anonymous = client.get("/healthz/details")
    engineer = signed_in("ada@example.com", "engineer").get("/healthz/details")

    assert anonymous.status_code == 401
    assert engineer.status_code == 403
    assert "roles_mirror" not in anonymous.json() and "roles_mirror" not in engineer.json()
