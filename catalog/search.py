"""Backstage's entity filters: flattened `key=value` rows, the `filter=` syntax over them, and
the API's predicates, full-text fields and ordering, all on the same rule for restricted details."""

from __future__ import annotations

import json
from typing import Any

from django.db.models import (
    Case,
    CharField,
    Count,
    F,
    OrderBy,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.expressions import BaseExpression
from django.db.models.functions import Length, Lower, NullIf
from django.db.models.lookups import Contains, LessThanOrEqual

from access.policy import Viewer
from catalog.descriptors import KINDS
from catalog.models import Entity, Relation, SearchRow
from portal.bounds import MAX_LIST

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
    parts = [part for raw in raw_filters for part in raw.split(",")]
    if len(parts) > MAX_LIST:
        raise FilterError(f"Invalid filter: {len(parts):,} conditions; at most {MAX_LIST:,}")
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


def filters_q(alternatives: list[list[tuple[str, list[str] | None]]], *, viewer: Viewer) -> Q:
    """A Q for Entity matching any alternative, every term of it, for this viewer.

    A term on a detail matches only entities whose details the viewer may see (the policy's
    `Viewer.may_see_restricted_q`), or probing with `spec.type=...` would tell which values
    a restricted entity has; a term on relations counts only relations they may see.
    """
    details_q = viewer.may_see_restricted_q()
    combined = Q()
    for terms in alternatives:
        matched = Q()
        for key, values in terms:
            if key.startswith("relations."):
                relation_type = key.removeprefix("relations.")
                matched &= _related_q(relation_type, values, viewer.may_see_relation_q())
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

    pairs = {spec.outgoing: spec.incoming for kind in KINDS.values() for spec in kind.relations}
    return pairs | {incoming: outgoing for outgoing, incoming in pairs.items()}


# Each relation is stored both ways, from the entity that declared it: `bob memberOf team-x`
# beside `team-x hasMember bob`, whichever of the two declared the membership.
RELATION_INVERSES = _relation_inverses()
RELATION_TYPES = {name.lower(): name for name in RELATION_INVERSES}


def relation_counts(key: str, *, among: QuerySet[Entity] | None) -> list[tuple[str, int]]:
    """A facet on `relations.<type>`: each target with how many entities (of `among`, or all)
    have that relation, whoever declared it; as with search rows, only relations everyone
    may see (public ones, or declared by an entity that is not restricted) of entities that
    are not restricted, unless the relation is public."""

    name = RELATION_TYPES.get(key.removeprefix("relations."))
    if name is None:
        return []
    sources = Entity.objects.all() if among is None else among
    if key not in PUBLIC_KEYS:
        sources = sources.filter(restricted=False)
    rows = (
        # What anyone may see: a viewer with no roles, groups or admin.
        Relation.objects.filter(Viewer().may_see_relation_q(), type=name)
        .filter(source_ref__in=sources.values("ref"))
        .values("target_ref")
        .annotate(count=Count("source_ref", distinct=True))
        .order_by("-count", "target_ref")
    )
    return [(row["target_ref"], row["count"]) for row in rows]


def _related_q(relation_type: str, values: list[str] | None, relations_q: Q) -> Q:
    """Entities with a relation of this type (to one of `values`), as Backstage's stitched
    entity has them: every relation whose source is the entity, whoever declared it, of
    those `relations_q` lets the caller see."""
    name = RELATION_TYPES.get(relation_type)
    if name is None:
        return Q(pk__in=[])
    relations = Relation.objects.filter(relations_q)
    if values is None:
        return Q(ref__in=relations.filter(type=name).values("source_ref"))
    # Found from the other side, by the index on (source_ref, type).
    inverse = relations.filter(source_ref__in=values, type=RELATION_INVERSES[name])
    return Q(ref__in=inverse.values("target_ref"))


# --- Backstage's filter predicates, full-text fields and ordering, for the API -----------------

# Keys ordered by a column of the entity's own row, not through its search rows.
ORDER_COLUMNS = {
    "metadata.name": "name",
    "metadata.namespace": "namespace",
    "metadata.title": "title",
    "kind": "kind",
    "spec.type": "spec_type",
    "spec.lifecycle": "lifecycle",
    "spec.owner": "owner_ref",
}
# Columns every entity has a value in: ordered as they are, so the indexes serve the order.
ALWAYS_SET_COLUMNS = {"name", "namespace", "kind"}
# Public keys whose value is also the entity's column, searched there (`text_fields_q`).
TEXT_COLUMNS = {"metadata.name": "name", "metadata.description": "description"}
# How deep a predicate may nest, and how many conditions it may hold, before it is refused.
MAX_PREDICATE_DEPTH = 32
MAX_PREDICATE_TERMS = 500


def _gated(key: str, matched: Q, *, details_q: Q) -> Q:
    """A condition on a key: on a detail, it holds only for entities whose details the caller
    may see (as `filters_q` rules), so nothing tells a hidden value."""
    return matched if key in PUBLIC_KEYS else matched & details_q


NOTHING = Q(pk__in=[])


def _negated(condition: Q) -> Q:
    # An empty Q holds for every entity; its negation holds for none.
    return ~condition if condition.children else NOTHING


class Predicate:
    """Backstage's filter predicates (`@backstage/filter-predicates`), the body of POST
    /entities/by-query and /entity-facets: `{"kind": "component", "spec.type": {"$in": [...]}}`,
    `$exists`, `$hasPrefix`, and `$all`/`$any`/`$not` around them, as a Q over entities.

    Equality, `$in` and `$exists` are `catalog.search.filters_q`'s own terms. A detail of a
    restricted entity that the caller may not see is absent for them: `$exists: false` and
    `$not` hold for it, as they would for an entity without it.
    """

    def __init__(self, *, viewer: Viewer) -> None:
        self.viewer = viewer
        self.details_q = viewer.may_see_restricted_q()
        self.terms = 0

    def q(self, predicate: Any, depth: int = 0) -> Q:
        if depth > MAX_PREDICATE_DEPTH:
            raise FilterError("Invalid query: the predicate is nested too deeply")
        if isinstance(predicate, (str, int, float)):  # bool is an int
            raise FilterError(
                "Invalid filter predicate: top-level primitive values are not supported. Wrap "
                f'the value in a field expression, e.g. {{ "kind": {json.dumps(predicate)} }}',
            )
        if not isinstance(predicate, dict):
            raise FilterError(f"Invalid query: expected an object, not {_json(predicate)}")
        logical = [key for key in predicate if key in {"$all", "$any", "$not"}]
        if logical:
            if len(predicate) != 1:
                raise FilterError(f"Invalid query: {logical[0]} must be the only key of its object")
            return self._logical(logical[0], predicate[logical[0]], depth)
        matched = Q()
        for key, value in predicate.items():
            if key.startswith("$"):
                raise FilterError(f"Invalid query: unknown operator {key}")
            matched &= self._field(key.lower(), value)
        return matched

    def _logical(self, operator: str, operand: Any, depth: int) -> Q:
        if operator == "$not":
            return _negated(self.q(operand, depth + 1))
        if not isinstance(operand, list):
            raise FilterError(f"Invalid query: {operator} takes a list of predicates")
        parts = [self.q(part, depth + 1) for part in operand]
        combined = Q()
        if operator == "$all":
            for part in parts:
                combined &= part
            return combined
        if not parts:
            return NOTHING
        for part in parts:
            if not part.children:
                return Q()  # one alternative holds for every entity
            combined |= part
        return combined

    def _field(self, key: str, value: Any) -> Q:
        self.terms += 1
        if self.terms > MAX_PREDICATE_TERMS:
            raise FilterError(f"Invalid query: more than {MAX_PREDICATE_TERMS} conditions")
        if _is_primitive(value):
            return filters_q([[(key, [_text(value)])]], viewer=self.viewer)
        if not isinstance(value, dict) or len(value) != 1:
            raise FilterError(f'Invalid query: the value for "{key}" is not a predicate value')
        ((operator, operand),) = value.items()
        if operator == "$exists" and isinstance(operand, bool):
            present = filters_q([[(key, None)]], viewer=self.viewer)
            return present if operand else _negated(present)
        if operator == "$in" and isinstance(operand, list) and all(map(_is_primitive, operand)):
            if not operand:
                return NOTHING
            if len(operand) > MAX_LIST:
                raise FilterError(f'Invalid query: $in for "{key}" has {len(operand):,} values; '
                                  f"at most {MAX_LIST:,}")  # fmt: skip
            values = list(dict.fromkeys(_text(item) for item in operand))
            return filters_q([[(key, values)]], viewer=self.viewer)
        if operator == "$hasPrefix" and isinstance(operand, str):
            rows = SearchRow.objects.filter(key=key, value__startswith=operand.lower())
            return _gated(key, Q(pk__in=rows.values("entity_id")), details_q=self.details_q)
        # `$contains` and operators yet to come: Backstage's database query refuses them too.
        raise FilterError(
            f'Invalid filter predicate value for field "{key}": expected a primitive value, '
            f"$exists, $in, or $hasPrefix operator, but got {_json(value)}",
        )


def _is_primitive(value: Any) -> bool:
    return isinstance(value, (str, int, float))


def _text(value: str | int | float) -> str:
    """A predicate's value as the search rows hold it: lower-cased text, `true`, `7`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).lower()


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def text_fields_q(term: str, fields: list[str], *, details_q: Q) -> Q:
    """Backstage's `fullTextFilterFields`: the term anywhere in the value of one of the fields."""
    needle = term.lower()
    keys = list(dict.fromkeys(field.lower() for field in fields))
    either = Q()
    # The name and description from the entity's own columns (trigram indexes, migration 0017),
    # as the search rows hold them: lower-cased, and a value over 200 characters not at all.
    for key, column in TEXT_COLUMNS.items():
        if key in keys:
            keys.remove(key)
            either |= Q(Contains(Lower(column), needle)) & Q(
                LessThanOrEqual(Length(column), MAX_VALUE_LENGTH)
            )
    # The other public keys in one subquery: PostgreSQL then joins its rows (found through each
    # key's trigram index, migration 0014) instead of testing every entity against each key's.
    in_public = Q()
    for key in keys:
        if key in PUBLIC_KEYS:
            in_public |= Q(key=key, value__contains=needle)
    if in_public:
        either |= Q(pk__in=SearchRow.objects.filter(in_public).values("entity_id"))
    for key in keys:
        if key not in PUBLIC_KEYS:
            rows = SearchRow.objects.filter(key=key, value__contains=needle)
            either |= _gated(key, Q(pk__in=rows.values("entity_id")), details_q=details_q)
    return either


def ordering_by(order: list[tuple[str, str]], *, details_q: Q) -> list[OrderBy]:
    """Backstage orders by the search table's value of each key, entities without it last.
    The keys held in columns are ordered by the column. A detail the caller may not see is
    absent to them: an entity that hides it goes last, as if it had none."""
    expressions = []
    for field_name, direction in order:
        key = field_name.lower()
        column = ORDER_COLUMNS.get(key)
        value: BaseExpression
        if column in ALWAYS_SET_COLUMNS:
            expressions.append(F(column).desc() if direction == "desc" else F(column).asc())
            continue
        if column is not None:
            value = NullIf(column, Value(""))
        else:
            # A key listed more than once (tags): its first value in the order asked for.
            first = F("value").desc(nulls_last=True) if direction == "desc" else F("value")
            value = Subquery(
                SearchRow.objects.filter(entity=OuterRef("pk"), key=key)
                .order_by(first)
                .values("value")[:1]
            )
        if key not in PUBLIC_KEYS and details_q.children:
            value = Case(When(details_q, then=value), default=Value(None),
                         output_field=CharField())  # fmt: skip
        expressions.append(
            value.desc(nulls_last=True) if direction == "desc" else value.asc(nulls_last=True)
        )
    return expressions
