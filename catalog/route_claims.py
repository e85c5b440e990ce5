"""Which gateway routes each entity of a location holds after a refresh, and storing them.

A refresh plans the claims with the rest of its plan (`route_claims_plan`, before it writes, so
that a refused route is its entity's problem like any other) and stores them once its entities
have their keys (`route_claims_apply`). The first claim keeps a route: a route that overlaps one
another entity holds is refused, whoever declared it and however often they register it again;
among routes new in one refresh, the first read keeps it, as with entity refs. Claims are
planned one location at a time (an advisory lock on PostgreSQL), so two refreshes never both
find a route free.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connections, router
from django.utils import timezone

from access.viewers import viewers_changed
from catalog.ingest import Emitted
from catalog.models import Entity, GatewayRoute, Location
from catalog.routes import GATEWAY_ROUTES, GatewayAnnotations, Route, gateway_annotations

# Any number every process agrees on: refreshes plan route claims one at a time.
ROUTE_CLAIMS_LOCK = 0x726F757465  # "route"


@dataclass
class Claim:
    route: Route
    claimed_at: datetime | None = None  # None: new in this refresh


@dataclass
class RouteClaims:
    """The routes each entity holds after the refresh (refs absent: left as they are) and the
    problems of each entity's routes."""

    held: dict[str, tuple[list[Claim], str]] = field(default_factory=dict)
    problems: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


def _stored(rows: list[dict[str, object]]) -> dict[str, list[Claim]]:
    by_ref: dict[str, list[Claim]] = defaultdict(list)
    for row in rows:
        methods = tuple(str(row["methods"]).split(",")) if row["methods"] else ()
        route = Route(host=str(row["host"]), path=str(row["path"]), methods=methods)
        by_ref[str(row["entity__ref"])].append(Claim(route, row["claimed_at"]))  # type: ignore[arg-type]
    return by_ref


_COLUMNS = ("entity__ref", "host", "path", "methods", "claimed_at")


def route_claims_plan(*, location: Location, accepted: dict[str, Emitted]) -> RouteClaims:
    """The claims of the location's emitted entities, judged against every other entity's."""
    gateway: dict[str, GatewayAnnotations] = {
        ref: gateway_annotations(emitted.valid.entity) for ref, emitted in accepted.items()
    }
    declaring = {ref for ref, found in gateway.items() if found.declared or found.problems}
    stored = _stored(list(GatewayRoute.objects.filter(entity__location=location).values(*_COLUMNS)))
    claims = RouteClaims()
    if not declaring and not stored:
        return claims
    connection = connections[router.db_for_write(GatewayRoute)]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROUTE_CLAIMS_LOCK])
    others = GatewayRoute.objects.exclude(entity__location=location).values(*_COLUMNS)
    holders: dict[str, list[tuple[Route, str]]] = defaultdict(list)
    for ref, held in _stored(list(others)).items():
        for claim in held:
            holders[claim.route.host].append((claim.route, ref))

    wanted: dict[str, list[Route]] = {}
    for ref, found in gateway.items():
        if found.problems:
            claims.problems[ref] += found.problems  # its claims stay as they were
        elif found.declared and not location.allows_routes:
            claims.problems[ref].append(
                f"NotAllowedError: {GATEWAY_ROUTES}: this entity's location may not declare "
                "gateway routes; a portal admin can allow it (import_catalog --allow-routes)"
            )
            claims.held[ref] = ([], "")
        elif ref in declaring or ref in stored:
            wanted[ref] = list(found.routes)
    # What the location's entities go on holding counts first, then new routes in read order.
    for ref, held in stored.items():
        keep = held if ref not in wanted else [c for c in held if c.route in wanted[ref]]
        if ref in claims.held and not claims.held[ref][0]:
            keep = []
        for claim in keep:
            holders[claim.route.host].append((claim.route, ref))
        if ref in wanted:
            claims.held[ref] = (keep, gateway[ref].audience)
    for ref, routes in wanted.items():
        kept, audience = claims.held.get(ref, ([], gateway[ref].audience))
        have = {claim.route for claim in kept}
        for route in routes:
            if route in have:
                continue
            holder = next(
                (
                    other
                    for held, other in holders[route.host]
                    if other != ref and held.overlaps(route)
                ),
                None,
            )
            if holder is not None:
                claims.problems[ref].append(
                    f"ConflictError: {GATEWAY_ROUTES}: {str(route)!r} is already claimed by "
                    f"{holder}, which declared it first"
                )
                continue
            kept.append(Claim(route))
            have.add(route)
            holders[route.host].append((route, ref))
        claims.held[ref] = (kept, audience)
    return claims


def route_claims_apply(*, claims: RouteClaims, entities: dict[str, Entity]) -> int:
    """Store the planned claims of these entities (by ref); the rows written or removed."""
    pks = {ref: entities[ref].pk for ref in claims.held if ref in entities}
    rows: dict[int, dict[tuple[str, str, str], GatewayRoute]] = defaultdict(dict)
    for row in GatewayRoute.objects.filter(entity_id__in=pks.values()):
        rows[row.entity_id][(row.host, row.path, row.methods)] = row
    now = timezone.now()
    gone: list[int] = []
    new: list[GatewayRoute] = []
    for ref, pk in pks.items():
        held, audience = claims.held[ref]
        keep = {(c.route.host, c.route.path, c.route.methods_text): c for c in held}
        for key, row in rows[pk].items():
            # A changed audience is a row written anew, its claim's date kept.
            if key not in keep or row.audience != audience:
                gone.append(row.pk)
        for key, claim in keep.items():
            stored = rows[pk].get(key)
            if stored is None or stored.audience != audience:
                since = stored.claimed_at if stored is not None else claim.claimed_at or now
                host, path, methods = key
                new.append(
                    GatewayRoute(
                        entity_id=pk, host=host, path=path, methods=methods, audience=audience,
                        claimed_at=since,
                    )
                )  # fmt: skip
    changed = GatewayRoute.objects.filter(pk__in=gone).delete()[0] if gone else 0
    changed += len(GatewayRoute.objects.bulk_create(new))
    if changed:
        viewers_changed()  # the gateways' route table is kept with the viewers (access.gateway)
    return changed
