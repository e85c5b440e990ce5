"""Reading a URL location's files: inside the location, never inside the network, in bounded time.

Each hop of a read resolves its host once, refuses the read when any address it resolves to is
loopback, private, link-local, metadata or otherwise not public (unless `CATALOG_ALLOWED_HOSTS`
names the host), and connects to that very address: a name that resolves differently a moment
later (DNS rebinding) is never asked again. TLS is still verified against the host's name, which
is also the `Host` header. Redirects are followed by hand, each one only inside the location.
Proxies from the environment are not used: a proxy would resolve the name itself, after our check.
"""

# Over 400 lines, kept whole: every step of a URL read that keeps it out of the network (addresses,
# allowed hosts, scope, connecting), so that one review reads the whole guard.

from __future__ import annotations

import base64
import contextlib
import http.client
import ipaddress
import os
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType
from urllib.parse import unquote, urljoin, urlsplit

import certifi
import idna
from django.conf import settings
from requests.utils import requote_uri

from portal.bounds import whole_number

# Seconds one socket operation (connect, one read) may wait, and one file's read may take in all,
# redirects included: a server that drips its answer cannot hold a refresh for longer.
URL_TIMEOUT = 10
URL_DEADLINE = 20
MAX_REDIRECTS = 5
_CHUNK = 64 * 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class FetchError(Exception):
    """A read that failed; the message says why, in words fit for the location's problems."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class FetchRefused(FetchError):
    """A read refused before anything was sent, or a redirect that was not followed."""


# --- addresses ------------------------------------------------------------------------------

# Where clouds answer with instance credentials: never read, whatever the allowed hosts say.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean...
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.170.23",  # AWS EKS pod identity
        "fd00:ec2::254",  # AWS over IPv6
        "fd00:ec2::23",
        "100.100.100.200",  # Alibaba
        "168.63.129.16",  # Azure's wire server (a public address, answering only inside Azure)
        "192.0.0.192",  # Oracle
    )
)
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.internal",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
    }
)

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
# Ordered: the first match names the address. Python's own `is_global` tables vary between
# patch releases (3.11.7 calls 192.0.0.8 global), so the lists are spelled out here.
_NOT_PUBLIC: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]] = [
    (_V4("0.0.0.0/8"), "unspecified"),
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("10.0.0.0/8"), "private"),
    (_V4("172.16.0.0/12"), "private"),
    (_V4("192.168.0.0/16"), "private"),
    (_V4("100.64.0.0/10"), "shared"),
    (_V4("169.254.0.0/16"), "link-local"),
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("192.0.0.0/24"), "reserved"),
    (_V4("192.0.2.0/24"), "reserved"),
    (_V4("192.88.99.0/24"), "reserved"),
    (_V4("198.18.0.0/15"), "reserved"),
    (_V4("198.51.100.0/24"), "reserved"),
    (_V4("203.0.113.0/24"), "reserved"),
    (_V4("240.0.0.0/4"), "reserved"),  # and 255.255.255.255, broadcast
    (_V6("::/128"), "unspecified"),
    (_V6("::1/128"), "loopback"),
    (_V6("fc00::/7"), "private"),
    (_V6("fec0::/10"), "private"),  # site-local, deprecated but still routed somewhere
    (_V6("fe80::/10"), "link-local"),
    (_V6("ff00::/8"), "multicast"),
    (_V6("64:ff9b:1::/48"), "reserved"),
    (_V6("100::/64"), "reserved"),
    (_V6("2001::/23"), "reserved"),
    (_V6("2001:db8::/32"), "reserved"),
    (_V6("3fff::/20"), "reserved"),
    (_V6("5f00::/16"), "reserved"),
]
_GLOBAL_UNICAST = _V6("2000::/3")
_NAT64 = _V6("64:ff9b::/96")
_KIND_WORDS = {
    "unspecified": "an unspecified address",
    "loopback": "a loopback address",
    "private": "a private address",
    "shared": "a shared (carrier-grade NAT) address",
    "link-local": "a link-local address",
    "multicast": "a multicast address",
    "reserved": "a reserved address",
    "metadata": "a cloud metadata address",
}
# What naming a host in CATALOG_ALLOWED_HOSTS lets it resolve to: an internal Git host's
# addresses. Never metadata, and nothing that is not one host.
ALLOWABLE_KINDS = frozenset({"loopback", "private", "shared", "link-local"})


def address_kind(address: IPAddress) -> str | None:
    """What kind of non-public address this is ("loopback", "private", "metadata"...), or None
    for a public one. IPv6 forms that carry an IPv4 address are judged by that address."""
    if address in METADATA_ADDRESSES:
        return "metadata"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return address_kind(embedded)
        if address.packed[:12] == bytes(12) and int(address) > 1:
            # IPv4-compatible (::a.b.c.d), deprecated: nothing public is reached that way.
            return address_kind(ipaddress.IPv4Address(int(address))) or "reserved"
    for network, kind in _NOT_PUBLIC:
        if address.version == network.version and address in network:
            return kind
    if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST:
        return "reserved"
    return None


# --- allowed hosts --------------------------------------------------------------------------


def _allowed_entries() -> set[tuple[str, int | None]]:
    """CATALOG_ALLOWED_HOSTS as (host, port or None), read now so that a change applies."""
    entries: set[tuple[str, int | None]] = set()
    for raw in getattr(settings, "CATALOG_ALLOWED_HOSTS", []) or []:
        entry = str(raw).strip().lower()
        if not entry:
            continue
        host, port = entry, None
        bracketed = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", entry)
        if bracketed:
            host, port = bracketed[1], int(bracketed[2]) if bracketed[2] else None
        elif entry.count(":") == 1:
            host, _, digits = entry.partition(":")
            port = whole_number(digits)
        entries.add((host.rstrip("."), port))
    return entries


def host_allowed(host: str, port: int) -> bool:
    entries = _allowed_entries()
    return (host, None) in entries or (host, port) in entries


# --- the location's scope -------------------------------------------------------------------

_UNRESERVED_ESCAPE = re.compile(r"%(2[DdEe]|5[Ff]|7[Ee]|3[0-9]|[46][1-9A-Fa-f]|[57][0-9Aa])")
_ANY_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def _is_dot(segment: str) -> bool:
    # `..;x` is `..` to servers that drop path parameters (Tomcat, Jetty).
    return segment.split(";", 1)[0] in {".", ".."}


def normal_path(path: str) -> str | None:
    """The path as a server that follows RFC 3986 reads it: unreserved characters unescaped
    (`%2e` is `.`) and dot segments removed. None when it could still climb for a less careful
    server: a dot segment hidden behind an escaped slash, a backslash or a second escape, or a
    NUL."""
    # Quoted as a request would send it (a space as %20), so what is checked is what is sent.
    path = _ANY_ESCAPE.sub(lambda match: match[0].upper(), requote_uri(path or "/"))
    path = _UNRESERVED_ESCAPE.sub(lambda match: chr(int(match[1], 16)), path)
    if not path.startswith("/"):
        path = "/" + path
    kept: list[str] = []
    segments = path.split("/")[1:]
    for segment in segments:
        if segment.split(";", 1)[0] == "..":
            if kept:
                kept.pop()
        elif not _is_dot(segment):
            kept.append(segment)
    if segments and _is_dot(segments[-1]):
        kept.append("")  # `/a/b/..` is the folder `/a/`
    normal = "/" + "/".join(kept)
    decoded = normal
    for _ in range(3):  # servers and proxies that decode twice (%252e) exist too
        decoded = unquote(decoded).replace("\\", "/")
        if "\x00" in decoded or any(_is_dot(segment) for segment in decoded.split("/")):
            return None
    return normal


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str  # lower case, ASCII (IDNA), without a trailing dot or IPv6 brackets
    port: int

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = {"http": 80, "https": 443}[self.scheme]
        return host if self.port == default else f"{host}:{self.port}"


def origin_of(url: str) -> Origin:
    """FetchRefused when the URL is not http(s) with a host one could connect to."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"}:
        raise FetchRefused(f"refused: only http and https are read, not {scheme or 'no'} scheme")
    hostname = (parts.hostname or "").rstrip(".")
    if not hostname:
        raise FetchRefused("refused: the URL names no host")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
        host = hostname if hostname.isascii() else idna.encode(hostname, uts46=True).decode()
    except (ValueError, idna.IDNAError) as error:
        raise FetchRefused(f"refused: the URL's host or port is not valid ({error})") from error
    return Origin(scheme, host.lower(), port)


@dataclass(frozen=True)
class UrlScope:
    """What a URL location may read: its origin, under the folder of its registered URL."""

    origin: Origin
    prefix: str

    @classmethod
    def of(cls, url: str) -> UrlScope:
        origin, path = origin_of(url), normal_path(urlsplit(url).path)
        if path is None:
            raise FetchRefused(
                "refused: the URL's path hides a dot segment behind an escaped slash or a backslash"
            )
        return cls(origin, path[: path.rindex("/") + 1])

    def contains(self, url: str) -> bool:
        try:
            origin = origin_of(url)
        except FetchRefused:
            return False
        path = normal_path(urlsplit(url).path)
        return origin == self.origin and path is not None and path.startswith(self.prefix)

    def __str__(self) -> str:
        return f"{self.origin.scheme}://{self.origin.netloc}{self.prefix}"


# --- connecting -----------------------------------------------------------------------------


class _Deadline:
    """Shuts the sockets of one read down when its time is up, whatever they wait for."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.ends = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._timer.cancel()
        with self._lock:
            for watched in self._sockets:
                watched.close()
            self._sockets.clear()

    def remaining(self) -> float:
        left = self.ends - time.monotonic()
        if left <= 0 or self.expired:
            raise self.error()
        return left

    def watch(self, connection: socket.socket) -> None:
        # A duplicate descriptor: shutting it down ends the connection under TLS too, where the
        # original socket object is taken over by the SSL one.
        with self._lock:
            self._sockets.append(connection.dup())
            if self.expired:
                self._sockets[-1].shutdown(socket.SHUT_RDWR)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for watched in self._sockets:
                with contextlib.suppress(OSError):
                    watched.shutdown(socket.SHUT_RDWR)

    def error(self) -> FetchError:
        return FetchError(f"no complete answer within {self.seconds:g} s; stopped")


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _resolve(origin: Origin) -> list[tuple[socket.AddressFamily, tuple[str, int]]]:
    """Every address the host resolves to, or FetchRefused naming one that may not be read."""
    if origin.host in METADATA_NAMES:
        raise FetchRefused(f"refused: {origin.host} is a cloud metadata service")
    try:
        infos = socket.getaddrinfo(origin.host, origin.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise FetchError(f"the host {origin.host} could not be resolved") from error
    allowed = host_allowed(origin.host, origin.port)
    addresses = []
    for family, _, _, _, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        kind = address_kind(address)
        if kind is not None and not (allowed and kind in ALLOWABLE_KINDS):
            words = _KIND_WORDS[kind]
            said = (
                f"{origin.host} is {words}"
                if _literal(origin.host) == address
                else f"{origin.host} resolves to {address}, {words}"
            )
            hint = " (allow it with CATALOG_ALLOWED_HOSTS)" if kind in ALLOWABLE_KINDS else ""
            raise FetchRefused(f"refused: {said}{hint}")
        addresses.append((family, (str(sockaddr[0]), int(sockaddr[1]), *sockaddr[2:])))
    return addresses


@lru_cache(maxsize=4)
def _tls_context(cafile: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cafile)


def _connect(origin: Origin, deadline: _Deadline) -> socket.socket:
    """A connection to one of the checked addresses of the origin, TLS verified for its name."""
    connection = None
    for family, sockaddr in _resolve(origin):
        timeout = min(URL_TIMEOUT, deadline.remaining())
        candidate = socket.socket(family, socket.SOCK_STREAM)
        candidate.settimeout(timeout)
        deadline.watch(candidate)
        try:
            candidate.connect(sockaddr)
        except OSError:
            candidate.close()
            if deadline.expired:
                raise deadline.error() from None
            continue
        connection = candidate
        break
    if connection is None:
        raise FetchError(f"could not connect to {origin.netloc}")
    if origin.scheme == "http":
        return connection
    # As requests did: certifi's authorities, or the bundle REQUESTS_CA_BUNDLE names.
    context = _tls_context(os.environ.get("REQUESTS_CA_BUNDLE") or certifi.where())
    try:
        return context.wrap_socket(connection, server_hostname=origin.host)
    except ssl.SSLCertVerificationError as error:
        connection.close()
        raise FetchError(
            f"the TLS certificate of {origin.netloc} is not valid: {error.verify_message}"
        ) from error
    except OSError as error:
        connection.close()
        if deadline.expired:
            raise deadline.error() from error
        raise FetchError(f"the TLS handshake with {origin.netloc} failed") from error


def _get(
    url: str, origin: Origin, *, headers: dict[str, str], max_bytes: int, deadline: _Deadline
) -> tuple[int, str, str | None, bytes]:
    """One request: (status, reason, Location header, body for a 2xx)."""
    parts = urlsplit(url)
    path = normal_path(parts.path)
    if path is None:  # the scope refuses these first; never send what was not checked
        raise FetchRefused(f"refused: the path of {url} is ambiguous")
    target = path + (f"?{parts.query}" if parts.query else "")
    connection = _connect(origin, deadline)
    client = http.client.HTTPConnection(origin.host, origin.port, timeout=URL_TIMEOUT)
    client.sock = connection
    client.auto_open = 0  # never reconnect by itself, to an address nobody checked
    try:
        client.request("GET", target, headers={"Host": origin.netloc, **headers})
        response = client.getresponse()
        # A connection shut at the deadline reads as an early end, which http.client takes
        # for the end of the headers or the body: what it returned is not the answer.
        if deadline.expired:
            raise deadline.error()
        if not 200 <= response.status < 300:
            return response.status, response.reason, response.getheader("Location"), b""
        encoding = (response.getheader("Content-Encoding") or "identity").strip().lower()
        if encoding != "identity":
            raise FetchError(f"answered in the {encoding} encoding, though asked for none")
        too_large = FetchError(
            f"the answer is larger than {max_bytes:,} bytes, the most a descriptor file may "
            "be; not read"
        )
        length = whole_number(response.getheader("Content-Length") or "")
        if length is not None and length > max_bytes:
            raise too_large
        body = bytearray()
        while chunk := response.read(_CHUNK):
            body += chunk
            if len(body) > max_bytes:
                raise too_large
        if deadline.expired:
            raise deadline.error()
        if length is not None and len(body) != length:
            raise FetchError(f"the answer ended after {len(body):,} of its {length:,} bytes")
        return response.status, response.reason, None, bytes(body)
    except (OSError, http.client.HTTPException) as error:
        if deadline.expired:
            raise deadline.error() from error
        if isinstance(error, TimeoutError):
            raise FetchError(f"{origin.netloc} did not answer within {URL_TIMEOUT} s") from error
        raise FetchError(f"the connection to {origin.netloc} failed while reading") from error
    finally:
        client.close()


def url_refusal(url: str) -> str | None:
    """Why reading this URL would be refused as things resolve now, or None: for refusing a
    registration early. Every read checks again, since names may resolve differently later."""
    try:
        _resolve(origin_of(requote_uri(url)))
    except FetchRefused as error:
        return error.message
    except FetchError:
        return None  # not resolvable now: the read will say so, or find it by then
    return None


def fetch_url(url: str, *, scope: UrlScope, max_bytes: int) -> bytes:
    """The body of `url`, at most `max_bytes`, following redirects only inside `scope`.

    FileNotFoundError for a 404 or 410; FetchRefused for what may not be read (the URL, an
    address it resolves to, a redirect), decided before connecting; FetchError otherwise.
    """
    url = requote_uri(url)
    if not scope.contains(url):
        raise FetchRefused(f"refused: {url} is outside the location {scope}")
    parts = urlsplit(url)
    headers = {"Accept-Encoding": "identity", "User-Agent": "Atrium catalog", "Connection": "close"}
    if parts.username is not None:
        # A URL's own credentials go to its origin, which every hop shares.
        user = unquote(parts.username) + ":" + unquote(parts.password or "")
        headers["Authorization"] = "Basic " + base64.b64encode(user.encode()).decode()
    visited = {url}
    with _Deadline(URL_DEADLINE) as deadline:
        for _ in range(MAX_REDIRECTS + 1):
            status, reason, location, body = _get(
                url, origin_of(url), headers=headers, max_bytes=max_bytes, deadline=deadline
            )
            if 200 <= status < 300:
                return body
            if status in {404, 410}:
                raise FileNotFoundError(url)
            if status not in {301, 302, 303, 307, 308} or not location:
                raise FetchError(f"answered HTTP {status} {reason}".rstrip())
            following = requote_uri(urljoin(url, location.strip()))
            if not scope.contains(following):
                raise FetchRefused(f"redirected outside the location to {following}; not followed")
            if following in visited:
                raise FetchError(f"redirects in a loop, back to {following}; not followed")
            visited.add(following)
            url = following
    raise FetchError(f"more than {MAX_REDIRECTS} redirects; not followed")
