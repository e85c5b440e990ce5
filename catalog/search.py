"""Backstage's entity filters: flattened `key=value` rows, and the `filter=` syntax over them."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

MAX_KEY_LENGTH = 200
MAX_VALUE_LENGTH = 200
# Not searched: the etag changes with every edit; name, namespace and uid are searched as is.
SKIPPED_KEYS = frozenset({"attachments", "relations", "status", "metadata.etag"})

SearchPair = tuple[str, str | None, str | None]


def search_rows(descriptor: dict[str, Any], relations: list[tuple[str, str]]) -> set[SearchPair]:
    """(key, value, original value) an entity is found by, as Backstage's search table has them:
    keys and values lower-cased; a value over 200 characters kept as null, so the key is still
    there for `filter=key`; and each string in a list also as its own key, `metadata.tags.java`
    = true, so that one filter can ask for two tags at once."""
    rows: set[SearchPair] = set()

    def add(key: str, value: str | None) -> None:
        key = key.lower()
        if len(key) > MAX_KEY_LENGTH:
            return
        if value is None or len(value) > MAX_VALUE_LENGTH:
            rows.add((key, None, None))
        else:
            rows.add((key, value.lower(), value))

    def visit(path: str, current: Any) -> None:
        if path in SKIPPED_KEYS:
            return
        if isinstance(current, dict):
            for key, item in current.items():
                visit(f"{path}.{key}" if path else str(key), item)
        elif isinstance(current, list):
            for item in current:
                # Arrays of scalars are searchable by value; arrays of objects by their fields.
                visit(path, item)
                if isinstance(item, str):
                    add(f"{path}.{item}", "true")
        elif current is None:
            add(path, None)
        elif isinstance(current, bool):
            add(path, "true" if current else "false")
        else:
            add(path, str(current))

    visit("", descriptor)
    for relation_type, target in relations:
        add(f"relations.{relation_type}", target)
    return rows


class FilterError(ValueError):
    pass


def parse_filters(raw_filters: list[str]) -> list[list[tuple[str, list[str] | None]]]:
    """`filter=kind=component,spec.type=service` (AND) repeated (OR); `key` alone means exists.

    Each AND term is (key, accepted values) with values OR'ed, as Backstage allows
    `kind=component,kind=api` to mean either kind.
    """
    alternatives = []
    for raw in raw_filters:
        terms: dict[str, list[str] | None] = {}
        for part in raw.split(","):
            part = part.strip()
            if not part:
                continue
            key, sep, value = part.partition("=")
            key = key.strip().lower()
            if not key:
                raise FilterError(f"Invalid filter {raw!r}: a filter needs a key")
            if not sep:
                terms.setdefault(key, None)
                continue
            existing = terms.get(key)
            terms[key] = [*(existing or []), value.strip().lower()]
        if terms:
            alternatives.append(list(terms.items()))
    return alternatives


# Keys every entity has, held in indexed columns of its own row: found without the search rows.
COLUMN_KEYS = {"kind": "kind", "metadata.name": "name", "metadata.namespace": "namespace"}

# What everyone may see of a restricted entity (SPEC; `catalog.serializers` shows no more of
# it): any other key of a restricted entity is a detail, for those who may see its details.
PUBLIC_KEYS = {
    "apiversion", "kind", "metadata.name", "metadata.namespace", "metadata.title",
    "metadata.description", "metadata.uid", "spec.owner", "relations.ownedby",
    "metadata.annotations.atrium.dev/required-roles",
}  # fmt: skip


def filters_q(alternatives: list[list[tuple[str, list[str] | None]]], *, details_q: Q) -> Q:
    """A Q for Entity matching any alternative, every term of it.

    `details_q` selects the entities whose details the caller may see (the policy's
    `Viewer.may_see_restricted_q`): a term on a detail matches only those, or probing with
    `spec.type=...` would tell which values a restricted entity has.
    """
    from catalog.models import SearchRow

    combined = Q()
    for terms in alternatives:
        matched = Q()
        for key, values in terms:
            if key.startswith("relations."):
                matched &= _related_q(key.removeprefix("relations."), values, details_q)
                if key not in PUBLIC_KEYS:
                    matched &= details_q
                continue
            if key in COLUMN_KEYS and values is not None:
                column = COLUMN_KEYS[key]
                either = Q()
                for value in values:
                    either |= Q(**{f"{column}__iexact": value})
                matched &= either
                continue
            rows = SearchRow.objects.filter(key=key)
            if values is not None:
                rows = rows.filter(value__in=values)
            matched &= Q(pk__in=rows.values("entity_id"))
            if key not in PUBLIC_KEYS:
                matched &= details_q
        combined |= matched
    return combined


def _relation_inverses() -> dict[str, str]:
    from catalog.descriptors import KINDS

    pairs = {spec.outgoing: spec.incoming for kind in KINDS.values() for spec in kind.relations}
    return pairs | {incoming: outgoing for outgoing, incoming in pairs.items()}


# Each relation is stored both ways, from the entity that declared it: `bob memberOf team-x`
# beside `team-x hasMember bob`, whichever of the two declared the membership.
RELATION_INVERSES = _relation_inverses()
RELATION_TYPES = {name.lower(): name for name in RELATION_INVERSES}


def _related_q(relation_type: str, values: list[str] | None, details_q: Q) -> Q:
    """Entities with a relation of this type (to one of `values`), as Backstage's stitched
    entity has them: every relation whose source is the entity, whoever declared it. A
    relation declared by an entity whose details the caller may not see does not count."""
    from access.policy import relation_visibility_q
    from catalog.models import Relation

    name = RELATION_TYPES.get(relation_type)
    if name is None:
        return Q(pk__in=[])
    relations = Relation.objects.filter(relation_visibility_q(details_q))
    if values is None:
        return Q(ref__in=relations.filter(type=name).values("source_ref"))
    # Found from the other side, by the index on (source_ref, type).
    inverse = relations.filter(source_ref__in=values, type=RELATION_INVERSES[name])
    return Q(ref__in=inverse.values("target_ref"))
