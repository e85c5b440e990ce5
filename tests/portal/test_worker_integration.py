"""A real Celery worker, started as `make run` starts it, runs a task that writes the database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection
from kombu import Connection, Queue

from portal.celery import app as celery_app
from portal.models import WorkerHeartbeat

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_database_url() -> str:
    """The URL of the database this test runs on, for the worker to use the same one."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    credentials = quote(db["USER"] or "")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"])
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{credentials}@{host}/{db['NAME']}"


test_database_url.__test__ = False  # type: ignore[attr-defined]


class Worker:
    def __init__(
        self, *, broker_url: str, var_dir: Path, log: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = f"itest-{uuid.uuid4().hex[:8]}@localhost"
        # A queue of its own, so no other worker on the same broker can take the message.
        self.queue = f"itest-{uuid.uuid4().hex}"
        environment = {
            **os.environ,
            "DEBUG": "true",
            "DATABASE_URL": test_database_url(),
            "CELERY_BROKER_URL": broker_url,
            "ATRIUM_VAR_DIR": str(var_dir),
            # Tasks the worker itself queues (a reconciler's) stay on its own queue too.
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
            **(env or {}),
        }
        self.log = log
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "portal", "worker",
                "--pool=solo", "--without-mingle", "--without-gossip", "--loglevel=INFO",
                "-n", self.name, "-Q", self.queue,
            ],
            cwd=ROOT,
            env=environment,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_until_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the worker exited with {self.process.returncode}:\n{self.output()}")
            if " ready." in self.output():
                return
            time.sleep(0.2)
        pytest.fail(f"the worker was not ready within {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


StartWorker = Callable[..., Worker]


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[StartWorker]:
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


def auth0_env(settings: Any) -> dict[str, str]:
    """What a worker needs to reach the same Auth0 (the devtenant) as the tests' portal."""
    return {
        "AUTH0_ISSUER_URL": settings.AUTH0_ISSUER,
        "AUTH0_CLIENT_ID": settings.AUTH0_CLIENT_ID,
        "AUTH0_CLIENT_SECRET": settings.AUTH0_CLIENT_SECRET,
        "AUTH0_AUDIENCE": settings.AUTH0_AUDIENCE,
        "PORTAL_BASE_URL": settings.PORTAL_BASE_URL,
    }


@contextmanager
def access_tasks_on(queue: str) -> Iterator[None]:
    """Route the portal's access tasks to one worker's own queue while the block runs."""

    def reroute(routes: dict[str, Any] | None) -> None:
        celery_app.conf.task_routes = routes
        celery_app.amqp.flush_routes()
        celery_app.amqp.__dict__.pop("router", None)  # the router keeps the old table

    reroute({"access.tasks.*": {"queue": queue}})
    try:
        yield
    finally:
        reroute(None)


def send_heartbeat_task(broker: Connection, queue: str) -> None:
    celery_app.send_task(
        "portal.tasks.worker_heartbeat_record_task",
        queue=queue,
        connection=broker,
        declare=[Queue(queue)],
    )


def wait_for_heartbeat(worker: Worker, timeout: float = 30) -> WorkerHeartbeat:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        heartbeat = WorkerHeartbeat.objects.filter(hostname=worker.name).first()
        if heartbeat is not None:
            return heartbeat
        time.sleep(0.2)
    pytest.fail(f"the worker did not record its heartbeat within {timeout}s:\n{worker.output()}")


def test_a_worker_on_redis_runs_a_task_that_writes_the_database(start_worker: StartWorker) -> None:
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        pytest.skip("set REDIS_URL to run the worker against Redis (CI does)")
    worker = start_worker(broker_url=redis_url)

    with Connection(redis_url) as broker:
        send_heartbeat_task(broker, worker.queue)

    heartbeat = wait_for_heartbeat(worker)
    assert heartbeat.hostname == worker.name
    assert "succeeded" in worker.output()


def test_a_worker_on_the_filesystem_broker_needs_no_server(
    start_worker: StartWorker, tmp_path: Path
) -> None:
    worker = start_worker(broker_url="filesystem://")
    folder = str(tmp_path / "var" / "broker" / "queue")

    with Connection(
        "filesystem://", transport_options={"data_folder_in": folder, "data_folder_out": folder}
    ) as broker:
        send_heartbeat_task(broker, worker.queue)

    heartbeat = wait_for_heartbeat(worker)
    assert heartbeat.hostname == worker.name
    assert "succeeded" in worker.output()
