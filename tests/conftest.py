"""Fixtures shared by the whole suite: a devtenant running as its own process, on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.cache import cache

from devtenant.demo import demo_tenant

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class DevTenant:
    """A `python -m devtenant` process, reached over real HTTP like an Auth0 tenant."""

    def __init__(self, state_dir: Path) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}/"
        self.log = state_dir / "devtenant.log"
        self.state_path = state_dir / "devtenant.json"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devtenant", "--port", str(self.port),
             "--state", str(self.state_path)],
            cwd=ROOT, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(self.url(".well-known/jwks.json"), timeout=1)
                return
            except requests.ConnectionError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        raise RuntimeError(f"the devtenant did not start:\n{self.log.read_text()}")

    def url(self, path: str) -> str:
        return self.issuer + path.lstrip("/")

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = requests.post(self.url(f"__admin/{path}"), json=body or {}, timeout=10)
        response.raise_for_status()
        return response.json()

    def token(self, **form: str) -> str:
        """An access token from the tenant's token endpoint, for any grant."""
        response = requests.post(self.url("oauth/token"), data=form, timeout=10)
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    def reset(self, *, portal_base_url: str) -> None:
        """An empty tenant, then the demo tenant with the portal's URLs registered."""
        self.admin("reset")
        self.admin("seed", demo_tenant(portal_base_url=portal_base_url))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


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
