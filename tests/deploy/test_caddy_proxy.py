"""The Compose stack's Caddyfile, run by this machine's Caddy in front of gunicorn: https with a
certificate from Caddy's local CA, http sent to https, and the scheme the portal sees is Caddy's."""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtenant.process import free_port
from tests.deploy.compose import ROOT, compose
from tests.deploy.processes import processes_start, processes_stop, wait_for

pytestmark = pytest.mark.integration

CADDYFILE = ROOT / "deploy" / "caddy" / "Caddyfile"
BIN = Path(sys.executable).parent


@dataclass
class Stack:
    https_port: int
    http_port: int
    admin_port: int
    web_port: int
    ca_root: Path

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_root))


def request(
    port: int,
    path: str,
    *,
    tls: ssl.SSLContext | None = None,
    headers: dict[str, str] | None = None,
) -> http.client.HTTPResponse:
    connection: http.client.HTTPConnection = (
        http.client.HTTPSConnection("localhost", port, context=tls, timeout=10)
        if tls
        else http.client.HTTPConnection("localhost", port, timeout=10)
    )
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    https_port, http_port, admin_port, web_port = (free_port() for _ in range(4))
    web_command = [
        f"--bind=127.0.0.1:{web_port}" if part.startswith("--bind=") else part
        for part in compose()["services"]["web"]["command"]
        if not part.startswith("--workers=")
    ]
    web_command[0] = str(BIN / web_command[0])
    web_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "POSTGRES_"))},
        "DEBUG": "false",
        "SECRET_KEY": "x" * 50,
        "PORTAL_BASE_URL": f"https://localhost:{https_port}",
        "BEHIND_TLS_PROXY": "true",
        "AUTH0_DOMAIN": "acme.eu.auth0.com",
        "AUTH0_CLIENT_ID": "portal-client",
        "AUTH0_CLIENT_SECRET": "portal-secret",
        "ATRIUM_VAR_DIR": str(tmp_path / "var"),
        "ATRIUM_ENV_FILE": str(tmp_path / "no.env"),
    }
    # Caddy's CA and certificates go under tmp, never the home of whoever runs the suite.
    caddy_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path / "home"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "ATRIUM_HOST": "localhost",
        "ATRIUM_UPSTREAM": f"127.0.0.1:{web_port}",
        "CADDY_HTTPS_PORT": str(https_port),
        "CADDY_HTTP_PORT": str(http_port),
        "CADDY_ADMIN": f"127.0.0.1:{admin_port}",
    }
    commands = {
        "web": (web_command, web_env),
        "caddy": (
            ["caddy", "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
            caddy_env,
        ),
    }
    processes = processes_start(commands, tmp_path)
    ca_root = tmp_path / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
    up = Stack(https_port, http_port, admin_port, web_port, ca_root)
    try:
        wait_for(
            "gunicorn did not answer /healthz",
            lambda: request(web_port, "/healthz").status == 200,
            processes, tmp_path,
        )  # fmt: skip
        wait_for(
            "Caddy did not serve https with a certificate of its local CA",
            lambda: ca_root.exists() and request(https_port, "/healthz", tls=up.tls()).status,
            processes, tmp_path,
        )  # fmt: skip
        yield up
    finally:
        processes_stop(processes)


def test_https_answers_with_a_certificate_from_caddys_local_ca(stack: Stack) -> None:
    with (
        socket.create_connection(("localhost", stack.https_port), timeout=10) as raw,
        stack.tls().wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        certificate = tls.getpeercert()
    # Verified against the local CA's root above; its issuer, by name: ((("commonName", …),),)
    assert certificate is not None
    issuer = [value for rdn in certificate["issuer"] for key, value in rdn]  # type: ignore[misc]

    assert any("Caddy Local Authority" in str(value) for value in issuer), issuer
    assert request(stack.https_port, "/healthz", tls=stack.tls()).status == 200
    # What the caddy service's health check asks.
    assert request(stack.admin_port, "/config/").status == 200


def test_the_portal_sees_https_through_caddy_and_http_only_without_it(stack: Stack) -> None:
    through_caddy = request(stack.https_port, "/catalog/", tls=stack.tls())
    direct = request(stack.web_port, "/catalog/")

    # Secure: on to sign-in, with HSTS (which Django sends only over https).
    assert through_caddy.status == 302, through_caddy.headers
    assert through_caddy.headers["Location"] == "/auth/login/?next=/catalog/"
    assert through_caddy.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    # The same request without Caddy's header is plain http, which the portal sends to https.
    assert direct.status == 301
    assert direct.headers["Location"] == f"https://localhost:{stack.web_port}/catalog/"
    assert "Strict-Transport-Security" not in direct.headers


def test_plain_http_is_redirected_to_https_by_caddy(stack: Stack) -> None:
    response = request(stack.http_port, "/catalog/?q=pay")

    assert response.status in {301, 308}
    assert response.headers["Location"] == f"https://localhost:{stack.https_port}/catalog/?q=pay"


def test_a_clients_own_x_forwarded_proto_is_replaced_by_caddys(stack: Stack) -> None:
    # Were the client's value passed on, the portal would see http and redirect to https again.
    spoofed = request(
        stack.https_port, "/catalog/", tls=stack.tls(), headers={"X-Forwarded-Proto": "http"}
    )

    assert spoofed.status == 302, spoofed.headers
    assert spoofed.headers["Location"] == "/auth/login/?next=/catalog/"
    assert "Strict-Transport-Security" in spoofed.headers


def test_each_request_gets_caddys_request_id_not_the_clients(stack: Stack) -> None:
    ids = [
        request(
            stack.https_port, "/healthz", tls=stack.tls(), headers={"X-Request-ID": "mine"}
        ).headers["X-Request-ID"]
        for _ in range(2)
    ]
    assert "mine" not in ids and ids[0] != ids[1]
    assert all(len(uuid.UUID(rid).hex) == 32 for rid in ids)
