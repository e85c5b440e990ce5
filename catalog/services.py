"""Writes of the catalog: registering locations and applying what a refresh read."""

from __future__ import annotations

import dataclasses
import functools
import gc
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.db import connections, models, router, transaction
from django.utils import timezone

from catalog.annotations import AccessAnnotations, access_annotations
from catalog.ingest import Emitted, Problem, read_location
from catalog.models import (
    Entity,
    EntityRequiredRole,
    FacetCount,
    Location,
    Relation,
    SearchRow,
)
from catalog.search import search_rows
from catalog.selectors import entity_facets

if TYPE_CHECKING:
    from access.audit import Actor

# Any number both processes agree on: refreshes take it in turn to rewrite the facet counts.
FACET_COUNTS_LOCK = 0x617472  # "atr"


@dataclass
class RefreshReport:
    location: Location
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    problems: list[Problem] = field(default_factory=list)
    # The location's entities as they stood after the refresh, when asked for (`location_import`).
    entities: list[Entity] = field(default_factory=list)
    # The kinds the location was allowed before `location_import` changed them; None when
    # the location is new or kept its kinds.
    allow_kinds_before: list[str] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def total(self) -> int:
        """Entities the refresh accepted from the location."""
        return len(self.added) + len(self.updated) + self.unchanged

    @property
    def allow_kinds_detail(self) -> dict[str, Any]:
        """What the audit record of a registration says of the kinds the location may define
        besides the default ones: now, and before when the registration changed them."""
        detail: dict[str, Any] = {"allow_kinds": self.location.allow_kinds}
        if self.allow_kinds_before is not None:
            detail["allow_kinds_before"] = self.allow_kinds_before
        return detail


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


@transaction.atomic
def _location_register(
    *, target: str, allow_kinds: Iterable[str] | None
) -> tuple[Location, list[str] | None]:
    """The location, and the kinds it was allowed before if this changed them."""
    columns = None if allow_kinds is None else _allowed_columns(allow_kinds)
    location, created = Location.objects.get_or_create(
        target=normalize_target(target), defaults=columns or {}
    )
    if created or columns is None:
        return location, None
    location = Location.objects.select_for_update().get(pk=location.pk)
    before = location.allow_kinds
    if all(getattr(location, name) == value for name, value in columns.items()):
        return location, None
    for name, value in columns.items():
        setattr(location, name, value)
    location.save(update_fields=list(columns))
    return location, before


def location_register(*, target: str, allow_kinds: Iterable[str] | None = None) -> Location:
    """The location of this target, registered if new.

    `allow_kinds` are the kinds it may define besides `Location.DEFAULT_KINDS` (User, Group,
    in any case; LocationRefused for another): exactly these from now on. None keeps what a
    registered location has; a new one gets none. The entities of a kind no longer allowed
    go at its next refresh.
    """
    location, _ = _location_register(target=target, allow_kinds=allow_kinds)
    return location


def _etag(entity: dict[str, Any]) -> str:
    canonical = json.dumps(entity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:40]


def _descriptor(emitted: Emitted, uid: str, etag: str) -> dict[str, Any]:
    entity = emitted.valid.entity
    descriptor = {
        "apiVersion": entity["apiVersion"],
        "kind": entity["kind"],
        "metadata": {**entity["metadata"], "uid": uid, "etag": etag},
    }
    if "spec" in entity:
        descriptor["spec"] = entity["spec"]
    return descriptor


BROWSING_COLUMNS = [
    "kind", "namespace", "name", "title", "description", "spec_type", "lifecycle",
    "owner_ref", "system_ref", "restricted", "tags", "search_text",
]  # fmt: skip


def _copy_browsing_columns(entity: Entity, emitted: Emitted, access: AccessAnnotations) -> None:
    data = emitted.valid.entity
    metadata, spec = data["metadata"], data.get("spec") or {}
    entity.kind, entity.namespace, entity.name = (
        data["kind"],
        metadata["namespace"],
        metadata["name"],
    )
    entity.title = str(metadata.get("title") or "")[:255]
    entity.description = str(metadata.get("description") or "")
    entity.spec_type = str(spec.get("type") or "")[:100]
    entity.lifecycle = str(spec.get("lifecycle") or "")[:100]
    relations = emitted.valid.relations
    entity.owner_ref = next((r.target.key for r in relations if r.type == "ownedBy"), "")
    entity.system_ref = next(
        (
            r.target.key
            for r in relations
            if r.type == "partOf" and r.target.kind.lower() == "system"
        ),
        "",
    )
    entity.restricted = access.restricted
    # A tag listed twice is one tag.
    entity.tags = list(dict.fromkeys(str(tag) for tag in metadata.get("tags") or []))
    # What the search box finds an entity by; a restricted entity's tags are a detail not
    # everyone may see, so they are not searchable either (filters on them are gated too).
    public_tags = [] if entity.restricted else entity.tags
    search_text = " ".join([entity.name, entity.title, entity.description, *public_tags])
    entity.search_text = search_text[:MAX_SEARCH_TEXT]


# What of an entity's text the search box looks in: PostgreSQL refuses a full-text document
# over 1 MB, which a description of a megabyte of distinct words would make, failing the
# refresh. The name, title and start of the description come first and are kept.
MAX_SEARCH_TEXT = 64_000
# Entity.source's column; a path deep in a folder can be longer.
MAX_SOURCE_LENGTH = 2048
# A problem longer than this (one quoting a 10,000-character value) keeps its start and end.
MAX_PROBLEM_LENGTH = 1_000


def _storable(message: str) -> str:
    """A problem's text as stored and shown: without what PostgreSQL cannot store in JSON (a
    NUL, half a surrogate pair), and short enough to read, so no message fails a refresh."""
    if "\x00" in message:
        message = message.replace("\x00", "\\0")
    if not message.isascii():
        message = message.encode("utf-8", errors="backslashreplace").decode("utf-8")
    if len(message) > MAX_PROBLEM_LENGTH:
        message = f"{message[:700]} … {message[-200:]}"
    return message


_ENTITY_COLUMN: dict[type[models.Model], str] = {
    Relation: "origin_id__in",
    SearchRow: "entity_id__in",
    EntityRequiredRole: "entity_id__in",
}


def _insert_rows(
    model: type[models.Model], fields: list[str], rows: Iterable[tuple[Any, ...]]
) -> None:
    """Many rows into one table: PostgreSQL's COPY (tens of times faster than INSERTs for the
    million search rows of a large catalog), batched INSERTs elsewhere."""
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(
            [model(**dict(zip(fields, row, strict=True))) for row in rows], batch_size=2000
        )
        return
    quote = connection.ops.quote_name
    by_attname = {field.attname: field.column for field in model._meta.concrete_fields}
    columns = ", ".join(quote(by_attname[name]) for name in fields)
    sql = f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


PLAIN_FIELDS = (models.CharField, models.TextField, models.BooleanField, models.IntegerField)


def _insert_entities(entities: list[Entity], *, location: Location) -> None:
    """Insert new entities and give each its primary key."""
    connection = connections[router.db_for_write(Entity)]
    if connection.vendor != "postgresql" or not entities:
        Entity.objects.bulk_create(entities)
        return
    # The database computes generated columns (the full-text document) itself.
    fields = [
        field
        for field in Entity._meta.concrete_fields
        if not field.primary_key and not field.generated
    ]
    # Text, numbers and booleans go to COPY as they are; Django prepares the rest (JSON, UUID,
    # timestamps). Preparing every value through Django was a tenth of a large import.
    plain = [isinstance(field, PLAIN_FIELDS) and not field.choices for field in fields]
    _insert_rows(
        Entity,
        [field.attname for field in fields],
        (
            tuple(
                getattr(entity, field.attname)
                if is_plain
                else field.get_db_prep_save(field.pre_save(entity, add=True), connection)
                for field, is_plain in zip(fields, plain, strict=True)
            )
            for entity in entities
        ),
    )
    pks = dict(
        Entity.objects.filter(location=location, ref__in=[entity.ref for entity in entities])
        .values_list("ref", "pk")
    )  # fmt: skip
    for entity in entities:
        entity.pk = pks[entity.ref]
        entity._state.adding = False


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Python's cycle collector paused while a refresh builds its hundreds of thousands of
    long-lived objects: each full collection walks them all again, a third of the time of
    reading 100,000 entities. A refresh makes next to no cycles; collecting resumes after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _is_url(target: str) -> bool:
    return urlsplit(target).scheme in {"http", "https"}


# How entity pages name a file location: where the server keeps files is for portal admins
# (the locations page, `import_catalog`), not for everyone who reads an entity's problems.
HIDDEN_LOCATION = "(a file location on the Atrium server)"


def _problem_shown(location: Location, others: Iterable[str]) -> Callable[[Problem], str]:
    """How an entity's page shows a problem of this location: a file's path relative to the
    location's folder, and file locations (this one, `others` its messages name) unnamed."""
    if _is_url(location.target):
        return str
    root = Path(location.target)
    folder = root if root.is_dir() else root.parent
    # Longest first, so that a target inside another is hidden whole.
    hidden = sorted({location.target, *(t for t in others if not _is_url(t))}, key=len)[::-1]

    def shown(problem: Problem) -> str:
        path = Path(problem.source)
        if not _is_url(problem.source):
            inside = path.is_relative_to(folder)
            source = str(path.relative_to(folder)) if inside else path.name
            problem = dataclasses.replace(problem, source=source)
        message = problem.message
        for target in hidden:
            message = message.replace(target, HIDDEN_LOCATION)
        return str(dataclasses.replace(problem, message=message))

    return shown


@transaction.atomic
@_cyclic_gc_paused()
def location_refresh(*, location: Location) -> RefreshReport:
    """Read the location again and make the catalog match it, in one transaction.

    An entity whose document is now invalid keeps its last good version, with the problem
    beside it; an entity no longer emitted is removed, unless its file could not be read at
    all; an entity another location already provides stays with that location. An entity of
    a kind the location may not define (`Location.may_define`; a Location entity's targets are
    read as part of the location, so under its rules) is refused as its own problem, and
    removed if an earlier refresh stored it.
    """
    started = time.monotonic()
    location = Location.objects.select_for_update().get(pk=location.pk)
    result = read_location(location.target)
    report = RefreshReport(location=location, problems=list(result.problems))

    refs = [emitted.valid.ref.key for emitted in result.entities]
    # Refs another location already provides, with that location's target.
    elsewhere = dict(
        Entity.objects.filter(ref__in=refs)
        .exclude(location=location)
        .values_list("ref", "location__target")
    )
    # The location's rule, asked once per kind rather than once per entity.
    may_define = functools.cache(location.may_define)
    accepted: dict[str, Emitted] = {}
    for emitted in result.entities:
        ref = emitted.valid.ref.key
        first = accepted.get(ref)
        holder = elsewhere.get(ref)
        field_path = ""
        if len(emitted.source) > MAX_SOURCE_LENGTH:
            field_path = "source"
            message = (
                f"the file's path is {len(emitted.source):,} characters; Atrium stores at most "
                f"{MAX_SOURCE_LENGTH:,}"
            )
        elif not may_define(emitted.valid.kind):
            field_path = "kind"
            message = (
                f"NotAllowedError: {emitted.valid.kind} entities may not come from the location "
                f"{location.target}; a portal admin can allow "
                f"{' and '.join(Location.ALLOWABLE_KINDS)} for it"
            )
        elif first is not None:
            message = f"ConflictError: {ref} is also defined at {first.source}:{first.document}"
        elif holder is not None:
            message = f"ConflictError: {ref} is already provided by the location {holder}"
        else:
            accepted[ref] = emitted
            continue
        report.problems.append(Problem(emitted.source, emitted.document, message, field_path, ref))

    shown = _problem_shown(location, elsewhere.values())
    problems_by_ref: dict[str, list[str]] = {}
    for problem in report.problems:
        if problem.ref:
            problems_by_ref.setdefault(problem.ref, []).append(_storable(shown(problem)))

    # The descriptors are not needed to compare: the etag stands for them.
    current = {
        entity.ref: entity
        for entity in Entity.objects.filter(location=location).defer("descriptor", "search_vector")
    }
    # Atrium's annotations, read once per entity for problems, columns and required roles.
    access = {ref: access_annotations(emitted.valid.entity) for ref, emitted in accepted.items()}
    new_entities, changed = [], []
    for ref, emitted in accepted.items():
        existing = current.get(ref)
        data = emitted.valid.entity
        etag = _etag(data)
        # Its annotations' problems, and for a Location the targets it could not read.
        problems = [
            _storable(problem) for problem in [*access[ref].problems, *map(shown, emitted.problems)]
        ]
        parent_ref = emitted.parent.valid.ref.key if emitted.parent else ""
        if existing is None:
            entity = Entity(ref=ref, location=location)
            new_entities.append(entity)
            report.added.append(ref)
        elif (
            existing.etag != etag
            or existing.problems != problems
            or existing.source != emitted.source
            or existing.parent_ref != parent_ref
        ):
            entity = existing
            changed.append(entity)
            if existing.etag != etag:
                report.updated.append(ref)
            else:
                report.unchanged += 1
        else:
            report.unchanged += 1
            continue
        entity.source, entity.document = emitted.source, emitted.document
        entity.parent_ref = parent_ref
        entity.etag = etag
        entity.descriptor = _descriptor(emitted, str(entity.uid), etag)
        entity.problems = problems
        _copy_browsing_columns(entity, emitted, access[ref])

    # Whatever its file holds now, an entity of a kind the location may not define (one read
    # before the rule, or before an admin took the permission away) is not kept.
    refused = {ref for ref, entity in current.items() if not may_define(entity.kind)}
    # A rejected document keeps its entity's last good version and shows why it was rejected.
    for ref, messages in problems_by_ref.items():
        existing = current.get(ref)
        if existing is not None and ref not in accepted and ref not in refused:
            existing.problems = messages
            changed.append(existing)

    gone = [
        entity
        for ref, entity in current.items()
        if ref in refused
        or (
            ref not in accepted
            and ref not in problems_by_ref
            and entity.source not in result.unreadable
        )
    ]
    report.removed = sorted(entity.ref for entity in gone)
    Entity.objects.filter(pk__in=[entity.pk for entity in gone]).delete()
    _insert_entities(new_entities, location=location)
    Entity.objects.bulk_update(changed, [*BROWSING_COLUMNS, "source", "document", "etag",
                                         "descriptor", "problems", "parent_ref"])  # fmt: skip

    touched = {entity.ref: entity for entity in [*new_entities, *changed] if entity.ref in accepted}
    # New entities have no rows yet; only changed ones lose their old rows.
    rewritten = [entity.pk for entity in changed if entity.ref in accepted]
    for model in (Relation, SearchRow, EntityRequiredRole):
        model.objects.filter(**{_ENTITY_COLUMN[model]: rewritten}).delete()
    emitted_touched = [
        (touched[ref].pk, emitted) for ref, emitted in accepted.items() if ref in touched
    ]
    _insert_rows(
        SearchRow,
        ["entity_id", "key", "value", "original_value"],
        (
            (pk, key, value, original)
            for pk, emitted in emitted_touched
            for key, value, original in search_rows(
                touched[emitted.valid.ref.key].descriptor,
                [(r.type, r.target.key) for r in emitted.valid.relations
                 if r.source.key == emitted.valid.ref.key],
            )
        ),
    )  # fmt: skip
    _insert_rows(
        EntityRequiredRole,
        ["entity_id", "role_name"],
        (
            (pk, role)
            for pk, emitted in emitted_touched
            for role in dict.fromkeys(access[emitted.valid.ref.key].required_roles)
        ),
    )
    _insert_rows(
        Relation,
        ["origin_id", "source_ref", "type", "target_ref"],
        (
            (pk, *relation)
            for pk, emitted in emitted_touched
            # An entity may name the same relation twice (`dependsOn` listed twice): once here.
            for relation in dict.fromkeys(
                (r.source.key, r.type, r.target.key) for r in emitted.valid.relations
            )
        ),
    )

    if report.added or report.updated or report.removed:
        facet_counts_rebuild()

    location.last_refreshed_at = timezone.now()
    if result.unreadable and not result.entities:
        location.last_outcome = Location.Outcome.FAILED
    elif report.problems:
        location.last_outcome = Location.Outcome.PROBLEMS
    else:
        location.last_outcome = Location.Outcome.OK
    location.last_problems = [_storable(str(problem)) for problem in report.problems]
    location.last_refresh_seconds = time.monotonic() - started
    location.save(
        update_fields=["last_refreshed_at", "last_outcome", "last_problems", "last_refresh_seconds"]
    )
    return report


def location_import(
    *,
    target: str,
    dry_run: bool = False,
    with_entities: bool = False,
    allow_kinds: Iterable[str] | None = None,
) -> RefreshReport:
    """Register the target if it is new and read it; a dry run rolls all of that back.

    `allow_kinds` as `location_register` takes them; the report tells whether they changed
    (`allow_kinds_detail`, for the audit record). `with_entities` keeps the location's
    entities in the report (read before any rollback), for callers that show them.
    """
    with transaction.atomic():
        location, kinds_before = _location_register(target=target, allow_kinds=allow_kinds)
        report = location_refresh(location=location)
        report.allow_kinds_before = kinds_before
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
    """Count the whole catalog's facets again, for the unfiltered catalog page."""
    connection = connections[router.db_for_write(FacetCount)]
    if connection.vendor == "postgresql":
        # Two refreshes committing together would each delete only the rows they can see.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FACET_COUNTS_LOCK])
    FacetCount.objects.all().delete()
    facets = entity_facets(entities=Entity.objects.all(), limit=None, cap=None)
    FacetCount.objects.bulk_create(
        FacetCount(facet=name, value=value.value, count=value.count)
        for name, values in facets.groups.items()
        for value in values
    )
