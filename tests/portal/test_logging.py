"""Log lines as JSON, each carrying its request id and the grant or sync it belongs to."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from portal.logs import ContextFilter, JsonFormatter, correlation_id
from tests.helpers import DevTenant, ada_asks_grace

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The root logger also writing JSON lines, as LOG_FORMAT=json configures it, to a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    # A service called straight from an earlier test (no request, no task) leaves its grant
    # named in this thread, as a management command does in its process.
    start = correlation_id.set("")
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        correlation_id.reset(start)


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_log_format_json_makes_every_line_a_json_object() -> None:
    env = {**os.environ, "DEBUG": "true", "LOG_FORMAT": "json"}
    code = "import logging; logging.getLogger('atrium.test').warning('hello %s', 'there')"
    run = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    line = json.loads(run.stderr.strip().splitlines()[-1])
    assert line["level"] == "WARNING" and line["logger"] == "atrium.test"
    assert line["message"] == "hello there"
    assert line["time"].endswith("+00:00")


def test_a_wrong_log_format_is_refused_by_name() -> None:
    env = {**os.environ, "DEBUG": "true", "LOG_FORMAT": "xml"}
    run = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode != 0
    assert "LOG_FORMAT='xml' must be text or json" in run.stderr


def test_the_request_id_is_the_proxys_when_sane_and_answered(json_log: io.StringIO) -> None:
    client = Client()
    kept = client.get("/healthz", HTTP_X_REQUEST_ID="caddy-4f2a.91")
    assert kept["X-Request-ID"] == "caddy-4f2a.91"
    for insane in ("", "a b", "x" * 200, "id\u00e9", 'x"}\n{"level":"CRITICAL"'):
        made = client.get("/healthz", HTTP_X_REQUEST_ID=insane)
        assert made["X-Request-ID"] != insane and len(made["X-Request-ID"]) == 32


def test_one_grant_is_followed_from_the_click_to_auth0(
    json_log: io.StringIO,
    devtenant: DevTenant,
    payments: None,
    eager_tasks: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    request, as_ada, as_grace = ada_asks_grace(devtenant)
    with django_capture_on_commit_callbacks(execute=True):
        answer = as_grace.post(
            f"/access/approvals/{request.pk}/", {"outcome": "approved"},
            HTTP_X_REQUEST_ID="click-1",
        )  # fmt: skip
    assert answer["X-Request-ID"] == "click-1"
    request.refresh_from_db()
    assert request.state == "active"

    grant = [
        line for line in lines(json_log) if line.get("correlation_id") == f"grant-{request.pk}"
    ]
    messages = [line["message"] for line in grant]
    assert any(m.startswith(f"request {request.pk}: approved by ") for m in messages)
    assert f"grant {request.pk}: payments.viewer assigned in Auth0" in messages
    assert any(m.startswith(f"grant {request.pk} active until ") for m in messages)
    # The click's line has its request id; the task's (run after the click's transaction, as
    # a worker would) are tied to it by the grant's id, down to the call to Auth0 itself.
    clicked = next(line for line in grant if line["message"].startswith(f"request {request.pk}"))
    assert clicked["request_id"] == "click-1"
    assert clicked["level"] == "INFO" and clicked["logger"] == "access.services"
    assert any(
        line["logger"] == "httpx"
        and line["message"].startswith("HTTP Request: POST ")
        and "/roles" in line["message"]
        for line in grant
    )

    # After the request, nothing carries its ids any more.
    logging.getLogger("atrium.test").warning("afterwards")
    last = lines(json_log)[-1]
    assert last["message"] == "afterwards"
    assert "request_id" not in last and "correlation_id" not in last


def test_a_sync_s_lines_carry_its_correlation_id(
    json_log: io.StringIO, devtenant: DevTenant
) -> None:
    from access.tasks import roles_sync_task

    roles_sync_task.apply()
    from access.models import RoleSyncRun

    run = RoleSyncRun.objects.get()
    done = [line for line in lines(json_log) if line["message"].startswith("roles sync ok")]
    assert [line.get("correlation_id") for line in done] == [f"sync-{run.pk}"]
