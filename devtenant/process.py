"""The devtenant run as a process of its own on a free loopback port, for the tests and the
benchmarks: started, waited for, asked over real HTTP like an Auth0 tenant, stopped."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class DevTenantProcess:
    """`python -m devtenant` with its state and log in `state_dir`. `timeout` bounds each
    admin call (seeding a large tenant takes a while)."""

    def __init__(self, state_dir: Path, *, port: int | None = None, timeout: float = 10) -> None:
        self.port = port or free_port()
        self.issuer = f"http://127.0.0.1:{self.port}/"
        self.log = state_dir / "devtenant.log"
        self.state_path = state_dir / "devtenant.json"
        self.timeout = timeout
        self.http = requests.Session()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devtenant", "--port", str(self.port),
             "--state", str(self.state_path)],
            cwd=ROOT, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.http.get(self.url(".well-known/jwks.json"), timeout=1)
                return
            except requests.ConnectionError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"the devtenant did not start:\n{self.log.read_text()}")

    def url(self, path: str) -> str:
        return self.issuer + path.lstrip("/")

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.http.post(self.url(f"__admin/{path}"), json=body or {},
                                  timeout=self.timeout)  # fmt: skip
        response.raise_for_status()
        return response.json()

    def block(self, email: str, *, blocked: bool = True) -> None:
        """Block (or unblock) a user, as Auth0's dashboard does."""
        response = self.http.patch(self.url(f"__admin/users/{email}"), json={"blocked": blocked},
                                   timeout=self.timeout)  # fmt: skip
        response.raise_for_status()

    def delete_user(self, email: str) -> None:
        response = self.http.delete(self.url(f"__admin/users/{email}"), timeout=self.timeout)
        response.raise_for_status()

    def _get(self, path: str) -> Any:
        response = self.http.get(self.url(path), timeout=self.timeout)
        response.raise_for_status()
        return response.json()

    def state(self) -> dict[str, Any]:
        """Users, roles and assignments as the tenant holds them."""
        state: dict[str, Any] = self._get("__admin/state")
        return state

    def requests_log(self) -> list[dict[str, Any]]:
        """The Management API requests answered so far, oldest first."""
        log: list[dict[str, Any]] = self._get("__admin/requests")
        return log

    def token(self, **form: str) -> str:
        """An access token from the tenant's token endpoint, for any grant."""
        response = self.http.post(self.url("oauth/token"), data=form, timeout=self.timeout)
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def stop(self) -> None:
        self.http.close()
        self.process.terminate()
        self.process.wait(timeout=10)
