"""A real NGINX (Debian's) in front of an upstream, asking the portal's `/authz/` with
`auth_request`, as README's "Gateways" snippet has it: no token, a token without the role, a
grant approved, a grant revoked, with the same JWT throughout."""

from __future__ import annotations

import http.client
import http.server
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings

from access.models import AccessRequest
from devtenant.process import free_port
from tests.deploy.compose import ROOT
from tests.helpers import DevTenant, ask, gateway_token, payments_with_routes, person_of_tenant
from tests.worker import auth0_env, database_url

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

HOST = "payments.internal.example"
BIN = Path(sys.executable).parent

# README's NGINX snippet as `make run`'s demo uses it, with this test's ports.
NGINX_CONF = ROOT / "docs" / "gateways" / "nginx.conf"


def nginx_conf(*, port: int, upstream: int, portal: int) -> str:
    text = NGINX_CONF.read_text()
    for demo, ours in (("127.0.0.1:8080", port), ("127.0.0.1:9000", upstream),
                       ("127.0.0.1:8000", portal)):  # fmt: skip
        assert demo in text, demo
        text = text.replace(demo, f"127.0.0.1:{ours}")
    return text


@dataclass
class Upstream:
    """The payments service: answers 200 with what it was told of the caller."""

    port: int
    seen: list[dict[str, str]] = field(default_factory=list)


@dataclass
class Edge:
    port: int
    upstream: Upstream

    def get(self, path: str, token: str | None = None) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Host": HOST}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.body = response.read()  # type: ignore[attr-defined]
        connection.close()
        return response


def _upstream() -> tuple[Upstream, http.server.ThreadingHTTPServer]:
    upstream = Upstream(port=0)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            upstream.seen.append(
                {
                    name: self.headers.get(name, "")
                    for name in ("X-Atrium-Subject", "X-Atrium-Roles")
                }
            )
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"payments upstream\n")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    upstream.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return upstream, server


def _wait(what: str, check: Any, processes: dict[str, subprocess.Popen[bytes]], logs: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                pytest.fail(f"{name} exited:\n{(logs / f'{name}.log').read_text()}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{what}:\n" + "\n".join((logs / f"{n}.log").read_text() for n in processes))


@pytest.fixture
def edge(tmp_path: Path, devtenant: DevTenant, settings: Any) -> Iterator[Edge]:
    if shutil.which("nginx") is None:
        pytest.fail("this test runs Debian's NGINX: apt-get install -y nginx", pytrace=False)
    upstream, upstream_server = _upstream()
    web_port, nginx_port = free_port(), free_port()
    (tmp_path / "nginx.conf").write_text(
        nginx_conf(port=nginx_port, upstream=upstream.port, portal=web_port)
    )
    web_env = {
        **os.environ,
        **auth0_env(settings),
        "DEBUG": "true",
        "DATABASE_URL": database_url(),
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "ATRIUM_VAR_DIR": str(tmp_path / "var"),
        "ATRIUM_ENV_FILE": str(tmp_path / "no.env"),
    }
    commands = {
        "web": (
            [
                str(BIN / "gunicorn"),
                "portal.wsgi",
                f"--bind=127.0.0.1:{web_port}",
                "--workers=2",
                "--access-logfile=-",
            ],
            web_env,
        ),  # fmt: skip
        "nginx": (
            [
                "nginx",
                "-p",
                str(tmp_path),
                "-c",
                str(tmp_path / "nginx.conf"),
                "-e",
                str(tmp_path / "error.log"),
            ],
            {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/bin")},
        ),  # fmt: skip
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}
    for name, (command, env) in commands.items():
        processes[name] = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=(tmp_path / f"{name}.log").open("wb"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    up = Edge(nginx_port, upstream)
    try:
        _wait("the portal and NGINX did not answer", lambda: up.get("/v1/orders").status == 401,
              processes, tmp_path)  # fmt: skip
        yield up
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        upstream_server.shutdown()


@pytest.fixture
def routes(tmp_path: Path, devtenant: DevTenant) -> None:
    (tmp_path / "catalog").mkdir()
    payments_with_routes(tmp_path / "catalog")


def test_nginx_lets_ada_through_only_while_her_grant_is_active(
    routes: None, devtenant: DevTenant, edge: Edge, eager_tasks: None
) -> None:
    ada, as_ada = person_of_tenant(devtenant, "ada@example.com")
    _, as_grace = person_of_tenant(devtenant, "grace@example.com")
    token = gateway_token(devtenant, "ada@example.com")

    anonymous = edge.get("/v1/orders")
    assert anonymous.status == 401
    assert anonymous.headers["WWW-Authenticate"].startswith('Bearer realm="atrium"')
    assert edge.get("/v1/orders", token).status == 403
    assert edge.upstream.seen == []

    ask(as_ada)
    request = AccessRequest.objects.get()
    as_grace.post(f"/access/approvals/{request.pk}/", {"outcome": "approved"})
    request.refresh_from_db()
    assert request.state == AccessRequest.State.ACTIVE

    allowed = edge.get("/v1/orders?page=1", token)
    assert allowed.status == 200
    assert allowed.body == b"payments upstream\n"  # type: ignore[attr-defined]
    assert edge.upstream.seen == [
        {"X-Atrium-Subject": ada.sub, "X-Atrium-Roles": "payments.viewer"}
    ]

    as_grace.post(f"/access/requests/{request.pk}/revoke/")
    revoked_at = time.monotonic()
    request.refresh_from_db()
    assert request.state == AccessRequest.State.REVOKED
    # The same JWT, still valid for an hour: refused within a second of the revocation.
    while (status := edge.get("/v1/orders", token).status) == 200:
        assert time.monotonic() - revoked_at < 1.0, "still let through a second after revocation"
    assert status == 403
    assert len(edge.upstream.seen) == 1


def test_the_gateway_answers_in_its_own_name_whatever_the_portal_s_host(
    routes: None, edge: Edge
) -> None:
    # The portal's ALLOWED_HOSTS do not name 127.0.0.1:<port> of NGINX's subrequest's Host in
    # production; the decision is answered before host validation.
    assert HOST not in django_settings.ALLOWED_HOSTS
    assert edge.get("/v2/anything").status == 403
