"""Fixtures of the whole suite (a devtenant on loopback, Celery workers and tasks run in-process,
the demo and payments catalogs, no rate-limit counts between tests), and `shared_path`, the
one way a test reaches ../shared."""

from __future__ import annotations

import http.server
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

from access.authz import denials_forget
from access.gateway import gateway_forget
from access.viewers import viewers_forget_all
from catalog.services import location_refresh, location_register
from portal.celery import app as celery_app
from tests.helpers import ALAN, PAYMENTS, DevTenant, own_role
from tests.worker import StartWorker, Worker

# ../shared stands beside the checkout: Backstage's example descriptors (conformance/) that the
# catalog must judge as Backstage does, and the spec. CI always has it; a clone elsewhere may not.
SHARED = Path(__file__).resolve().parents[2] / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared. When it is missing the calling test is skipped, saying so, unless
    the environment variable CI is set: there a missing corpus fails the test, so CI never
    passes by testing less."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = (
            f"{path} is missing: ../shared (the conformance corpus beside the checkout) "
            "is needed by this test"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{message}, and CI is set", pytrace=False)
        pytest.skip(f"{message}; skipped outside CI (CI unset)")
    return path


@pytest.fixture(autouse=True)
def _rate_limits_forgotten() -> None:
    """Each test starts with nothing counted against the rate limits, whatever ran before it."""
    counters = caches["ratelimit"]
    if isinstance(counters, RedisCache):
        # Only the counters' keys: flushing the database would take the broker's queues too.
        with redis.Redis.from_url(settings.CACHES["ratelimit"]["LOCATION"]) as server:
            stale = list(server.scan_iter(match=counters.make_key("*")))
            if stale:
                server.delete(*stale)
    else:
        counters.clear()


@pytest.fixture(autouse=True)
def _viewers_forgotten() -> None:
    """Each test starts with no viewer kept by another (or by an earlier run whose database had
    the same ids): access.viewers keeps them in Redis, which outlives the test database."""
    viewers_forget_all()
    gateway_forget()  # and the gateways' routes and holdings this process kept
    denials_forget()


@pytest.fixture(scope="session")
def devtenant_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTenant]:
    tenant = DevTenant(tmp_path_factory.mktemp("devtenant"))
    yield tenant
    tenant.stop()


@pytest.fixture
def devtenant(devtenant_process: DevTenant, settings: Any) -> DevTenant:
    """The devtenant, freshly seeded with the demo, and the portal pointed at it."""
    settings.AUTH0_ISSUER = devtenant_process.issuer
    devtenant_process.reset(portal_base_url=settings.PORTAL_BASE_URL)
    # Each test starts with the portal knowing nothing of the tenant's keys.
    cache.delete_many([f"atrium:jwks:{devtenant_process.issuer}",
                       f"atrium:jwks:{devtenant_process.issuer}:refetch"])  # fmt: skip
    return devtenant_process


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[StartWorker]:
    """Start real Celery workers for a test; each is stopped when the test ends."""
    workers: list[Worker] = []

    def start(*, broker_url: str, env: dict[str, str] | None = None) -> Worker:
        log = tmp_path / f"worker-{len(workers)}.log"
        worker = Worker(broker_url=broker_url, var_dir=tmp_path / "var", log=log, env=env)
        workers.append(worker)
        worker.wait_until_ready()
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def demo_catalog() -> None:
    """The demo catalog `make run` shows (demo/catalog/), ingested."""
    from portal.management.commands.seed_demo import DEMO_CATALOG

    location_refresh(
        location=location_register(
            target=str(DEMO_CATALOG), allow_kinds=["User", "Group"], allow_routes=True
        )
    )


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Tasks run in-process when queued, so a test sees their whole effect (the worker test
    runs them in a real worker)."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def payments(tmp_path: Path) -> None:
    """The payments entities and people, with team-payments owning the payments roles."""
    own_role("payments.viewer", "team-payments")
    own_role("payments.admin", "team-payments")
    (tmp_path / "payments.yaml").write_text(PAYMENTS + "---\n" + ALAN)
    location_refresh(
        location=location_register(
            target=str(tmp_path / "payments.yaml"), allow_kinds=["User", "Group"]
        )
    )


@pytest.fixture
def slack(settings: Any) -> Iterator[list[dict[str, Any]]]:
    """A Slack incoming webhook on loopback, set as SLACK_WEBHOOK_URL: what it heard."""
    heard: list[dict[str, Any]] = []

    class Webhook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            heard.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.SLACK_WEBHOOK_URL = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield heard
    server.shutdown()
