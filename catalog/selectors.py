"""Reads of the catalog that pages and the API compose."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Count, QuerySet

from catalog.models import Entity, EntityTag, Relation
from portal.models import User

FACET_FIELDS = {
    "kind": "kind",
    "type": "spec_type",
    "lifecycle": "lifecycle",
    "owner": "owner_ref",
    "namespace": "namespace",
}
FACET_LIMIT = 20


def person_group_refs(*, user: User) -> list[str]:
    """The groups a person belongs to: catalog Users with their e-mail, and what they are in.

    As Backstage's e-mail sign-in resolver matches a person to a User entity.
    """
    if not user.is_authenticated or not user.email:
        return []
    user_refs = Entity.objects.filter(
        kind__iexact="user", descriptor__spec__profile__email__iexact=user.email
    ).values_list("ref", flat=True)
    return sorted(
        set(
            Relation.objects.filter(source_ref__in=user_refs, type="memberOf").values_list(
                "target_ref", flat=True
            )
        )
    )


@dataclass(frozen=True)
class FacetValue:
    value: str
    count: int


def entity_facets(*, entities: QuerySet[Entity]) -> dict[str, list[FacetValue]]:
    """Counts per value of each browsing facet, over the entities given (most common first)."""
    facets: dict[str, list[FacetValue]] = {}
    for name, column in FACET_FIELDS.items():
        rows = (
            entities.exclude(**{column: ""})
            .order_by()
            .values(column)
            .annotate(count=Count("pk"))
            .order_by("-count", column)[:FACET_LIMIT]
        )
        facets[name] = [FacetValue(row[column], row["count"]) for row in rows]
    tags = (
        EntityTag.objects.filter(entity__in=entities.order_by().values("pk"))
        .values("tag")
        .annotate(count=Count("pk"))
        .order_by("-count", "tag")[:FACET_LIMIT]
    )
    facets["tag"] = [FacetValue(row["tag"], row["count"]) for row in tags]
    return facets


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
