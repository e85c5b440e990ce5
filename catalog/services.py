"""Writes of the catalog: registering locations and applying what a refresh read."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.db import connections, router, transaction

from access.viewers import viewers_changed
from catalog.ingest import read_location
from catalog.models import (
    Entity,
    FacetCount,
    Location,
)
from catalog.refresh import (
    RefreshReport,
    cyclic_gc_paused,
    kept_collides,
    reading_salt,
    refresh_apply,
    refresh_outcome_record,
    refresh_plan,
    refresh_rows,
    refresh_statistics,
    stored_sources,
    unchanged_candidates,
)
from catalog.selectors import facet_count_rows

if TYPE_CHECKING:
    from access.audit import Actor

# Any number both processes agree on: refreshes take it in turn to rewrite the facet counts.
FACET_COUNTS_LOCK = 0x617472  # "atr"


class LocationRefused(ValueError):
    """A registration that asks for what no location may be given; the message says why."""


def normalize_target(target: str) -> str:
    """URLs as given; paths made absolute, so one file is one location however it is named."""
    if urlsplit(target).scheme in {"http", "https"}:
        return target
    return str(Path(target).expanduser().resolve())


def _allowed_columns(allow_kinds: Iterable[str]) -> dict[str, bool]:
    """The location's columns for these extra kinds, or LocationRefused naming a kind that
    cannot be allowed. A default kind is allowed anyway, so naming it changes nothing."""
    if isinstance(allow_kinds, str):
        raise TypeError("allow_kinds is a list of kinds, such as ['User', 'Group']")
    allowable = {kind.lower(): kind for kind in Location.ALLOWABLE_KINDS}
    defaults = {kind.lower() for kind in Location.DEFAULT_KINDS}
    chosen = set()
    for raw in allow_kinds:
        kind = str(raw).strip().lower()
        if kind in allowable:
            chosen.add(allowable[kind])
        elif kind not in defaults:
            raise LocationRefused(
                f"{raw!r} is not a kind a location can be allowed: only "
                f"{' and '.join(Location.ALLOWABLE_KINDS)} can be "
                f"({', '.join(Location.DEFAULT_KINDS)} come from any location)"
            )
    return {"allows_users": "User" in chosen, "allows_groups": "Group" in chosen}


@dataclass(frozen=True)
class Allowed:
    """What a registration changed of what a location may define: the kinds and whether it
    may declare gateway routes it allowed before, None for what it left as it was."""

    kinds_before: list[str] | None = None
    routes_before: bool | None = None


@transaction.atomic
def _location_register(
    *, target: str, allow_kinds: Iterable[str] | None, allow_routes: bool | None = None
) -> tuple[Location, Allowed]:
    """The location, and what it was allowed before if this changed it."""
    columns = {} if allow_kinds is None else _allowed_columns(allow_kinds)
    if allow_routes is not None:
        columns["allows_routes"] = allow_routes
    location, created = Location.objects.get_or_create(
        target=normalize_target(target), defaults=columns
    )
    if created or not columns:
        return location, Allowed()
    location = Location.objects.select_for_update().get(pk=location.pk)
    if all(getattr(location, name) == value for name, value in columns.items()):
        return location, Allowed()
    kinds_before, routes_before = location.allow_kinds, location.allows_routes
    for name, value in columns.items():
        setattr(location, name, value)
    location.save(update_fields=list(columns))
    # Its Users and groups may now count, or no longer; so may its routes (access.viewers).
    viewers_changed()
    return location, Allowed(
        kinds_before=None if kinds_before == location.allow_kinds else kinds_before,
        routes_before=None if routes_before == location.allows_routes else routes_before,
    )


def location_register(
    *, target: str, allow_kinds: Iterable[str] | None = None, allow_routes: bool | None = None
) -> Location:
    """The location of this target, registered if new.

    `allow_kinds` are the kinds it may define besides `Location.DEFAULT_KINDS` (User, Group,
    in any case; LocationRefused for another): exactly these from now on. None keeps what a
    registered location has; a new one gets none. The entities of a kind no longer allowed
    go at its next refresh. `allow_routes` likewise says whether its entities may declare
    gateway routes (`atrium.dev/gateway-routes`); a new location may not.
    """
    location, _ = _location_register(
        target=target, allow_kinds=allow_kinds, allow_routes=allow_routes
    )
    return location


@transaction.atomic
@cyclic_gc_paused()
def location_refresh(*, location: Location) -> RefreshReport:
    """Read the location again and make the catalog match it, in one transaction: plan the
    changes (`catalog.refresh.refresh_plan`), apply them to the entities, rewrite their rows.

    An entity whose document is now invalid keeps its last good version, with the problem
    beside it; an entity no longer emitted is removed, unless its file could not be read at
    all; an entity another location already provides stays with that location. An entity of
    a kind the location may not define (`Location.may_define`; a Location entity's targets are
    read as part of the location, so under its rules) is refused as its own problem, and
    removed if an earlier refresh stored it.
    """
    started = time.monotonic()
    location = Location.objects.select_for_update().get(pk=location.pk)
    salt, held = reading_salt(location), stored_sources(location)
    result = read_location(location.target, known=unchanged_candidates(location, held), salt=salt)
    if kept_collides(location, result):
        # A file read now emits an entity a skipped one holds: which of them keeps it is the
        # order of reading's to decide, so everything is read again.
        result = read_location(location.target, salt=salt)
    report = RefreshReport(location=location, problems=list(result.problems))
    plan = refresh_plan(location=location, result=result, report=report, held=held)
    refresh_apply(plan=plan, location=location)
    refresh_rows(plan=plan)
    refresh_statistics(plan=plan)
    if report.added or report.updated or report.removed:
        facet_counts_rebuild()
    refresh_outcome_record(location=location, result=result, report=report, started=started)
    return report


def location_import(
    *,
    target: str,
    dry_run: bool = False,
    with_entities: bool = False,
    allow_kinds: Iterable[str] | None = None,
    allow_routes: bool | None = None,
) -> RefreshReport:
    """Register the target if it is new and read it; a dry run rolls all of that back.

    `allow_kinds` and `allow_routes` as `location_register` takes them; the report tells
    whether they changed
    (`allow_kinds_detail`, for the audit record). `with_entities` keeps the location's
    entities in the report (read before any rollback), for callers that show them.
    """
    with transaction.atomic():
        location, before = _location_register(
            target=target, allow_kinds=allow_kinds, allow_routes=allow_routes
        )
        report = location_refresh(location=location)
        report.allow_kinds_before = before.kinds_before
        report.allow_routes_before = before.routes_before
        if with_entities:
            report.entities = list(report.location.entities.all())
        if dry_run:
            transaction.set_rollback(True)
    return report


@transaction.atomic
def location_delete(*, location: Location) -> list[str]:
    """Forget a location and every entity it provided; the refs that went."""
    refs = sorted(location.entities.values_list("ref", flat=True))
    location.delete()
    facet_counts_rebuild()
    return refs


@transaction.atomic
def entity_delete(*, entity: Entity, actor: Actor, location: str) -> None:
    """Remove one entity now, as Backstage's DELETE by uid does: its location brings it back
    on its next refresh if it still emits it. Its search rows, relations and required roles
    go with it; the audit log says who removed it."""
    Entity.objects.filter(pk=entity.pk).delete()
    facet_counts_rebuild()
    actor.record("catalog.entity_removed", entity.ref, uid=str(entity.uid), location=location)


@transaction.atomic
def facet_counts_rebuild() -> None:
    """Count the whole catalog's facets again, per kind, for the catalog page of one kind or
    of every kind."""
    viewers_changed()  # the catalog changed: so may who a person is in it (access.viewers)
    connection = connections[router.db_for_write(FacetCount)]
    if connection.vendor == "postgresql":
        # Two refreshes committing together would each delete only the rows they can see.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FACET_COUNTS_LOCK])
    FacetCount.objects.all().delete()
    FacetCount.objects.bulk_create(
        FacetCount(kind=kind, restricted=restricted, facet=facet, value=value, count=count)
        for kind, restricted, facet, value, count in facet_count_rows()
    )
