"""/metrics: refused without its token, and Atrium's numbers as a grant moves to active."""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from access.sync import roles_sync
from portal.celery import app as celery_app
from tests.helpers import DevTenant, ada_asks_grace

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-scrape-token"


@pytest.fixture
def token(settings: Any) -> str:
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(host: str = "testserver") -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of one authorised scrape, by name and labels."""
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", HTTP_HOST=host)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_metrics_are_off_without_a_token_and_refused_without_the_right_one(
    settings: Any,
) -> None:
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404
    settings.METRICS_TOKEN = TOKEN
    for header in ("", "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x"):
        refused = Client().get("/metrics", HTTP_AUTHORIZATION=header)
        assert refused.status_code == 401
        assert b"Authorization: Bearer" in refused.content
        assert b"atrium_" not in refused.content


def test_a_scrape_by_the_internal_address_over_http_is_answered(token: str, settings: Any) -> None:
    # As Prometheus calls web inside the stack: a Host not in ALLOWED_HOSTS, plain http, even
    # behind the proxy's https redirect.
    settings.SECURE_SSL_REDIRECT = True
    samples = scrape(host="web:8000")
    assert value(samples, "atrium_metrics_errors", part="requests") == 0
    # django-prometheus' request metrics are there too, counting this process' requests.
    seen = value(samples, "django_http_requests_before_middlewares_total")
    assert value(scrape(), "django_http_requests_before_middlewares_total") == seen + 1


def test_a_grant_is_seen_moving_from_approved_to_active(
    token: str,
    devtenant: DevTenant,
    payments: None,
    eager_tasks: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    request, as_ada, as_grace = ada_asks_grace(devtenant)
    before = scrape()
    assert value(before, "atrium_access_requests", state="pending") == 1
    assert value(before, "atrium_grants", state="active") == 0
    assert value(before, "atrium_grant_activation_seconds_count") == 0
    limited_before = value(before, "atrium_auth0_rate_limited_total")

    # Auth0 answers the assignment with one 429 first; the client waits and carries it through.
    devtenant.admin(
        "faults", {"method": "POST", "path": "/api/v2/users/*/roles", "status": 429, "times": 1}
    )
    with django_capture_on_commit_callbacks(execute=True):
        as_grace.post(f"/access/approvals/{request.pk}/", {"outcome": "approved"})
    request.refresh_from_db()
    assert request.state == "active"

    after = scrape()
    assert value(after, "atrium_access_requests", state="pending") == 0
    assert value(after, "atrium_grants", state="active") == 1
    assert value(after, "atrium_grants", state="approved") == 0
    assert value(after, "atrium_grant_activation_seconds_count") == 1
    # Approved and active within the same test: well under a minute, counted in that bucket.
    assert value(after, "atrium_grant_activation_seconds_bucket", le="60.0") == 1
    assert 0 < value(after, "atrium_grant_activation_seconds_sum") < 60
    assert value(after, "atrium_auth0_rate_limited_total") == limited_before + 1


def test_the_roles_mirror_and_the_last_sync(token: str, devtenant: DevTenant) -> None:
    before = scrape()
    assert math.isnan(value(before, "atrium_roles_mirror_age_seconds"))  # never synced
    assert value(before, "atrium_role_sync_last_outcome", outcome="ok") == 0
    report = roles_sync()
    after = scrape()
    assert value(after, "atrium_roles_mirror_stale") == 0
    assert 0 <= value(after, "atrium_roles_mirror_age_seconds") < 60
    assert value(after, "atrium_role_sync_last_outcome", outcome="ok") == 1
    assert value(after, "atrium_role_sync_last_outcome", outcome="failed") == 0
    assert value(after, "atrium_role_sync_last_api_calls") == report.api_calls > 0


def test_the_queue_depth_is_read_from_redis(token: str, settings: Any) -> None:
    assert django_settings.CELERY_BROKER_URL.startswith("redis://")
    queue = f"metrics-test-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    try:
        assert value(scrape(), "atrium_celery_queue_length", queue=queue) == 0
        for _ in range(3):
            celery_app.send_task("portal.tasks.worker_heartbeat_record_task", queue=queue)
        assert broker.llen(queue) == 3
        assert value(scrape(), "atrium_celery_queue_length", queue=queue) == 3
    finally:
        broker.delete(queue)


def test_catalog_refreshes_are_timed_and_their_problems_counted(
    token: str,
    payments: None,
    tmp_path: Any,
) -> None:
    target = str(tmp_path / "payments.yaml")
    samples = scrape()
    assert value(samples, "atrium_catalog_location_problems", location=target) == 0
    assert value(samples, "atrium_catalog_location_failed", location=target) == 0
    took = value(samples, "atrium_catalog_location_last_refresh_duration_seconds", location=target)
    assert 0 < took < 30
