"""The steps of a location refresh: plan what changes, apply it to the entities, rewrite their rows.

`catalog.services.location_refresh` runs them in order, in its one transaction.
"""

# About 400 lines, kept whole: the refresh's steps and the column and problem helpers only
# they use; the COPY writes are catalog.bulk.

from __future__ import annotations

import dataclasses
import functools
import gc
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.db import models, router
from django.utils import timezone

from catalog.annotations import AccessAnnotations, access_annotations
from catalog.bulk import analyze_after_commit, insert_entities, insert_rows
from catalog.ingest import Emitted, Problem, ReadResult
from catalog.models import (
    Entity,
    EntityRequiredRole,
    GatewayRoute,
    Location,
    Relation,
    SearchRow,
)
from catalog.route_claims import RouteClaims, route_claims_apply, route_claims_plan
from catalog.search import search_rows


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
    # Whether it might declare gateway routes before `location_import` changed that; None
    # when the location is new or kept it.
    allow_routes_before: bool | None = None

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
        if self.location.allows_routes or self.allow_routes_before is not None:
            detail["allow_routes"] = self.location.allows_routes
        if self.allow_routes_before is not None:
            detail["allow_routes_before"] = self.allow_routes_before
        return detail


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


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
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


@functools.cache
def _code_digest() -> str:
    """The catalog code's own digest: another version of Atrium may read a file differently,
    so after an upgrade every file is read again once."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def reading_salt(location: Location) -> str:
    """What, besides a file and its parent Location entity, decides what the location's
    entities become (catalog.ingest.file_digest): its rules on kinds and routes, and the code."""
    rules = [location.target, ",".join(location.allow_kinds), str(location.allows_routes)]
    return "\0".join([_code_digest(), *rules])


def stored_sources(location: Location) -> dict[str, tuple[str, str]]:
    """The location's entities as stored: ref -> (kind, source file). Read once per refresh, for
    which files it may skip and then what goes and what stands."""
    return {
        ref: (kind, source)
        for ref, kind, source in Entity.objects.filter(location=location)
        .order_by()
        .values_list("ref", "kind", "source")
    }


def unchanged_candidates(location: Location, held: dict[str, tuple[str, str]]) -> dict[str, str]:
    """The digests of the location's files that a refresh may skip if unchanged: those the
    last refresh recorded (`Location.file_digests`) whose entities are all still stored (`held`;
    one removed by hand through the API comes back from its file, as Backstage's do)."""
    recorded: dict[str, list[Any]] = location.file_digests or {}
    counts = Counter(source for _, source in held.values())
    return {
        path: digest for path, (digest, total) in recorded.items() if counts.get(path, 0) == total
    }


def kept_collides(location: Location, result: ReadResult) -> bool:
    """Whether an entity read now is one a skipped file of the location holds."""
    if not result.kept or not result.entities:
        return False
    refs = [emitted.valid.ref.key for emitted in result.entities]
    return Entity.objects.filter(location=location, source__in=result.kept, ref__in=refs).exists()


@dataclass
class RefreshPlan:
    """What a refresh read, judged against what the catalog holds of the location, and the
    entity rows that must change to match it (their fields already set)."""

    # The emitted entities the catalog keeps, by ref, and their annotations, read once.
    accepted: dict[str, Emitted]
    access: dict[str, AccessAnnotations]
    new_entities: list[Entity] = field(default_factory=list)
    changed: list[Entity] = field(default_factory=list)
    gone: list[Entity] = field(default_factory=list)
    # Rows the refresh inserted, updated or deleted, by model label (`refresh_statistics`).
    written: Counter[str] = field(default_factory=Counter)
    # The gateway routes each entity holds after the refresh (catalog.route_claims), and the
    # location's entities as stored before it, by ref, for their keys.
    routes: RouteClaims = field(default_factory=RouteClaims)
    stored: dict[str, Entity] = field(default_factory=dict)


def _judged(
    *, location: Location, result: ReadResult, report: RefreshReport
) -> tuple[dict[str, Emitted], dict[str, str], Callable[[str], bool]]:
    """The emitted entities the location may provide, by ref; the others become problems of
    the report. Also the refs another location already provides (with its target) and the
    location's rule on kinds, which the next steps ask again."""
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
    return accepted, elsewhere, may_define


def _stored_entities(location: Location, *, needed: set[str], held: int) -> dict[str, Entity]:
    """The location's stored entities of these refs, by ref, without their descriptors (the
    etag stands for them). All of them at once when most are needed."""
    entities = Entity.objects.filter(location=location).defer("descriptor", "search_vector")
    if not needed:
        return {}
    if len(needed) * 2 < held:
        entities = entities.filter(ref__in=needed)
    return {entity.ref: entity for entity in entities if entity.ref in needed}


def refresh_plan(
    *,
    location: Location,
    result: ReadResult,
    report: RefreshReport,
    held: dict[str, tuple[str, str]],
) -> RefreshPlan:
    """Judge what the location emitted and compare it with its stored entities (`held`, as
    `stored_sources` read them): which are new, which changed, which go. Writes nothing;
    fills the report's problems, added, updated, unchanged and removed.

    An entity whose document is now invalid keeps its last good version, with the problem
    beside it; an entity no longer emitted goes, unless its file could not be read at all;
    a stored entity of a kind the location may no longer define goes whatever its file holds.
    """
    accepted, elsewhere, may_define = _judged(location=location, result=result, report=report)
    shown = _problem_shown(location, elsewhere.values())
    problems_by_ref: dict[str, list[str]] = {}
    for problem in report.problems:
        if problem.ref:
            problems_by_ref.setdefault(problem.ref, []).append(_storable(shown(problem)))

    # Which entities the location holds, and from where (`held`, `stored_sources`): enough to
    # tell what goes and what stands; whole rows only for those read now or going (a refresh
    # that skipped every file builds none of them).
    # Whatever its file holds now, an entity of a kind the location may not define (one read
    # before the rule, or before an admin took the permission away) is not kept.
    refused = {ref for ref, (kind, _) in held.items() if not may_define(kind)}
    # The entities of files skipped as unchanged stand as they are stored.
    kept = {ref for ref, (_, source) in held.items() if source in result.kept}
    report.unchanged += len(kept - refused)
    gone = {
        ref
        for ref, (_, source) in held.items()
        if ref in refused
        or (
            ref not in accepted
            and ref not in kept
            and ref not in problems_by_ref
            and source not in result.unreadable
        )
    }
    current = _stored_entities(location, needed=(accepted.keys() | problems_by_ref.keys() | gone)
                               & held.keys(), held=len(held))  # fmt: skip
    # Atrium's annotations, read once per entity for problems, columns and required roles.
    access = {ref: access_annotations(emitted.valid.entity) for ref, emitted in accepted.items()}
    plan = RefreshPlan(accepted=accepted, access=access, stored=current)
    # Gateway routes: each refused one is its entity's problem, on its page and in the report.
    # The routes of entities this refresh removes go with them: an entity renamed keeps its.
    plan.routes = route_claims_plan(location=location, accepted=accepted, leaving=gone)
    for ref, messages in plan.routes.problems.items():
        emitted = accepted[ref]
        report.problems += [
            Problem(emitted.source, emitted.document, f"{ref}: {message}", "metadata.annotations",
                    ref)
            for message in messages
        ]  # fmt: skip
    for ref, emitted in accepted.items():
        existing = current.get(ref)
        data = emitted.valid.entity
        etag = _etag(data)
        # Its annotations' problems, and for a Location the targets it could not read.
        problems = [
            _storable(problem)
            for problem in [
                *access[ref].problems, *plan.routes.problems.get(ref, ()),
                *map(shown, emitted.problems),
            ]
        ]  # fmt: skip
        parent_ref = emitted.parent.valid.ref.key if emitted.parent else ""
        if existing is None:
            entity = Entity(ref=ref, location=location)
            plan.new_entities.append(entity)
            report.added.append(ref)
        elif (
            existing.etag != etag
            or existing.problems != problems
            or existing.source != emitted.source
            or existing.parent_ref != parent_ref
        ):
            entity = existing
            plan.changed.append(entity)
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

    # A rejected document keeps its entity's last good version and shows why it was rejected.
    for ref, messages in problems_by_ref.items():
        existing = current.get(ref)
        if existing is not None and ref not in accepted and ref not in refused:
            existing.problems = messages
            plan.changed.append(existing)

    plan.gone = [entity for ref, entity in current.items() if ref in gone]
    report.removed = sorted(entity.ref for entity in plan.gone)
    return plan


def refresh_apply(*, plan: RefreshPlan, location: Location) -> None:
    """Write the planned entities: the gone deleted (their rows with them), the new inserted
    (each given its primary key), the changed updated."""
    _, deleted = Entity.objects.filter(pk__in=[entity.pk for entity in plan.gone]).delete()
    plan.written.update(deleted)  # the entities and, by cascade, their rows
    plan.written[Entity._meta.label] += insert_entities(plan.new_entities, location=location)
    plan.written[Entity._meta.label] += Entity.objects.bulk_update(
        plan.changed, [*BROWSING_COLUMNS, "source", "document", "etag", "descriptor", "problems",
                       "parent_ref"])  # fmt: skip


def refresh_rows(*, plan: RefreshPlan) -> None:
    """Rewrite the search rows, required roles and relations of the entities `refresh_apply`
    inserted or changed from what the location emitted (not those kept with a problem)."""
    accepted, access = plan.accepted, plan.access
    touched = {
        entity.ref: entity
        for entity in [*plan.new_entities, *plan.changed]
        if entity.ref in accepted
    }
    # New entities have no rows yet; only changed ones lose their old rows.
    rewritten = [entity.pk for entity in plan.changed if entity.ref in accepted]
    for model in (Relation, SearchRow, EntityRequiredRole):
        _, deleted = model.objects.filter(**{_ENTITY_COLUMN[model]: rewritten}).delete()
        plan.written.update(deleted)
    emitted_touched = [
        (touched[ref].pk, emitted) for ref, emitted in accepted.items() if ref in touched
    ]
    plan.written[SearchRow._meta.label] += insert_rows(
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
    plan.written[EntityRequiredRole._meta.label] += insert_rows(
        EntityRequiredRole,
        ["entity_id", "role_name"],
        (
            (pk, role)
            for pk, emitted in emitted_touched
            for role in dict.fromkeys(access[emitted.valid.ref.key].required_roles)
        ),
    )
    plan.written[GatewayRoute._meta.label] += route_claims_apply(
        claims=plan.routes,
        entities={**plan.stored, **{entity.ref: entity for entity in plan.new_entities}},
    )
    plan.written[Relation._meta.label] += insert_rows(
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


def refresh_statistics(*, plan: RefreshPlan) -> None:
    """Have PostgreSQL count again, once the refresh commits, the tables it wrote a large share
    of (`catalog.bulk.analyze_after_commit`): the next reads are planned on their true size."""
    analyze_after_commit(plan.written, using=router.db_for_write(Entity))


def refresh_outcome_record(
    *, location: Location, result: ReadResult, report: RefreshReport, started: float
) -> None:
    """Store on the location when it was read, how that went and how long it took (`started`
    is the refresh's `time.monotonic()` when it began)."""
    location.last_refreshed_at = timezone.now()
    if result.unreadable and not result.entities and not result.kept:
        location.last_outcome = Location.Outcome.FAILED
    elif report.problems:
        location.last_outcome = Location.Outcome.PROBLEMS
    else:
        location.last_outcome = Location.Outcome.OK
    location.last_problems = [_storable(str(problem)) for problem in report.problems]
    location.last_refresh_seconds = time.monotonic() - started
    # Files to skip next time while unchanged: those skipped now, and those read whole now
    # with no problem, this refresh's own (a conflict, a kind refused) included.
    troubled = {problem.source for problem in report.problems}
    location.file_digests = {
        **{path: location.file_digests[path] for path in result.kept},
        **{path: list(digest) for path, digest in result.digests.items() if path not in troubled},
    }
    location.save(
        update_fields=["last_refreshed_at", "last_outcome", "last_problems",
                       "last_refresh_seconds", "file_digests"]
    )  # fmt: skip
