"""What `make run` starts (the Procfile under honcho) serves the portal with no servers at all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from devtenant.process import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.integration


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_web_worker_and_beat_start_without_a_database_or_broker_server(tmp_path: Path) -> None:
    port = free_port()
    # As on a fresh machine: no DATABASE_URL or REDIS_URL, so SQLite and the filesystem broker.
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}
    }
    devtenant_port = free_port()
    environment.update(
        DEBUG="true",
        ATRIUM_VAR_DIR=str(tmp_path / "var"),
        PORT=str(port),
        DEVTENANT_PORT=str(devtenant_port),
        PORTAL_BASE_URL=f"http://127.0.0.1:{port}",
        PATH=f"{BIN}{os.pathsep}{environment.get('PATH', '')}",
    )
    for command in (["migrate", "--no-input", "-v0"], ["seed_demo"]):
        subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT, env=environment, check=True, timeout=120,
        )  # fmt: skip
    log = tmp_path / "honcho.log"
    honcho = subprocess.Popen(
        [str(BIN / "honcho"), "start", "-f", "Procfile"],
        cwd=ROOT, env=environment, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        status, body = 0, b""
        while time.monotonic() < deadline:
            try:
                status, body = get(f"http://127.0.0.1:{port}/readyz")
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        assert status == 200, f"/readyz did not answer 200 within 60s:\n{log.read_text()}"
        assert json.loads(body)["checks"] == {
            "database": "ok",
            "broker": "ok",
        }
        home_status, home = get(f"http://127.0.0.1:{port}/")
        assert home_status == 200
        assert b"developer portal" in home
        output = log.read_text()
        assert "worker.1 started" in output
        assert "beat.1 started" in output
        # The devtenant answers as the portal's issuer, with the demo people seeded.
        sign_in = get(f"http://127.0.0.1:{port}/auth/login/")
        assert sign_in[0] == 200
        assert b"Log in to Atrium" in sign_in[1]
    finally:
        # One Ctrl-C stops everything.
        honcho.send_signal(signal.SIGINT)
        try:
            honcho.wait(timeout=30)
        finally:
            if honcho.poll() is None:
                os.killpg(honcho.pid, signal.SIGKILL)
    assert honcho.returncode is not None
    survivors = subprocess.run(
        ["pgrep", "-s", str(honcho.pid)], capture_output=True, text=True
    ).stdout.split()
    assert survivors == [], f"processes left running after Ctrl-C: {survivors}"
