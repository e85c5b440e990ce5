"""Hostile URL locations: servers on loopback that redirect away, loop, drip, overflow, or hide
behind a name, and placeholders that reach for them; each refused, the rest of the location read."""

from __future__ import annotations

import contextlib
import datetime
import html
import http.server
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from catalog import fetch
from catalog.models import Entity, Location
from catalog.services import location_refresh, location_register
from catalog.yamlfiles import MAX_FILE_BYTES
from tests.helpers import DevTenant, post_location, signed_in, writer_token

pytestmark = pytest.mark.django_db

Route = Callable[["Handler"], None]


def component(name: str, description: str = "a component") -> str:
    return (
        "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
        f"metadata:\n  name: {name}\n  description: {description}\n"
        "spec: {type: service, lifecycle: production, owner: team-a}\n"
    )


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.server.hits.append((self.path, self.headers.get("Host", "")))
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        with contextlib.suppress(OSError):  # the reader hung up, as it should on a hostile answer
            route(self)

    def log_message(self, *args: Any) -> None:
        pass

    def answer(self, body: bytes, status: int = 200, **headers: str) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class Server(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes: dict[str, Route] = {}
        self.hits: list[tuple[str, str]] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def file(text: str) -> Route:
    return lambda handler: handler.answer(text.encode(), 200, **{"Content-Type": "text/yaml"})


def redirect(location: str, status: int = 302) -> Route:
    return lambda handler: handler.answer(b"", status, Location=location)


def _serve(server: Server) -> Iterator[Server]:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def git(settings: Any) -> Iterator[Server]:
    """The location's server: allowed by CATALOG_ALLOWED_HOSTS, as an internal Git host is."""
    server = Server()
    settings.CATALOG_ALLOWED_HOSTS = [f"127.0.0.1:{server.port}"]
    yield from _serve(server)


@pytest.fixture
def internal() -> Iterator[Server]:
    """Another service on loopback, which no location may reach."""
    server = Server()
    server.routes["/secret"] = file("the internal service's secret")
    server.routes["/catalog-info.yaml"] = file(component("internal"))
    yield from _serve(server)


@dataclass
class Refreshed:
    location: Location
    problems: list[str] = field(default_factory=list)

    @property
    def names(self) -> set[str]:
        return set(Entity.objects.filter(location=self.location).values_list("name", flat=True))


def refresh(target: str) -> Refreshed:
    location = location_refresh(location=location_register(target=target)).location
    location.refresh_from_db()
    return Refreshed(location, list(location.last_problems))


def repo(git: Server, hostile: Route, *, also: dict[str, Route] | None = None) -> Refreshed:
    """A location whose Location entity points at a good file and a hostile one."""
    git.routes.update(
        {
            "/repo/catalog-info.yaml": file(
                "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: repo}\n"
                "spec: {targets: [./good.yaml, ./hostile.yaml]}\n"
            ),
            "/repo/good.yaml": file(component("good")),
            "/repo/hostile.yaml": hostile,
            **(also or {}),
        }
    )
    return refresh(f"{git.url}/repo/catalog-info.yaml")


def test_a_redirect_to_another_loopback_service_is_not_followed(
    git: Server, internal: Server
) -> None:
    read = repo(git, redirect(f"{internal.url}/catalog-info.yaml"))

    assert read.problems == [
        f"{git.url}/repo/hostile.yaml: redirected outside the location to "
        f"{internal.url}/catalog-info.yaml; not followed"
    ]
    assert read.names == {"repo", "good"}
    assert internal.hits == []
    repo_entity = Entity.objects.get(name="repo")
    assert repo_entity.problems == read.problems


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        ("/elsewhere/catalog-info.yaml", "/elsewhere/catalog-info.yaml"),
        ("../secret.yaml", "/secret.yaml"),
        ("/repo/%2e%2e/secret.yaml", "/repo/../secret.yaml"),
        ("/repo/%2E%2E%2fsecret.yaml", "/repo/..%2fsecret.yaml"),
        ("/repo/..%5csecret.yaml", "/repo/..%5csecret.yaml"),
        ("/repo/..;/secret.yaml", "/repo/..;/secret.yaml"),
        ("https://127.0.0.1:{port}/repo/good.yaml", "https://127.0.0.1:{port}/repo/good.yaml"),
        ("//127.0.0.1:1/repo/good.yaml", "http://127.0.0.1:1/repo/good.yaml"),
        ("http://169.254.169.254/latest/meta-data/", "http://169.254.169.254/latest/meta-data/"),
        ("file:///etc/passwd", "file:///etc/passwd"),
    ],
)
def test_a_redirect_outside_the_folder_or_origin_of_the_location_is_not_followed(
    git: Server, location: str, shown: str
) -> None:
    git.routes["/secret.yaml"] = file(component("secret"))
    read = repo(git, redirect(location.format(port=git.port)))

    expected = shown.format(port=git.port)
    if expected.startswith("/"):
        expected = git.url + expected
    assert read.problems == [
        f"{git.url}/repo/hostile.yaml: redirected outside the location to {expected}; not followed"
    ]
    assert read.names == {"repo", "good"}
    assert "/secret.yaml" not in [path for path, _ in git.hits]


def test_a_redirect_inside_the_location_is_followed(git: Server) -> None:
    read = repo(
        git, redirect("./moved/"), also={"/repo/moved/": redirect("../moved.yaml", status=308),
                                         "/repo/moved.yaml": file(component("moved"))},
    )  # fmt: skip

    assert read.problems == []
    assert read.names == {"repo", "good", "moved"}


def test_redirects_in_a_loop_or_too_many_stop(git: Server) -> None:
    hops = {f"/repo/hop/{n}": redirect(f"{n + 1}") for n in range(1, 10)}
    read = repo(git, redirect("./loop.yaml"), also={"/repo/loop.yaml": redirect("hostile.yaml")})
    assert read.problems == [
        f"{git.url}/repo/hostile.yaml: could not be read: redirects in a loop, back to "
        f"{git.url}/repo/hostile.yaml; not followed"
    ]
    assert read.names == {"repo", "good"}

    read = repo(git, redirect("./hop/1"), also=hops)
    assert read.problems == [
        f"{git.url}/repo/hostile.yaml: could not be read: more than 5 redirects; not followed"
    ]
    assert read.names == {"repo", "good"}


def _drip_body(handler: Handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "100000")
    handler.end_headers()
    for _ in range(100):
        handler.wfile.write(b"#")
        handler.wfile.flush()
        time.sleep(0.1)


def _drip_headers(handler: Handler) -> None:
    handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
    for _ in range(100):
        handler.wfile.write(b"X-Slow: yes\r\n")
        handler.wfile.flush()
        time.sleep(0.1)


def _silent(handler: Handler) -> None:
    time.sleep(3)


@pytest.mark.parametrize("route", [_drip_body, _drip_headers], ids=["body", "headers"])
def test_a_server_that_drips_its_answer_is_stopped_at_the_deadline(
    git: Server, route: Route, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch, "URL_DEADLINE", 1)
    started = time.monotonic()

    read = repo(git, route)

    assert time.monotonic() - started < 3
    assert read.problems == [
        f"{git.url}/repo/hostile.yaml: could not be read: no complete answer within 1 s; stopped"
    ]
    assert read.names == {"repo", "good"}


def test_a_server_that_never_answers_times_out(
    git: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch, "URL_TIMEOUT", 0.5)

    read = repo(git, _silent)

    assert read.problems == [
        f"{git.url}/repo/hostile.yaml: could not be read: 127.0.0.1:{git.port} did not answer "
        "within 0.5 s"
    ]
    assert read.names == {"repo", "good"}


def _chunked_flood(handler: Handler) -> None:
    handler.send_response(200)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    chunk = b"#" * 65536
    for _ in range(MAX_FILE_BYTES // len(chunk) + 10):
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    handler.wfile.write(b"0\r\n\r\n")


@pytest.mark.parametrize(
    "route",
    [_chunked_flood, file("#" * (MAX_FILE_BYTES + 1))],
    ids=["chunked", "content-length"],
)
def test_an_answer_larger_than_a_descriptor_may_be_is_not_read(git: Server, route: Route) -> None:
    read = repo(git, route)

    assert read.problems == [
        f"{git.url}/repo/hostile.yaml: could not be read: the answer is larger than "
        f"{MAX_FILE_BYTES:,} bytes, the most a descriptor file may be; not read"
    ]
    assert read.names == {"repo", "good"}


def test_a_server_error_is_the_files_problem_and_its_entities_stay(git: Server) -> None:
    repo(git, file(component("was-fine")))
    assert Entity.objects.filter(name="was-fine").exists()

    read = repo(git, lambda handler: handler.answer(b"oops", 500))

    assert read.problems == [
        f"{git.url}/repo/hostile.yaml: could not be read: answered HTTP 500 Internal Server Error"
    ]
    # Its file could not be read: what it held is not gone, it is unknown.
    assert read.names == {"repo", "good", "was-fine"}


def test_placeholders_read_nothing_outside_the_location(git: Server, internal: Server) -> None:
    def leaky(name: str, placeholder: str) -> str:
        return component(name, description=f"{{$text: '{placeholder}'}}")

    placeholders = "---\n".join(
        [
            leaky("direct", f"{internal.url}/secret"),
            leaky("redirected", "./leak.txt"),
            leaky("climbing", "../secret.txt"),
            leaky("encoded", "%2e%2e/secret.txt"),
            leaky("beside", "./notes.txt"),
        ]
    )
    also = {
        "/repo/leak.txt": redirect(f"{internal.url}/secret"),
        "/repo/notes.txt": file("notes beside the descriptor"),
        "/secret.txt": file("the Git host's own secret"),
    }
    read = repo(git, file(placeholders), also=also)

    source = f"{git.url}/repo/hostile.yaml"
    assert read.problems == [
        f"{source}:1: Placeholder $text refers to '{internal.url}/secret', outside the "
        "registered location",
        f"{source}:2: Placeholder $text could not read './leak.txt': redirected outside the "
        f"location to {internal.url}/secret; not followed",
        f"{source}:3: Placeholder $text refers to '../secret.txt', outside the registered location",
        f"{source}:4: Placeholder $text refers to '%2e%2e/secret.txt', outside the registered "
        "location",
    ]
    assert read.names == {"repo", "good", "beside"}
    assert Entity.objects.get(name="beside").descriptor["metadata"]["description"] == (
        "notes beside the descriptor"
    )
    assert internal.hits == []
    assert "/secret.txt" not in [path for path, _ in git.hits]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_location_on_loopback_is_refused_before_connecting_open_port_or_not(
    internal: Server,
) -> None:
    closed = _closed_port()

    open_read = refresh(f"{internal.url}/catalog-info.yaml")
    closed_read = refresh(f"http://127.0.0.1:{closed}/catalog-info.yaml")

    hint = "127.0.0.1 is a loopback address (allow it with CATALOG_ALLOWED_HOSTS)"
    assert open_read.problems == [f"{internal.url}/catalog-info.yaml: refused: {hint}"]
    assert closed_read.problems == [f"http://127.0.0.1:{closed}/catalog-info.yaml: refused: {hint}"]
    assert internal.hits == []
    assert not Entity.objects.exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://localhost:{port}/c.yaml", "localhost resolves to 127.0.0.1, a loopback address"),
        ("http://[::1]:{port}/c.yaml", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]:{port}/c.yaml", "::ffff:127.0.0.1 is a loopback address"),
        ("http://2130706433:{port}/c.yaml", "2130706433 resolves to 127.0.0.1, a loopback address"),
        ("http://0x7f.1:{port}/c.yaml", "0x7f.1 resolves to 127.0.0.1, a loopback address"),
        ("http://0.0.0.0:{port}/c.yaml", "0.0.0.0 is an unspecified address"),
        ("http://169.254.169.254/latest/", "169.254.169.254 is a cloud metadata address"),
        (
            "http://metadata.google.internal/x",
            "metadata.google.internal is a cloud metadata service",
        ),
        ("http://10.1.2.3/c.yaml", "10.1.2.3 is a private address"),
    ],
)
def test_hosts_that_are_loopback_private_or_metadata_are_refused(
    internal: Server, url: str, message: str
) -> None:
    target = url.format(port=internal.port)
    read = refresh(target)

    assert len(read.problems) == 1
    assert read.problems[0].startswith(f"{target}: refused: {message}")
    assert internal.hits == []


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names that resolve as the test says: DNS is the edge this machine has no server for."""
    names: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in names:
            return [
                info for address in names[host] for info in real(address, port, *args, **kwargs)
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


def test_a_name_that_resolves_to_loopback_is_read_only_when_allowed(
    internal: Server, dns: dict[str, list[str]], settings: Any
) -> None:
    dns["git.internal"] = ["127.0.0.1"]
    target = f"http://git.internal:{internal.port}/catalog-info.yaml"

    refused = refresh(target)
    assert refused.problems == [
        f"{target}: refused: git.internal resolves to 127.0.0.1, a loopback address "
        "(allow it with CATALOG_ALLOWED_HOSTS)"
    ]
    assert internal.hits == []

    settings.CATALOG_ALLOWED_HOSTS = ["git.internal"]
    allowed = refresh(target)
    assert allowed.problems == []
    assert allowed.names == {"internal"}
    # Connected to the checked address, asked by name.
    assert internal.hits == [("/catalog-info.yaml", f"git.internal:{internal.port}")]

    settings.CATALOG_ALLOWED_HOSTS = [f"git.internal:{internal.port + 1}"]
    assert refresh(target).problems == refused.problems


def test_a_name_with_any_internal_address_is_refused_even_beside_a_public_one(
    internal: Server, dns: dict[str, list[str]], settings: Any
) -> None:
    dns["rebind.example"] = ["93.184.215.14", "127.0.0.1"]
    dns["imds.example"] = ["169.254.169.254"]
    settings.CATALOG_ALLOWED_HOSTS = ["imds.example"]

    mixed = refresh(f"http://rebind.example:{internal.port}/catalog-info.yaml")
    metadata = refresh("http://imds.example/latest/meta-data/")

    assert mixed.problems == [
        f"http://rebind.example:{internal.port}/catalog-info.yaml: refused: rebind.example "
        "resolves to 127.0.0.1, a loopback address (allow it with CATALOG_ALLOWED_HOSTS)"
    ]
    # An allowed name still never reaches cloud credentials.
    assert metadata.problems == [
        "http://imds.example/latest/meta-data/: refused: imds.example resolves to "
        "169.254.169.254, a cloud metadata address"
    ]
    assert internal.hits == []


def _certificates(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A certificate authority (its PEM) and a server certificate for `name` signed by it."""
    now = datetime.datetime.now(datetime.UTC)

    def certificate(
        subject: str, key: Any, issuer: str, signer: Any, *, ca: bool, san: str | None = None
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if san:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = certificate("Test CA", ca_key, "Test CA", ca_key, ca=True)
    server = certificate(name, server_key, "Test CA", ca_key, ca=False, san=name)
    ca_file, server_file = tmp_path / "ca.pem", tmp_path / "server.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server_file.write_bytes(
        server.public_bytes(serialization.Encoding.PEM)
        + server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, server_file


@pytest.mark.parametrize(
    ("certified", "outcome"),
    [("git.internal", None), ("other.internal", "Hostname mismatch")],
)
def test_https_to_the_checked_address_verifies_the_certificate_for_the_name(
    tmp_path: Path,
    dns: dict[str, list[str]],
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    certified: str,
    outcome: str | None,
) -> None:
    ca_file, server_file = _certificates(tmp_path, certified)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    server = Server()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server_file)
    names_asked: list[str | None] = []

    def sni(_: ssl.SSLObject, name: str | None, __: ssl.SSLContext) -> None:
        names_asked.append(name)

    context.sni_callback = sni
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.routes["/catalog-info.yaml"] = file(component("over-tls"))
    dns["git.internal"] = ["127.0.0.1"]
    settings.CATALOG_ALLOWED_HOSTS = ["git.internal"]
    target = f"https://git.internal:{server.port}/catalog-info.yaml"

    for _ in _serve(server):
        read = refresh(target)

    assert names_asked == ["git.internal"]
    if outcome is None:
        assert read.problems == []
        assert read.names == {"over-tls"}
        assert server.hits == [("/catalog-info.yaml", f"git.internal:{server.port}")]
    else:
        assert read.problems == [
            f"{target}: could not be read: the TLS certificate of git.internal:{server.port} is "
            f"not valid: {outcome}, certificate is not valid for 'git.internal'."
        ]
        assert server.hits == []


def test_registering_a_loopback_url_is_refused_at_once_through_the_api_and_the_page(
    client: Any, devtenant: DevTenant, internal: Server
) -> None:
    target = f"{internal.url}/catalog-info.yaml"
    refusal = (
        f"{target}: refused: 127.0.0.1 is a loopback address (allow it with CATALOG_ALLOWED_HOSTS)"
    )
    token = writer_token(devtenant, ["read:catalog", "write:catalog"])

    answer = post_location(client, {"type": "url", "target": target}, token)
    page = signed_in("linus@example.com", "portal-admin").post(
        "/catalog/locations/", {"target": target, "action": "preview"}
    )

    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == refusal
    assert html.escape(refusal) in page.content.decode()
    assert not Location.objects.exists()
    assert internal.hits == []
