"""Reads of the catalog that pages and the API compose."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connections
from django.db.models import QuerySet

from catalog.models import Entity, EntityTag, FacetCount, Relation
from portal.models import User

FACET_FIELDS = {
    "kind": "kind",
    "type": "spec_type",
    "lifecycle": "lifecycle",
    "owner": "owner_ref",
    "namespace": "namespace",
}
FACET_LIMIT = 20


def person_refs(*, user: User) -> tuple[list[str], list[str]]:
    """The catalog Users that are this person, and the groups they belong to.

    As Backstage's e-mail sign-in resolver matches a person to a User entity: by e-mail.
    """
    if not user.is_authenticated or not user.email:
        return [], []
    user_refs = sorted(
        Entity.objects.filter(
            kind__iexact="user", descriptor__spec__profile__email__iexact=user.email
        ).values_list("ref", flat=True)
    )
    if not user_refs:
        return [], []
    groups = Relation.objects.filter(source_ref__in=user_refs, type="memberOf")
    return user_refs, sorted(set(groups.values_list("target_ref", flat=True)))


@dataclass(frozen=True)
class FacetValue:
    value: str
    count: int


@dataclass(frozen=True)
class Facets:
    """Counts per value of each browsing facet (most common first), and how many entities."""

    groups: dict[str, list[FacetValue]]
    total: int


# Details of a restricted entity, counted only where the entity is not restricted: a count
# must not tell people which details the entities they may not look into have.
DETAIL_FACETS = {"type", "lifecycle", "tag"}


def entity_facets(*, entities: QuerySet[Entity], limit: int | None = FACET_LIMIT) -> Facets:
    """The facets of the entities given, counted now: one query, which reads the entities once
    (a common table expression) and groups them by each facet in turn."""
    columns = list(FACET_FIELDS.values())
    # The catalog's filters never repeat an entity (a tag is on an entity once), so no DISTINCT.
    chosen = entities.order_by().values("pk", *columns, "restricted")
    chosen_sql, params = chosen.query.sql_with_params()
    parts = []
    for name, column in FACET_FIELDS.items():
        detail = " AND NOT e.restricted" if name in DETAIL_FACETS else ""
        parts.append(
            f"SELECT '{name}', e.{column}, COUNT(*) FROM e WHERE e.{column} <> ''{detail} "
            f"GROUP BY e.{column}"
        )
    tags = EntityTag._meta.db_table
    parts.append(
        f"SELECT 'tag', t.tag, COUNT(*) FROM {tags} t JOIN e ON e.id = t.entity_id "
        "WHERE NOT e.restricted GROUP BY t.tag"
    )
    with connections[entities.db].cursor() as cursor:
        names = ", ".join(["id", *columns, "restricted"])  # as values() selects them
        cursor.execute(f"WITH e ({names}) AS ({chosen_sql}) " + " UNION ALL ".join(parts), params)
        return _ranked(cursor.fetchall(), limit=limit)


def catalog_facets(*, limit: int | None = FACET_LIMIT) -> Facets:
    """The facets of the whole catalog, from the counts its last change left."""
    rows = list(FacetCount.objects.values_list("facet", "value", "count"))
    if not rows:  # an empty catalog, or one not changed since the counts were introduced
        return entity_facets(entities=Entity.objects.all(), limit=limit)
    return _ranked(rows, limit=limit)


def _ranked(rows: Iterable[tuple[str, str, int]], *, limit: int | None) -> Facets:
    """(facet, value, count) rows as Facets: most common first, `limit` values per facet."""
    counted: dict[str, list[FacetValue]] = {name: [] for name in [*FACET_FIELDS, "tag"]}
    for name, value, count in rows:
        if name in counted:
            counted[name].append(FacetValue(value, count))
    groups = {
        name: sorted(values, key=lambda facet: (-facet.count, facet.value))[:limit]
        for name, values in counted.items()
    }
    # Every entity has one kind: the kinds' counts add up to the number of entities.
    return Facets(groups=groups, total=sum(value.count for value in counted["kind"]))


def entity_by_ref(*, ref: str) -> Entity | None:
    return (
        Entity.objects.filter(ref=ref.lower())
        .prefetch_related("tag_rows", "required_role_rows")
        .select_related("location")
        .first()
    )


def entity_relations(*, entity: Entity) -> dict[str, list[Relation]]:
    """The entity's relations grouped by type, as Backstage lists them on an entity."""
    grouped: dict[str, list[Relation]] = defaultdict(list)
    for relation in Relation.objects.filter(source_ref=entity.ref).order_by("type", "target_ref"):
        if relation.target_ref not in {r.target_ref for r in grouped[relation.type]}:
            grouped[relation.type].append(relation)
    return dict(grouped)
