"""Writes of the catalog: registering locations and applying what a refresh read."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone

from catalog.annotations import AccessAnnotations, access_annotations
from catalog.ingest import Emitted, Problem, read_location
from catalog.models import (
    Entity,
    EntityRequiredRole,
    EntityTag,
    Location,
    Relation,
    SearchRow,
)
from catalog.search import search_rows


@dataclass
class RefreshReport:
    location: Location
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    problems: list[Problem] = field(default_factory=list)
    # The location's entities as they stood after the refresh (kept after a dry run's rollback).
    entities: list[Entity] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def normalize_target(target: str) -> str:
    """URLs as given; paths made absolute, so one file is one location however it is named."""
    if urlsplit(target).scheme in {"http", "https"}:
        return target
    return str(Path(target).expanduser().resolve())


def location_register(*, target: str) -> Location:
    location, _ = Location.objects.get_or_create(target=normalize_target(target))
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
    "owner_ref", "system_ref", "restricted",
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


@transaction.atomic
def location_refresh(*, location: Location) -> RefreshReport:
    """Read the location again and make the catalog match it, in one transaction.

    An entity whose document is now invalid keeps its last good version, with the problem
    beside it; an entity no longer emitted is removed, unless its file could not be read at
    all; an entity another location already provides stays with that location.
    """
    location = Location.objects.select_for_update().get(pk=location.pk)
    result = read_location(location.target)
    report = RefreshReport(location=location, problems=list(result.problems))

    refs = [emitted.valid.ref.key for emitted in result.entities]
    known = {
        entity.ref: entity
        for entity in Entity.objects.filter(ref__in=refs).select_related("location")
    }
    accepted: dict[str, Emitted] = {}
    for emitted in result.entities:
        ref = emitted.valid.ref.key
        first = accepted.get(ref)
        holder = known.get(ref)
        if first is not None:
            message = f"ConflictError: {ref} is also defined at {first.source}:{first.document}"
        elif holder is not None and holder.location_id != location.pk:
            message = (
                f"ConflictError: {ref} is already provided by the location {holder.location.target}"
            )
        else:
            accepted[ref] = emitted
            continue
        report.problems.append(Problem(emitted.source, emitted.document, message, "", ref))

    problems_by_ref: dict[str, list[str]] = {}
    for problem in report.problems:
        if problem.ref:
            problems_by_ref.setdefault(problem.ref, []).append(str(problem))

    current = {entity.ref: entity for entity in Entity.objects.filter(location=location)}
    # Atrium's annotations, read once per entity for problems, columns and required roles.
    access = {ref: access_annotations(emitted.valid.entity) for ref, emitted in accepted.items()}
    new_entities, changed = [], []
    for ref, emitted in accepted.items():
        existing = current.get(ref)
        data = emitted.valid.entity
        etag = _etag(data)
        if existing is None:
            entity = Entity(ref=ref, location=location)
            new_entities.append(entity)
            report.added.append(ref)
        elif (
            existing.etag != etag
            or existing.problems != list(access[ref].problems)
            or existing.source != emitted.source
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
        entity.etag = etag
        entity.descriptor = _descriptor(emitted, str(entity.uid), etag)
        entity.problems = list(access[ref].problems)
        _copy_browsing_columns(entity, emitted, access[ref])

    # A rejected document keeps its entity's last good version and shows why it was rejected.
    for ref, messages in problems_by_ref.items():
        existing = current.get(ref)
        if existing is not None and ref not in accepted:
            existing.problems = messages
            changed.append(existing)

    gone = [
        entity
        for ref, entity in current.items()
        if ref not in accepted
        and ref not in problems_by_ref
        and entity.source not in result.unreadable
    ]
    report.removed = sorted(entity.ref for entity in gone)
    Entity.objects.filter(pk__in=[entity.pk for entity in gone]).delete()
    Entity.objects.bulk_create(new_entities)
    Entity.objects.bulk_update(changed, [*BROWSING_COLUMNS, "source", "document", "etag",
                                         "descriptor", "problems"])  # fmt: skip

    touched = {entity.ref: entity for entity in [*new_entities, *changed] if entity.ref in accepted}
    Relation.objects.filter(origin__in=list(touched.values())).delete()
    EntityTag.objects.filter(entity__in=list(touched.values())).delete()
    SearchRow.objects.filter(entity__in=list(touched.values())).delete()
    SearchRow.objects.bulk_create(
        [
            SearchRow(entity=touched[ref], key=key, value=value, original_value=original)
            for ref, emitted in accepted.items()
            if ref in touched
            for key, value, original in search_rows(
                touched[ref].descriptor,
                [(r.type, r.target.key) for r in emitted.valid.relations if r.source.key == ref],
            )
        ],
        batch_size=5000,
    )
    EntityRequiredRole.objects.filter(entity__in=list(touched.values())).delete()
    EntityTag.objects.bulk_create(
        [
            EntityTag(entity=touched[ref], tag=tag)
            for ref, emitted in accepted.items()
            if ref in touched
            for tag in dict.fromkeys(emitted.valid.entity["metadata"].get("tags") or [])
        ]
    )
    EntityRequiredRole.objects.bulk_create(
        [
            EntityRequiredRole(entity=touched[ref], role_name=role)
            for ref, emitted in accepted.items()
            if ref in touched
            for role in access[ref].required_roles
        ]
    )
    Relation.objects.bulk_create(
        [
            Relation(
                origin=touched[ref],
                source_ref=relation.source.key,
                type=relation.type,
                target_ref=relation.target.key,
            )
            for ref, emitted in accepted.items()
            if ref in touched
            for relation in emitted.valid.relations
        ],
        ignore_conflicts=True,
    )

    location.last_refreshed_at = timezone.now()
    if result.unreadable and not result.entities:
        location.last_outcome = Location.Outcome.FAILED
    elif report.problems:
        location.last_outcome = Location.Outcome.PROBLEMS
    else:
        location.last_outcome = Location.Outcome.OK
    location.last_problems = [str(problem) for problem in report.problems]
    location.save(update_fields=["last_refreshed_at", "last_outcome", "last_problems"])
    report.entities = list(location.entities.all())
    return report


def location_import(*, target: str, dry_run: bool = False) -> RefreshReport:
    """Register the target if it is new and read it; a dry run rolls all of that back."""
    with transaction.atomic():
        report = location_refresh(location=location_register(target=target))
        if dry_run:
            transaction.set_rollback(True)
    return report


@transaction.atomic
def location_delete(*, location: Location) -> list[str]:
    """Forget a location and every entity it provided; the refs that went."""
    refs = sorted(location.entities.values_list("ref", flat=True))
    location.delete()
    return refs
