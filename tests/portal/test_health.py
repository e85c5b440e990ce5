"""The probes: /healthz says the process answers, /readyz says what it depends on answers."""

import pytest
from django.test import Client

from portal.celery import app as celery_app


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
