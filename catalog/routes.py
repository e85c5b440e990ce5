"""Gateway routes an entity declares (`atrium.dev/gateway-routes`, `atrium.dev/audience`): their
syntax, what "the same route" means, and how a request's method, host and path find one.

A route is an optional list of methods, one host and a path glob:
`GET,POST payments.internal.example/v1/*, payments.internal.example/admin/*`. Nothing here
writes; `catalog.refresh` plans and stores the claims, `access.gateway` matches requests.

- The host is one DNS name, matched case-insensitively; no wildcard and no port (a request's
  port is ignored), so no route can swallow hosts it does not name.
- The path starts with `/` and is matched as written (after the request's percent-escapes are
  decoded); a `*` may end it and stands for any rest, `/` included: `/v1/*` takes `/v1/` and
  everything under it, not `/v1`. No other wildcard.
- Methods are HTTP's (GET, POST...), any case; none named means every method. GET covers HEAD.
- Two routes are the same route when their hosts are equal, their paths can match one request
  (equal, or one's prefix starts the other) and their method sets share a method.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

GATEWAY_ROUTES = "atrium.dev/gateway-routes"
AUDIENCE = "atrium.dev/audience"
# The kinds that serve requests; a Group or a User declares no route.
ROUTE_KINDS = frozenset({"api", "component"})
# More routes than one API needs; each is a row and a line of the gateways' table.
MAX_ROUTES = 100
MAX_HOST = 253
MAX_PATH = 500
MAX_AUDIENCE = 300
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE")

_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
# Letters, digits and what RFC 3986 allows in a path segment, but `%`: a route is written
# decoded, as requests are matched decoded.
_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*")


class RouteError(ValueError):
    """A route that cannot be declared; the message names the bad part."""


@dataclass(frozen=True, order=True)
class Route:
    """One declared route. `methods` empty: every method."""

    host: str
    path: str
    methods: tuple[str, ...] = ()

    @property
    def is_prefix(self) -> bool:
        return self.path.endswith("*")

    @property
    def stem(self) -> str:
        """The path without its trailing `*`: what a request's path must start with."""
        return self.path[:-1] if self.is_prefix else self.path

    @property
    def methods_text(self) -> str:
        """How the methods are stored: comma-separated, in HTTP's order; "" for every one."""
        return ",".join(self.methods)

    def __str__(self) -> str:
        start = f"{self.methods_text} " if self.methods else ""
        return f"{start}{self.host}{self.path}"

    def takes_method(self, method: str) -> bool:
        if not self.methods:
            return True
        return method in self.methods or (method == "HEAD" and "GET" in self.methods)

    def takes_path(self, path: str) -> bool:
        return path.startswith(self.stem) if self.is_prefix else path == self.path

    def overlaps(self, other: Route) -> bool:
        """The same route: one request could match both (see the module's docstring)."""
        if self.host != other.host:
            return False
        if self.methods and other.methods:
            mine = set(self.methods) | ({"HEAD"} if "GET" in self.methods else set())
            theirs = set(other.methods) | ({"HEAD"} if "GET" in other.methods else set())
            if not mine & theirs:
                return False
        if self.is_prefix and other.is_prefix:
            return self.stem.startswith(other.stem) or other.stem.startswith(self.stem)
        if self.is_prefix:
            return other.path.startswith(self.stem)
        if other.is_prefix:
            return self.path.startswith(other.stem)
        return self.path == other.path


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 100 else f"{value[:60]!r}… ({len(value):,} characters)"


def host_parse(raw: str) -> str:
    """A route's host, lower-cased; RouteError naming what is wrong with it."""
    host = raw.lower().rstrip(".")
    if not host:
        raise RouteError("names no host before its path")
    if "*" in host:
        raise RouteError(f"the host {_shown(raw)} holds a wildcard: a route names one host exactly")
    if ":" in host:
        raise RouteError(f"the host {_shown(raw)} has a port: a route names a host without one")
    if len(host) > MAX_HOST or not all(_LABEL.fullmatch(label) for label in host.split(".")):
        raise RouteError(f"the host {_shown(raw)} is not a DNS name")
    return host


def path_parse(raw: str) -> str:
    """A route's path glob; RouteError naming what is wrong with it."""
    if len(raw) > MAX_PATH:
        raise RouteError(f"the path {_shown(raw)} is longer than {MAX_PATH} characters")
    if not _PATH.fullmatch(raw):
        raise RouteError(
            f"the path {_shown(raw)} holds characters a route does not take (a query, a "
            "fragment, a percent-escape or a space): write it decoded, without ? or #"
        )
    if "*" in raw[:-1]:
        raise RouteError(f"the path {_shown(raw)} has a * before its end: only a last * is a glob")
    if not path_is_normal(raw.removesuffix("*")):
        raise RouteError(
            f"the path {_shown(raw)} has an empty, '.' or '..' segment, which no normal request "
            "path has"
        )
    return raw


def path_is_normal(path: str) -> bool:
    """No empty, `.` or `..` segment (a trailing `/` is fine): a path an upstream reads the
    same as the gateway, and the portal, do."""
    segments = path.split("/")[1:]
    if segments and segments[-1] == "":
        segments = segments[:-1]
    return all(segment not in ("", ".", "..") for segment in segments)


def methods_parse(raw: list[str]) -> tuple[str, ...]:
    methods = []
    for name in raw:
        method = name.strip().upper()
        if method not in METHODS:
            raise RouteError(f"{_shown(name)} is not an HTTP method ({', '.join(METHODS)})")
        methods.append(method)
    return tuple(sorted(set(methods), key=METHODS.index))


def route_parse(methods: list[str], target: str) -> Route:
    """One route from its methods and `host/path`."""
    host, slash, path = target.partition("/")
    if not slash:
        raise RouteError(f"{_shown(target)} has no path: write host/path, such as api.example/v1/*")
    return Route(
        host=host_parse(host), path=path_parse(slash + path), methods=methods_parse(methods)
    )


def routes_parse(value: str) -> tuple[list[Route], list[str]]:
    """The routes of an annotation's value, and what is wrong with the rest.

    Entries are separated by commas; an entry's methods are separated by commas too and end
    with a space before the host: `GET,POST api.example/v1/*, api.example/health`.
    """
    routes: list[Route] = []
    problems: list[str] = []
    pending: list[str] = []  # methods waiting for the entry they start
    for piece in value.split(","):
        words = piece.split()
        if not words:
            if pending:
                problems.append(f"the methods {','.join(pending)} are followed by no route")
                pending = []
            continue
        if len(words) == 1 and "/" not in words[0]:
            pending.append(words[0])  # a method; its route comes after the next comma
            continue
        if len(words) > 2:
            problems.append(f"{_shown(piece.strip())} is not `METHODS host/path`")
            pending = []
            continue
        methods = [*pending, words[0]] if len(words) == 2 else pending
        pending = []
        try:
            routes.append(route_parse(methods, words[-1]))
        except RouteError as error:
            problems.append(str(error))
    if pending:
        problems.append(f"the methods {','.join(pending)} are followed by no route")
    return list(dict.fromkeys(routes)), problems


@dataclass(frozen=True)
class GatewayAnnotations:
    """An entity's declared routes and the audience their tokens must name ("" when it names
    none: the portal's `AUTHZ_DEFAULT_AUDIENCE` applies)."""

    declared: bool = False
    routes: tuple[Route, ...] = ()
    audience: str = ""
    problems: tuple[str, ...] = field(default=())


def gateway_annotations(entity: dict[str, Any]) -> GatewayAnnotations:
    """What an entity declares for the gateways, each problem naming the annotation and the
    part at fault. With any problem the entity keeps the routes it claimed before (a typo must
    not open a route, nor free it for another entity to take)."""
    annotations: dict[str, str] = entity["metadata"].get("annotations") or {}
    raw_routes, raw_audience = annotations.get(GATEWAY_ROUTES), annotations.get(AUDIENCE)
    if raw_routes is None and raw_audience is None:
        return GatewayAnnotations()
    problems: list[str] = []
    routes: list[Route] = []
    if raw_routes is not None:
        if str(entity.get("kind", "")).lower() not in ROUTE_KINDS:
            problems.append(
                f"{GATEWAY_ROUTES}: only API and Component entities serve routes, "
                f"not a {entity.get('kind')}"
            )
        else:
            routes, found = routes_parse(str(raw_routes))
            problems += [f"{GATEWAY_ROUTES}: {problem}" for problem in found]
            if not routes and not found:
                problems.append(f"{GATEWAY_ROUTES}: names no route")
            if len(routes) > MAX_ROUTES:
                problems.append(
                    f"{GATEWAY_ROUTES}: {len(routes)} routes; an entity declares at most "
                    f"{MAX_ROUTES}"
                )
    audience = ""
    if raw_audience is not None:
        audience = str(raw_audience).strip()
        if not audience or len(audience) > MAX_AUDIENCE or any(c.isspace() for c in audience):
            problems.append(
                f"{AUDIENCE}: {_shown(str(raw_audience))} is not an API identifier (one value, "
                f"no spaces, at most {MAX_AUDIENCE} characters)"
            )
            audience = ""
    return GatewayAnnotations(
        declared=raw_routes is not None,
        routes=tuple(routes),
        audience=audience,
        problems=tuple(problems),
    )


def request_path(raw: str) -> str | None:
    """A request's path as routes are matched against it: the query cut off, percent-escapes
    decoded. None for a path no route may be matched to: not starting with `/`, or holding an
    empty, `.` or `..` segment, a backslash, an encoded `/` or a control character, which
    upstreams and gateways read in different ways (`/v1/../admin` is `/admin` to one of them)."""
    path = raw.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/") or re.search(r"%2f|%5c", path, re.IGNORECASE):
        return None
    try:
        decoded = unquote(path, errors="strict") if "%" in path else path
    except UnicodeDecodeError:
        return None
    if "\\" in decoded or any(ord(c) < 0x20 or ord(c) == 0x7F for c in decoded):
        return None
    return decoded if path_is_normal(decoded) else None


def request_host(raw: str) -> str:
    """A request's host as routes name it: lower-case, without port or trailing dot."""
    host = raw.strip().lower()
    if host.startswith("["):  # an IPv6 literal, which no route names
        return host
    return host.rsplit(":", 1)[0].rstrip(".") if ":" in host else host.rstrip(".")
