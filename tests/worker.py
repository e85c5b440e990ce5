"""A real Celery worker, started as `make run` starts it, on the database the test runs on."""

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

from portal.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[1]


def database_url() -> str:
    """The URL of the database this test runs on, for the worker to use the same one."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    credentials = quote(db["USER"] or "")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"])
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{credentials}@{host}/{db['NAME']}"


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
            "DATABASE_URL": database_url(),
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
