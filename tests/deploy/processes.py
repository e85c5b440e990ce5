"""The servers a proxy test runs beside the portal (gunicorn, Caddy, NGINX): started in their
own process groups with a log each, waited for, and stopped whatever the test did."""

from __future__ import annotations

import http.client
import os
import signal
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.deploy.compose import ROOT

Processes = dict[str, subprocess.Popen[bytes]]


def processes_start(commands: dict[str, tuple[list[str], dict[str, str]]], logs: Path) -> Processes:
    """Each (command, environment) by name, its output in `logs`/<name>.log."""
    return {
        name: subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=(logs / f"{name}.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        for name, (command, env) in commands.items()
    }


def wait_for(
    what: str, check: Callable[[], object], processes: Processes, logs: Path, timeout: float = 60
) -> None:
    """Until `check()` is true; fails with every log when a process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        for name, process in processes.items():
            if process.poll() is not None:
                pytest.fail(f"{name} exited:\n{(logs / f'{name}.log').read_text()}")
        try:
            if check():
                return
        except (OSError, ssl.SSLError, http.client.HTTPException):
            pass
        if time.monotonic() > deadline:
            pytest.fail(
                f"{what} within {timeout}s:\n"
                + "\n".join((logs / f"{name}.log").read_text() for name in processes)
            )
        time.sleep(0.2)


def processes_stop(processes: Processes) -> None:
    """SIGTERM to each group, then SIGKILL to any that has not gone within 20 seconds."""
    for process in processes.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
