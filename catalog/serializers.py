"""Entities in Backstage's JSON shape, with relations, trimmed for whoever may not see them."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import (
    BooleanField,
    CharField,
    ExpressionWrapper,
    F,
    Func,
    Q,
    QuerySet,
    TextField,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast

from access.policy import Viewer
from catalog.annotations import REQUIRED_ROLES
from catalog.models import Entity, EntityRequiredRole, Relation
from catalog.refs import parse_entity_ref


def _restricted_view(descriptor: dict[str, Any]) -> dict[str, Any]:
    """What everyone sees of a restricted entity: who it is, who owns it, what it requires."""
    metadata = descriptor["metadata"]
    kept = {key: metadata[key] for key in ("name", "namespace", "uid", "etag", "title",
                                          "description") if key in metadata}  # fmt: skip
    kept["annotations"] = {REQUIRED_ROLES: (metadata.get("annotations") or {})[REQUIRED_ROLES]}
    view = {"apiVersion": descriptor["apiVersion"], "kind": descriptor["kind"], "metadata": kept}
    owner = (descriptor.get("spec") or {}).get("owner")
    if owner:
        view["spec"] = {"owner": owner}
    return view


def _project(entity: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """Backstage's `fields=`: keep only these dotted paths."""
    projected: dict[str, Any] = {}
    for path in fields:
        source: Any = entity
        parts = path.split(".")
        for part in parts:
            if not isinstance(source, dict) or part not in source:
                break
            source = source[part]
        else:
            target = projected
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = source
    return projected


def _visible_relations(viewer: Viewer, alias: str, among: Q) -> QuerySet[Relation]:
    """The relations `among` selects that the viewer may see, ordered by type then target: the
    one shape every read of an answer's relations takes. The policy asks its rule of each
    relation's origin by primary key, so this reads through the index on the source whatever
    the catalog's size (access.policy.Viewer.may_see_relation_q)."""
    return (
        Relation.objects.using(alias)
        .filter(among)
        .filter(viewer.may_see_relation_q(probing_origins=True))
        .order_by("type", "target_ref")
    )


@lru_cache(maxsize=512)
def _relations_statement(viewer: Viewer, alias: str) -> tuple[str, tuple[Any, ...], int]:
    """The SQL of the relations query for this viewer, its parameters, and where among them the
    sources go. Building the policy's rule into a query and compiling it took Django longer
    than PostgreSQL took to answer it (about 2 ms of 3 for one entity); the text depends only
    on the viewer (Viewer is frozen: equal viewers, equal rules), so it is made once a process."""
    sources: list[str] = []  # a stand-in, found again among the parameters by identity
    table = connections[alias].ops.quote_name(Relation._meta.db_table)
    among = RawSQL(f"{table}.source_ref = ANY(%s)", (sources,))
    query = _visible_relations(
        viewer, alias, Q(ExpressionWrapper(among, output_field=BooleanField()))
    ).values_list("source_ref", "type", "target_ref")
    sql, params = query.query.sql_with_params()
    (index,) = [place for place, param in enumerate(params) if param is sources]
    return sql, tuple(params), index


@lru_cache(maxsize=512)
def _relations_column(viewer: Viewer, alias: str) -> tuple[str, tuple[Any, ...]]:
    """The SQL and parameters of a column of the entity's own row: the relations the viewer may
    see of that entity, as [type, target] pairs ordered by type then target. Read with the
    entity, in its statement, rather than by a second query after it: a by-name call is a
    handful of round trips to PostgreSQL, each a share of its time. The text depends only on
    the viewer, so it is made once a process (as `_relations_statement`)."""
    quote = connections[alias].ops.quote_name
    outer = f"{quote(Entity._meta.db_table)}.{quote('ref')}"  # the entity's row it is read in
    among = RawSQL(f"{quote(Relation._meta.db_table)}.{quote('source_ref')} = {outer}", ())
    pair = Func(F("type"), F("target_ref"), template="ARRAY[%(expressions)s]",
                output_field=ArrayField(CharField()))  # fmt: skip
    query = (
        _visible_relations(viewer, alias, Q(ExpressionWrapper(among, output_field=BooleanField())))
        .annotate(pair=pair)
        .values_list("pair")
    )
    sql, params = query.query.sql_with_params()
    return f"ARRAY({sql})", tuple(params)


def _relation_rows(refs: list[str], viewer: Viewer, alias: str) -> Iterable[tuple[str, str, str]]:
    """(source, type, target) of the relations of these entities the viewer may see, ordered by
    type then target (`_visible_relations`)."""
    if connections[alias].vendor != "postgresql":
        return _visible_relations(viewer, alias, Q(source_ref__in=refs)).values_list(
            "source_ref", "type", "target_ref"
        )
    sql, params, index = _relations_statement(viewer, alias)
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, [*params[:index], refs, *params[index + 1 :]])
        rows: list[tuple[str, str, str]] = cursor.fetchall()
    return rows


@lru_cache(maxsize=16_384)
def _relation_text(relation_type: str, target_ref: str) -> str:
    """`json.dumps` of one relation as Backstage shows it: the same few thousand (type, target)
    pairs come back call after call, so each is parsed and encoded once a process."""
    parsed = parse_entity_ref(target_ref)
    target = {"kind": parsed.kind, "namespace": parsed.namespace, "name": parsed.name}
    return json.dumps({"type": relation_type, "targetRef": target_ref, "target": target})


class Relations:
    """The relations of some entities the viewer may see, by source, each (type, target) once,
    ordered by type then target: as Backstage's dicts, or as their JSON text."""

    def __init__(self, pairs: dict[str, list[tuple[str, str]]]) -> None:
        self.pairs = pairs
        # A page's relations name the same few groups and systems again and again.
        self._targets: dict[str, dict[str, str]] = {}

    def _target(self, target_ref: str) -> dict[str, str]:
        target = self._targets.get(target_ref)
        if target is None:
            parsed = parse_entity_ref(target_ref)
            target = {"kind": parsed.kind, "namespace": parsed.namespace, "name": parsed.name}
            self._targets[target_ref] = target
        return target

    def of(self, ref: str) -> list[dict[str, Any]]:
        return [
            {"type": relation_type, "targetRef": target_ref, "target": self._target(target_ref)}
            for relation_type, target_ref in self.pairs.get(ref, ())
        ]

    def text_of(self, ref: str) -> str:
        """`json.dumps(self.of(ref))`, from each relation's text."""
        texts = [_relation_text(*pair) for pair in self.pairs.get(ref, ())]
        return f"[{', '.join(texts)}]"


def _relations(refs: list[str], viewer: Viewer, alias: str) -> Relations:
    """The relations of these entities the viewer may see; one query."""
    pairs: dict[str, list[tuple[str, str]]] = defaultdict(list)
    if refs:
        seen: set[tuple[str, str, str]] = set()
        for row in _relation_rows(refs, viewer, alias):
            if row not in seen:
                seen.add(row)
                pairs[row[0]].append((row[1], row[2]))
    return Relations(pairs)


def _required_roles(entity_ids: list[int]) -> dict[int, list[str]]:
    required: dict[int, list[str]] = defaultdict(list)
    rows = EntityRequiredRole.objects.filter(entity_id__in=entity_ids).order_by("role_name")
    for entity_id, role_name in rows.values_list("entity_id", "role_name"):
        required[entity_id].append(role_name)
    return required


def entities_json(
    entities: Iterable[Entity], *, viewer: Viewer, fields: list[str] | None = None
) -> list[dict[str, Any]]:
    """The entities as Backstage's API returns them; three queries whatever their number."""
    entities = list(entities)
    alias = (entities[0]._state.db if entities else None) or "default"
    relations = _relations([e.ref for e in entities], viewer, alias)
    required = _required_roles([e.pk for e in entities]) if entities else {}
    result = []
    for entity in entities:
        roles = required.get(entity.pk, [])
        if viewer.may_see_restricted(
            restricted=entity.restricted, required_roles=roles, owner_ref=entity.owner_ref
        ):
            body = {**entity.descriptor, "relations": relations.of(entity.ref)}
        else:
            body = {
                **_restricted_view(entity.descriptor),
                "relations": [r for r in relations.of(entity.ref) if r["type"] == "ownedBy"],
            }
        result.append(_project(body, fields) if fields else body)
    return result


def _encoded(body: Any) -> str:
    # The API renderer's encoder (NinjaJSONEncoder) only adds types a descriptor never holds.
    return json.dumps(body)


@lru_cache(maxsize=512)
def _rows_statement(viewer: Viewer, alias: str) -> tuple[str, tuple[Any, ...]]:
    """The SQL reading entities' rows as `entities_json_texts` needs them, with `{rows}` where
    their source goes (something naming `page.id` or `page.ref`, and `page.n`, the order), and
    its parameters. Each row holds its required roles and the relations the viewer may see,
    so one statement answers; it is written once a process per viewer, as Django took longer
    to build and compile it than PostgreSQL took to answer a by-name call with it."""
    quote = connections[alias].ops.quote_name
    entity = quote(Entity._meta.db_table)
    roles = quote(EntityRequiredRole._meta.db_table)
    relations_sql, relations_params = _relations_column(viewer, alias)
    sql = (
        f"SELECT {entity}.{quote('id')}, {entity}.{quote('ref')}, {entity}.{quote('owner_ref')}, "
        f"{entity}.{quote('restricted')}, {entity}.{quote('descriptor')}::text, "
        f"ARRAY(SELECT {quote('role_name')} FROM {roles} WHERE {quote('entity_id')} = "
        f"{entity}.{quote('id')} ORDER BY 1), {relations_sql} "
        f"FROM {{rows}} ORDER BY page.n"
    )
    return sql, relations_params


# An entity's row as `_texts` reads it: id, ref, owner, restricted, the descriptor's text, the
# required roles, the relations the viewer may see as [type, target] (None: read apart).
Row = tuple[int, str, str, bool, str, list[str], list[list[str]] | None]


def _rows_read(viewer: Viewer, alias: str, rows: str, params: list[Any]) -> list[Row]:
    """Run `_rows_statement` over `rows` (its `{entity}` the entity table) and its `params`."""
    sql, relations_params = _rows_statement(viewer, alias)
    entity = connections[alias].ops.quote_name(Entity._meta.db_table)
    statement = sql.replace("{rows}", rows.replace("{entity}", entity))
    # The columns' placeholders come before the row source's in the text.
    with connections[alias].cursor() as cursor:
        cursor.execute(statement, [*relations_params, *params])
        found: list[Row] = cursor.fetchall()
    return found


def entity_texts_by_refs(
    keys: list[str], *, viewer: Viewer, alias: str = "default"
) -> list[tuple[str, str]]:
    """`entities_json_texts` of the entities of these lower-cased refs, in their order, those
    that exist: by-name's and by-refs' read, without the ORM."""
    if connections[alias].vendor != "postgresql":
        return entities_json_texts(
            Entity.objects.using(alias).filter(ref__in=keys).order_by("ref"), viewer=viewer
        )
    if not keys:
        return []
    rows = _rows_read(
        viewer, alias,
        "unnest(%s::varchar[]) WITH ORDINALITY AS page(ref, n) "
        "JOIN {entity} ON {entity}.ref = page.ref",
        [keys],
    )  # fmt: skip
    return _texts(rows, viewer)


def entities_json_texts(
    entities: QuerySet[Entity], *, viewer: Viewer, fields: list[str] | None = None
) -> list[tuple[str, str]]:
    """(ref, JSON text) of each of the entities, in their order: what `entities_json` answers,
    encoded. The descriptor comes as the database's text of it, not decoded and encoded again
    (that was most of a list's time), and the visible relations are joined in; a restricted
    entity the viewer may not see, or a `fields=` projection, takes the dict path."""
    if fields:
        listed = list(entities)
        bodies = entities_json(listed, viewer=viewer, fields=fields)
        return [(entity.ref, _encoded(body)) for entity, body in zip(listed, bodies, strict=True)]
    connection = connections[entities.db]
    if connection.vendor == "postgresql":
        # Only which entities and in what order is the ORM's to compile (their ids, in an
        # array that keeps the order); the columns are `_rows_statement`'s.
        try:
            inner, params = entities.values_list("pk").query.sql_with_params()
        except EmptyResultSet:  # `.none()`, or a filter Django knows matches nothing
            return []
        rows = _rows_read(
            viewer, entities.db,
            f"unnest(ARRAY({inner})) WITH ORDINALITY AS page(id, n) "
            "JOIN {entity} ON {entity}.id = page.id",
            list(params),
        )  # fmt: skip
        return _texts(rows, viewer)
    read = entities.annotate(descriptor_text=Cast("descriptor", TextField())).values_list(
        "pk", "ref", "owner_ref", "restricted", "descriptor_text"
    )
    found = [(pk, ref, owner, restricted, text) for pk, ref, owner, restricted, text in read]
    if not found:
        return []
    relations = _relations([row[1] for row in found], viewer, entities.db)
    required = _required_roles([row[0] for row in found])
    return _texts(
        [(*row, required.get(row[0], []), None) for row in found], viewer, relations=relations
    )


def _texts(
    rows: list[Row],
    viewer: Viewer,
    *,
    relations: Relations | None = None,
) -> list[tuple[str, str]]:
    """The JSON texts of entities' rows, their relations from the rows unless given."""
    if relations is None:
        # A relation stated twice (by both ends' documents) is shown once.
        relations = Relations(
            {row[1]: list(dict.fromkeys((kind, target) for kind, target in row[6] or ()))
             for row in rows}
        )  # fmt: skip
    texts = []
    for _, ref, owner_ref, restricted, descriptor_text, required_roles, _ in rows:
        seen_whole = viewer.may_see_restricted(
            restricted=restricted, required_roles=required_roles or [], owner_ref=owner_ref
        )
        descriptor_text = descriptor_text.strip()
        # A descriptor the refresh stored never holds relations (they are derived apart), so
        # they go in as its last key, where `{**descriptor, "relations": ...}` puts them.
        if seen_whole and '"relations"' not in descriptor_text and descriptor_text != "{}":
            text = f'{descriptor_text[:-1]}, "relations": {relations.text_of(ref)}}}'
        else:
            descriptor = json.loads(descriptor_text)
            if seen_whole:
                body = {**descriptor, "relations": relations.of(ref)}
            else:
                body = {
                    **_restricted_view(descriptor),
                    "relations": [r for r in relations.of(ref) if r["type"] == "ownedBy"],
                }
            text = _encoded(body)
        texts.append((ref, text))
    return texts
