"""A real NGINX (Debian's) in front of an upstream, asking the portal's `/authz/` with
`auth_request`, as README's "Gateways" snippet has it: no token, a token without the role, a
grant approved, a grant revoked, with the same JWT throughout."""

from __future__ import annotations

import http.client
import http.server
import os
import shutil
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
from tests.deploy.processes import processes_start, processes_stop, wait_for
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

    def get(
        self, path: str, token: str | None = None, *, host: str = HOST
    ) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Host": host}
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
    processes = processes_start(commands, tmp_path)
    up = Edge(nginx_port, upstream)
    try:
        wait_for("the portal and NGINX did not answer", lambda: up.get("/v1/orders").status == 401,
              processes, tmp_path)  # fmt: skip
        yield up
    finally:
        processes_stop(processes)
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


# Another team's site, open to any valid token for the payments audience, on its own host and
# on the payments host.
DOCS_SITE = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: docs-site
  annotations:
    atrium.dev/gateway-routes: >-
      docs.internal.example/*, GET payments.internal.example/docs/*
    atrium.dev/audience: https://payments.internal.example/api
spec: {type: website, lifecycle: production, owner: team-payments}
"""


def test_nginx_passes_no_request_to_payments_under_another_route_s_host_or_path(
    routes: None, devtenant: DevTenant, edge: Edge, tmp_path: Path
) -> None:
    from catalog.services import location_refresh, location_register

    (tmp_path / "docs.yaml").write_text(DOCS_SITE)
    location_refresh(
        location=location_register(target=str(tmp_path / "docs.yaml"), allow_routes=True)
    )
    person_of_tenant(devtenant, "ada@example.com")
    token = gateway_token(devtenant, "ada@example.com")  # Ada holds no payments role
    assert edge.get("/docs/guide", token).status == 200
    assert len(edge.upstream.seen) == 1

    # The payments server is NGINX's only one, so it takes any Host: the decision is about
    # the upstream it proxies to, not about the host the client named.
    assert edge.get("/v1/orders", token, host="docs.internal.example").status == 403
    # Tomcat or Spring behind it would serve /admin/refunds.
    assert edge.get("/docs/..;/admin/refunds", token).status == 403
    assert len(edge.upstream.seen) == 1
