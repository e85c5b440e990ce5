"""What the gateways' decisions read: the declared routes and who holds which role, kept in the
process, and the OPA bundle made of them.

A decision sits in front of every request of every API behind a gateway, so it reads no
database in the steady state: the route table (every claimed route with its entity's audience
and required roles) and each subject's holdings are kept in this process under the version
`access.viewers` keeps in Redis, which everything that could change them replaces: a role
membership written or removed (a grant, a revocation, a sync, a sign-in), an account shut out
or let back in, a catalog refresh that changed entities or routes, a location removed. Each
decision reads that version (one Redis GET); a new one drops everything kept, so a revoked
grant is refused at the next request in every process. A role that ends on time needs no
change at all: each holding keeps its end, compared with the clock at each decision. Nothing is
kept longer than KEPT_SECONDS (a minute), as kept viewers are not: a new version Redis missed
(unreachable while a grant was revoked) costs at most that, not every request until the next
change.

Without Redis (dev's `make run`) there is no version to trust across processes: every decision
reads the database.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from access.models import RoleMembership
from access.policy import (
    GatewayDecision,
    Holding,
    RouteRule,
    Viewer,
    gateway_decision,
    gateway_unknown_route,
)
from access.viewers import VIEWER_CACHE_SECONDS, viewers_version
from catalog.models import EntityRequiredRole, GatewayRoute
from catalog.routes import Route, request_path
from portal.auth.bearer import (
    BearerError,
    Finding,
    claims_findings,
    principal_of_claims,
    signature_findings,
    verified_claims,
)
from portal.models import User

# Subjects whose holdings one process keeps at most; past it they are read again.
MAX_HOLDINGS = 100_000
# The longest anything is kept, as kept viewers are: a bound for a change whose new version
# Redis missed (it was unreachable then), after which a revoked grant would be let through
# until some other change. The route table and holdings are read again at most once a bound.
KEPT_SECONDS = VIEWER_CACHE_SECONDS


@dataclass
class RouteTable:
    """Every claimed route by host: exact paths looked up, prefixes tried longest first."""

    exact: dict[str, dict[str, list[tuple[Route, RouteRule]]]] = field(default_factory=dict)
    prefixes: dict[str, list[tuple[Route, RouteRule]]] = field(default_factory=dict)
    rules: list[tuple[Route, RouteRule]] = field(default_factory=list)

    def match(self, *, method: str, host: str, path: str) -> tuple[Route, RouteRule] | None:
        """The route that takes this request, if one does. Routes of two entities never
        overlap (catalog.route_claims), so whichever matches first is the only entity's."""
        for route, rule in self.exact.get(host, {}).get(path, ()):
            if route.takes_method(method):
                return route, rule
        for route, rule in self.prefixes.get(host, ()):
            if route.takes_path(path) and route.takes_method(method):
                return route, rule
        return None


def route_table_read() -> RouteTable:
    """Every claimed route with its entity's audience and required roles: two queries."""
    rows = list(
        GatewayRoute.objects.order_by("host", "path", "methods").values_list(
            "host",
            "path",
            "methods",
            "audience",
            "entity_id",
            "entity__ref",
            "entity__owner_ref",
            "entity__restricted",
        )
    )
    required: dict[int, set[str]] = defaultdict(set)
    for entity_id, role in EntityRequiredRole.objects.filter(
        entity_id__in={row[4] for row in rows}
    ).values_list("entity_id", "role_name"):
        required[entity_id].add(role)
    table = RouteTable()
    for host, path, methods, audience, entity_id, ref, owner_ref, restricted in rows:
        route = Route(host=host, path=path, methods=tuple(methods.split(",")) if methods else ())
        rule = RouteRule(
            entity_ref=ref,
            route=str(route),
            audience=audience or settings.AUTHZ_DEFAULT_AUDIENCE,
            required_roles=frozenset(required[entity_id]),
            restricted=restricted,
            owner_ref=owner_ref,
        )
        table.rules.append((route, rule))
        if route.is_prefix:
            table.prefixes.setdefault(host, []).append((route, rule))
        else:
            table.exact.setdefault(host, {}).setdefault(path, []).append((route, rule))
    for routes in table.prefixes.values():
        routes.sort(key=lambda pair: len(pair[0].stem), reverse=True)
    return table


def holding_read(sub: str) -> Holding:
    """What the mirror holds for this subject now: one query (two for someone unknown)."""
    rows = list(
        RoleMembership.objects.active()
        .filter(user__sub=sub)
        .values_list("role__name", "expires_at", "user__is_active")
    )
    if rows:
        return Holding(known=True, active=rows[0][2], roles={name: end for name, end, _ in rows})
    active = User.objects.filter(sub=sub).values_list("is_active", flat=True).first()
    return Holding(known=active is not None, active=active is not False)


class _Kept:
    """This process's copy, under one version of `access.viewers`, until a moment (monotonic
    seconds) past which it is read again whatever the version says."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version: str | None = None
        self.table: RouteTable | None = None
        self.holdings: dict[str, Holding] = {}
        self.bundle: Bundle | None = None
        self.table_until = 0.0
        self.bundle_until = 0.0


_kept = _Kept()


@dataclass(frozen=True)
class Snapshot:
    """The route table and a way to the holdings, as of one decision."""

    table: RouteTable
    version: str | None

    def holding(self, sub: str) -> Holding:
        if self.version is None:
            return holding_read(sub)
        found = _kept.holdings.get(sub)
        # Only what was kept under this decision's version (another thread may have moved on).
        if found is not None and _kept.version == self.version:
            return found
        # Read after the version was: a change committed meanwhile replaced it, and the next
        # decision reads again.
        holding = holding_read(sub)
        with _kept.lock:
            if _kept.version == self.version:
                if len(_kept.holdings) >= MAX_HOLDINGS:
                    _kept.holdings.clear()
                _kept.holdings[sub] = holding
        return holding


def gateway_snapshot() -> Snapshot:
    """The routes and holdings in force now (see the module's docstring)."""
    version = viewers_version()
    if version is None:
        return Snapshot(route_table_read(), None)
    table = _kept.table
    now = time.monotonic()
    if _kept.version == version and table is not None and now < _kept.table_until:
        return Snapshot(table, version)
    table = route_table_read()
    with _kept.lock:
        if _kept.version != version or now >= _kept.table_until:
            _kept.holdings = {}
        if _kept.version != version:
            _kept.bundle = None
        _kept.version, _kept.table = version, table
        _kept.table_until = now + KEPT_SECONDS
    return Snapshot(table, version)


def gateway_forget() -> None:
    """Drop what this process keeps (tests; a version change does it otherwise)."""
    with _kept.lock:
        _kept.version, _kept.table, _kept.holdings, _kept.bundle = None, None, {}, None


# --- The OPA bundle ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bundle:
    """An OPA bundle (a gzipped tar) and its revision, which is also its ETag."""

    revision: str
    content: bytes
    # When the first holding in it ends: a bundle kept past then is made anew.
    first_end: datetime | None = None

    @property
    def etag(self) -> str:
        return f'"{self.revision}"'


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def bundle_data() -> tuple[
    list[dict[str, object]], dict[str, dict[str, str | None]], datetime | None
]:
    """The routes (each with its entity, audience and required roles, and how its path matches)
    and, for every active person holding one of the roles they require, those roles with their
    ends (and the first of those ends). Roles no route requires are left out: the gateways need
    nothing else."""
    table = route_table_read()
    routes: list[dict[str, object]] = [
        {
            "host": route.host,
            "path": route.path,
            # What Rego compares: the path equal to `path`, or starting with `prefix`.
            "prefix": route.stem if route.is_prefix else None,
            "methods": list(route.methods),
            "entity": rule.entity_ref,
            "audience": rule.audience,
            "roles": sorted(rule.required_roles),
            # Restricted with no valid role: the sample policy lets nobody through.
            "restricted": rule.restricted,
        }
        for route, rule in table.rules
    ]
    required = {role for _, rule in table.rules for role in rule.required_roles}
    holders: dict[str, dict[str, str | None]] = defaultdict(dict)
    memberships = (
        RoleMembership.objects.active()
        .filter(role__name__in=required, user__is_active=True)
        .order_by("user__sub", "role__name")
        .values_list("user__sub", "role__name", "expires_at")
    )
    ends = []
    for sub, role, end in memberships:
        holders[sub][role] = _time(end)
        if end is not None:
            ends.append(end)
    return routes, dict(holders), min(ends, default=None)


def _tar_member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0  # the same data makes the same bytes, and the same revision
    archive.addfile(info, io.BytesIO(data))


def bundle_build() -> Bundle:
    """The bundle as it stands: `.manifest` (revision, roots ["atrium"]),
    `atrium/routes/data.json` and `atrium/holders/data.json`. The revision is a digest of the
    data, so an unchanged catalog and mirror give the same one (and a 304)."""
    routes, holders, first_end = bundle_data()
    documents = {
        "atrium/routes/data.json": json.dumps(routes, sort_keys=True).encode(),
        "atrium/holders/data.json": json.dumps(holders, sort_keys=True).encode(),
    }
    digest = hashlib.sha256()
    for name, data in documents.items():
        digest.update(name.encode() + b"\0" + data + b"\0")
    revision = digest.hexdigest()[:32]
    manifest = json.dumps({"revision": revision, "roots": ["atrium"]}).encode()
    buffer = io.BytesIO()
    # mtime 0 in the gzip header too: the bytes depend on the data alone.
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        _tar_member(archive, ".manifest", manifest)
        for name, data in documents.items():
            _tar_member(archive, name, data)
    return Bundle(revision=revision, content=buffer.getvalue(), first_end=first_end)


def gateway_bundle() -> Bundle:
    """The bundle, made once per version in this process (every time without Redis). A grant
    ending on time changes no version, so a kept bundle is made anew once one of its holdings
    has ended."""
    version = viewers_version()
    kept = _kept.bundle
    now = time.monotonic()
    if (
        version is not None
        and _kept.version == version
        and kept is not None
        and now < _kept.bundle_until
        and (kept.first_end is None or kept.first_end > timezone.now())
    ):
        return kept
    bundle = bundle_build()
    if version is not None:
        with _kept.lock:
            if _kept.version != version:
                _kept.version, _kept.table, _kept.holdings = version, None, {}
            _kept.bundle, _kept.bundle_until = bundle, now + KEPT_SECONDS
    return bundle


# --- One decision, and the same decision explained step by step ---------------------------------


@dataclass(frozen=True)
class Target:
    """The request a gateway asks about, as routes match it."""

    method: str
    host: str
    raw_path: str
    # Why the request names no target to decide (a forward-auth check missing a header).
    refusal: str = ""

    @property
    def path(self) -> str | None:
        return request_path(self.raw_path)

    def __str__(self) -> str:
        return f"{self.method} {self.host}{self.raw_path.split('?', 1)[0][:300]}"


@dataclass(frozen=True)
class Outcome:
    """A decision, with the route it was made for and what a 401 says to the client."""

    decision: GatewayDecision
    target: Target
    route: Route | None = None
    rule: RouteRule | None = None
    www_authenticate: str = ""


def bearer_of(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header; None for none, "" for another form."""
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def gateway_decide(
    *, target: Target, authorization: str | None, snapshot: Snapshot | None = None
) -> Outcome:
    """What `/authz/` answers for this request: the route that takes it, the token checked as
    the API's bearer tokens are (for the route's audience), the policy's decision."""
    if target.refusal:
        return Outcome(GatewayDecision(403, target.refusal), target)
    path = target.path
    if path is None:
        reason = (
            f"the path of {target} is not in normal form (empty, . or .. segments, ..;, an "
            "encoded / or a twice-encoded escape, a #): the upstream could read it otherwise"
        )
        return Outcome(GatewayDecision(403, reason), target)
    snapshot = snapshot or gateway_snapshot()
    found = snapshot.table.match(method=target.method, host=target.host, path=path)
    if found is None:
        return Outcome(gateway_unknown_route(target=str(target)), target)
    route, rule = found
    token = bearer_of(authorization)
    if not token:
        reason = "send the access token as Authorization: Bearer <token>"
        challenge = f'Bearer realm="atrium", audience="{rule.audience}"'
        return Outcome(GatewayDecision(401, reason), target, route, rule, challenge)
    try:
        claims = verified_claims(token, audience=rule.audience)
        caller = principal_of_claims(claims)
    except BearerError as error:
        return Outcome(GatewayDecision(401, error.description), target, route, rule,
                       error.www_authenticate)  # fmt: skip
    if not (caller.sub.isascii() and caller.sub.isprintable()):
        refusal = BearerError("the token's sub is not printable ASCII, which no header carries")
        return Outcome(GatewayDecision(401, refusal.description), target, route, rule,
                       refusal.www_authenticate)  # fmt: skip
    holding = Holding() if caller.is_machine else snapshot.holding(caller.sub)
    decision = gateway_decision(rule=rule, caller=caller, holding=holding, now=timezone.now())
    return Outcome(decision, target, route, rule)


@dataclass(frozen=True)
class Explanation:
    """`/authz/explain`'s steps, each a Finding, ending in the decision `/authz/` would make."""

    steps: list[Finding]
    outcome: Outcome


def gateway_explain(*, target: Target, token: str, viewer: Viewer) -> Explanation:
    """What `/authz/` would do with this token at this target, step by step.

    It tells no more than the decision endpoint tells anyone holding the token: the route's
    entity and required roles (public on every entity's page), the route as declared only to
    whom the entity's details are open (`Viewer.may_see_restricted`), and the roles of the
    token's subject only once every check of the token passed (the decision reaches them only
    then), and only those of the route's required roles."""
    outcome = gateway_decide(target=target, authorization=f"Bearer {token}")
    steps: list[Finding] = []
    rule = outcome.rule
    if target.path is None:
        steps.append(Finding("route", False, outcome.decision.reason))
    elif rule is None:
        steps.append(Finding("route", False, f"no route is declared for {target}"))
    else:
        shown = viewer.may_see_restricted(restricted=rule.restricted,
                                          required_roles=rule.required_roles,
                                          owner_ref=rule.owner_ref)  # fmt: skip
        declared = f" as {rule.route}" if shown else ""
        roles = ", ".join(sorted(rule.required_roles)) or (
            "a role its annotation fails to name" if rule.restricted else "no role"
        )
        steps.append(Finding("route", True, f"declared by {rule.entity_ref}{declared}; "
                             f"audience {rule.audience}; requires {roles}"))  # fmt: skip
    found, claims = signature_findings(token)
    steps += found
    audience = rule.audience if rule is not None else settings.AUTHZ_DEFAULT_AUDIENCE
    if claims is not None:
        claim_steps = claims_findings(claims, audience=audience)
        steps += claim_steps
        if all(step.passed for step in claim_steps):
            caller = principal_of_claims(claims)
            scopes = " ".join(sorted(caller.scopes)) or "none"
            who = f"the client {caller.client_id}" if caller.is_machine else "a person"
            steps.append(Finding("scopes", True, f"{who}; scopes: {scopes}"))
            if rule is not None and outcome.decision.status != 401:
                steps.append(_roles_step(outcome, rule, caller.is_machine))
    else:
        steps.append(Finding("claims", None, "not checked: the signature did not verify"))
    return Explanation(steps, outcome)


def _roles_step(outcome: Outcome, rule: RouteRule, machine: bool) -> Finding:
    """The roles the decision found: those of the route's required roles the subject holds in
    the mirror now (or, for a machine, has as scopes)."""
    held = ", ".join(outcome.decision.roles)
    if outcome.decision.allowed:
        where = "as scopes" if machine else "in the mirror now"
        return Finding("roles", True, f"holds {held or 'no role needed'} {where}")
    return Finding("roles", False, outcome.decision.reason)
