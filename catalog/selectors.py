"""Reads of the catalog that pages and the API compose."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import BooleanField, Case, Count, F, Max, Q, QuerySet, Value, When, Window
from django.db.models.functions import RowNumber, Upper

from catalog.graph import kind_noun
from catalog.models import Entity, FacetCount, Location, Relation, SearchRow
from catalog.refs import EntityRefError, parse_entity_ref
from catalog.search import (
    NOTHING,
    PUBLIC_KEYS,
    ordering_by,
    parse_filters,
    relation_counts,
    text_fields_q,
)
from portal.models import User

if TYPE_CHECKING:
    from access.policy import Viewer

FACET_FIELDS = {
    "kind": "kind",
    "type": "spec_type",
    "lifecycle": "lifecycle",
    "owner": "owner_ref",
    "namespace": "namespace",
}
FACET_LIMIT = 20
# A filtered view counts its facets over this many entities at most: beyond it, a search
# for a common word or a click on a broad facet would count a large share of the catalog on
# every view. The counts are then lower bounds, and the view says so.
FACET_COUNT_CAP = 2_000


def person_refs(*, user: User) -> tuple[list[str], list[str]]:
    """The catalog Users that are this person, and the groups they belong to.

    As Backstage's e-mail sign-in resolver matches a person to a User entity: by e-mail, here
    only one Auth0 verified, and only Users and memberships from locations allowed them
    (`Relation.objects.trusted_memberships`): a descriptor anyone could add names nobody.
    """
    if not user.is_authenticated or not user.email or not user.email_verified:
        return [], []
    # The search rows hold the e-mail lower-cased, under an index: no descriptor is read, and
    # the catalog's thousands of Users are not scanned on every page.
    user_refs = sorted(
        Entity.objects.filter(
            kind__iexact="user",
            search_rows__key="spec.profile.email",
            search_rows__value=user.email.lower(),
        )
        .trusted()
        .values_list("ref", flat=True)
    )
    if not user_refs:
        return [], []
    groups = Relation.objects.trusted_memberships().filter(source_ref__in=user_refs)
    return user_refs, sorted(set(groups.values_list("target_ref", flat=True)))


def user_refs_by_email(*, emails: Iterable[str]) -> dict[str, str]:
    """For each lower-cased e-mail, the ref of the trusted catalog User with that
    `spec.profile.email` (the first by ref when several claim it); one query. Pages link a
    person's name to it."""
    wanted = {email.lower() for email in emails if email}
    if not wanted:
        return {}
    rows = (
        Entity.objects.filter(
            kind__iexact="user",
            search_rows__key="spec.profile.email",
            search_rows__value__in=wanted,
        )
        .trusted()
        .order_by("ref")
        .values_list("search_rows__value", "ref")
    )
    found: dict[str, str] = {}
    for email, ref in rows:
        if email:
            found.setdefault(email, ref)
    return found


def group_member_refs(*, group_refs: Iterable[str]) -> dict[str, set[str]]:
    """For each ref (lower-cased, as the catalog keys them), the User refs that are its members
    through trusted memberships, as `person_refs` counts them; one query however many refs.

    A `user:` ref among them maps to itself too, so that a list of approvers may name people
    and groups alike; whether the catalog holds that User is `user_emails`'s to tell.
    """
    refs = {ref.lower() for ref in group_refs}
    members: dict[str, set[str]] = {
        ref: ({ref} if ref.startswith("user:") else set()) for ref in refs
    }
    if not refs:
        return members
    rows = (
        Relation.objects.trusted_memberships()
        .filter(target_ref__in=refs, source_ref__startswith="user:")
        .values_list("source_ref", "target_ref")
    )
    for source_ref, target_ref in rows:
        members[target_ref].add(source_ref)
    return members


def user_emails(*, user_refs: Iterable[str]) -> dict[str, str]:
    """The lower-cased `spec.profile.email` of each trusted User entity among these refs; refs
    the catalog holds no such User for, or one without an e-mail, are left out. One query."""
    refs = {ref.lower() for ref in user_refs}
    if not refs:
        return {}
    rows = (
        Entity.objects.filter(ref__in=refs, kind__iexact="user")
        .trusted()
        .values_list("ref", "descriptor__spec__profile__email")
    )
    return {ref: email.lower() for ref, email in rows if isinstance(email, str) and email}


@dataclass(frozen=True)
class FacetValue:
    value: str
    count: int


@dataclass(frozen=True)
class Facets:
    """Counts per value of each browsing facet (most common first), and how many entities.

    `capped`: more entities matched than were counted; counts and total are lower bounds.
    """

    groups: dict[str, list[FacetValue]]
    total: int
    capped: bool = False


# Details of a restricted entity: counted only for the entities whose details the viewer may
# see (the policy's `Viewer.may_see_restricted_q`), the very ones a filter on them matches,
# so that every count is what a click on it lists, and tells nothing more.
DETAIL_FACETS = {"type", "lifecycle", "tag"}


def _facet_rows(
    entities: QuerySet[Entity],
    *,
    details_q: Q | None,
    cap: int | None = None,
    grouped_by: tuple[str, ...] = (),
) -> list[tuple[Any, ...]]:
    """(*grouped_by, facet, value, count) rows of the entities given: one query, which reads
    the entities once (a common table expression, of `cap` entities at most, with one more
    row `('entities', '', n)` telling how many were read) and groups them by each facet in
    turn. Details are counted where `details_q` holds, everywhere when it is None."""
    if details_q is not None and not details_q.children:
        details_q = None  # a rule that holds for every entity
    columns = list(FACET_FIELDS.values())
    chosen = entities.order_by()
    selected = ["pk", *columns, "restricted", "tags"]
    if details_q is not None:
        details = Case(When(details_q, then=Value(True)), default=Value(False),
                       output_field=BooleanField())  # fmt: skip
        chosen = chosen.annotate(details=details)
        selected.append("details")
    # The catalog's filters never repeat an entity, so no DISTINCT.
    chosen = chosen.values(*selected)
    if cap is not None:
        chosen = chosen[: cap + 1]  # one more than counted tells that there were more
    try:
        chosen_sql, params = chosen.query.sql_with_params()
    except EmptyResultSet:  # a filter Django knows matches nothing (`owner in ()`)
        return []
    connection = connections[entities.db]
    group = "".join(f"e.{column}, " for column in grouped_by)
    parts = []
    for name, column in FACET_FIELDS.items():
        gate = " AND e.details" if details_q is not None and name in DETAIL_FACETS else ""
        parts.append(
            f"SELECT {group}'{name}', e.{column}, COUNT(*) FROM e WHERE e.{column} <> ''{gate} "
            f"GROUP BY {group}e.{column}"
        )
    if connection.vendor == "postgresql":
        each_tag = "jsonb_array_elements_text(e.tags) AS t(value)"
    else:
        each_tag = "json_each(e.tags) AS t"
    gate = " WHERE e.details" if details_q is not None else ""
    parts.append(f"SELECT {group}'tag', t.value, COUNT(*) FROM e, {each_tag}{gate} "
                 f"GROUP BY {group}t.value")  # fmt: skip
    if cap is not None:
        assert not grouped_by, "a capped count is of the whole, not per group"
        parts.append("SELECT 'entities', '', COUNT(*) FROM e")
    names = ", ".join(["id", *selected[1:]])  # as values() selects them
    # MATERIALIZED (PostgreSQL 12+): read the entities once, not once per facet.
    materialized = " MATERIALIZED" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH e ({names}) AS{materialized} ({chosen_sql}) " + " UNION ALL ".join(parts),
            params,
        )
        return cursor.fetchall()


def entity_facets(
    *,
    entities: QuerySet[Entity],
    details_q: Q | None,
    limit: int | None = FACET_LIMIT,
    cap: int | None,
) -> Facets:
    """The facets of the entities given, counted now, details where `details_q` holds (the
    viewer's rule; None: every entity's).

    Past the cap the counts are lower bounds, of `cap` entities and the one that told there
    were more, and `total` is the cap.
    """
    rows = _facet_rows(entities, details_q=details_q, cap=cap)
    counted = next((count for name, _, count in rows if name == "entities"), None)
    facets = _ranked(rows, limit=limit)
    if cap is not None and counted is not None and counted > cap:
        return Facets(groups=facets.groups, total=cap, capped=True)
    return facets


def facet_count_rows() -> list[tuple[str, bool, str, str, int]]:
    """The whole catalog's facets as `catalog.models.FacetCount` stores them: (kind,
    restricted, facet, value, count), every entity's details counted."""
    rows = _facet_rows(Entity.objects.all(), details_q=None, grouped_by=("kind", "restricted"))
    return [(kind, bool(restricted), *rest) for kind, restricted, *rest in rows]


def _of_kinds(rows: QuerySet[Any], field: str, kinds: Sequence[str] | None) -> QuerySet[Any]:
    """Rows of these kinds, compared as the catalog's filter compares them (in any case)."""
    if kinds is None:
        return rows
    return rows.annotate(upper_kind=Upper(field)).filter(
        upper_kind__in=[kind.upper() for kind in kinds]
    )


def catalog_facets(
    *,
    kinds: Sequence[str] | None = None,
    restricted_opened_q: Q | None,
    limit: int | None = FACET_LIMIT,
    only: Iterable[str] | None = None,
) -> Facets:
    """The facets of every entity of these kinds (of the whole catalog when None): from the
    counts the catalog's last change left, the details of restricted entities among them for
    those `restricted_opened_q` opens to the viewer (the policy's `Viewer.restricted_opened_q`;
    an empty Q: every one; None: none, as the API counts for every caller), counted now, since
    which they are is the viewer's. `only`: these facets (the others come back empty); the
    catalog's owners alone are thousands of rows at 100,000 entities."""
    every_detail = restricted_opened_q is not None and not restricted_opened_q.children
    stored = _of_kinds(FacetCount.objects.all(), "kind", kinds)
    if only is not None:
        # Kinds always: they tell whether counts are stored, and how many entities there are.
        stored = stored.filter(facet__in={*only, "kind"})
    if not every_detail:
        # Details as anyone may see them; those of the restricted entities come below.
        stored = stored.exclude(Q(facet__in=DETAIL_FACETS) & Q(restricted=True))
    rows: list[tuple[str, str, int]] = list(stored.values_list("facet", "value", "count"))
    if not rows:  # no such entity, or a catalog not changed since the counts were introduced
        entities = _of_kinds(Entity.objects.all(), "kind", kinds)
        # Details are an unrestricted entity's, or an opened restricted one's.
        opened = NOTHING if restricted_opened_q is None else restricted_opened_q
        details_q = None if every_detail else Q(restricted=False) | opened
        return entity_facets(entities=entities, details_q=details_q, limit=limit, cap=None)
    if restricted_opened_q is not None and not every_detail:
        restricted = _of_kinds(Entity.objects.filter(restricted=True), "kind", kinds)
        rows += [
            row
            for row in _facet_rows(restricted.filter(restricted_opened_q), details_q=None)
            if row[0] in DETAIL_FACETS  # their owners and kinds are counted already
        ]
    return _ranked(rows, limit=limit)


def catalog_kinds() -> list[FacetValue]:
    """The kinds the catalog holds, each with how many entities it has (kind is for
    everyone to see), from the counts its last change left."""
    counted: Counter[str] = Counter()
    for kind, count in FacetCount.objects.filter(facet="kind").values_list("value", "count"):
        counted[kind] += count
    if not counted:
        counted.update(Entity.objects.values_list("kind", flat=True))
    return [FacetValue(kind, count) for kind, count in counted.most_common()]


def _ranked(rows: Iterable[tuple[str, str, int]], *, limit: int | None) -> Facets:
    """(facet, value, count) rows as Facets, a value's rows summed: most common first,
    `limit` values per facet."""
    counted: dict[str, Counter[str]] = {name: Counter() for name in [*FACET_FIELDS, "tag"]}
    for name, value, count in rows:
        if name in counted:
            counted[name][value] += count
    groups = {
        name: sorted(
            (FacetValue(value, count) for value, count in values.items()),
            key=lambda facet: (-facet.count, facet.value),
        )[:limit]
        for name, values in counted.items()
    }
    # Every entity has one kind: the kinds' counts add up to the number of entities.
    return Facets(groups=groups, total=sum(counted["kind"].values()))


def entity_by_ref(*, ref: str) -> Entity | None:
    return (
        Entity.objects.filter(ref=ref.lower())
        .prefetch_related("required_role_rows")
        .select_related("location")
        .first()
    )


@dataclass(frozen=True)
class RelatedRefs:
    """The targets of one type of an entity's relations: the first few by ref, and how many."""

    type: str
    target_refs: list[str]
    total: int


def entity_relations(
    *, entity: Entity, viewer: Viewer, limit: int, types: Iterable[str] | None = None
) -> dict[str, RelatedRefs]:
    """The entity's relations the viewer may see, by type: each type's first `limit` distinct
    targets (by ref) and how many there are, in one query however many (a group may own
    thousands). `types`: only these."""
    relations = Relation.objects.filter(source_ref=entity.ref).filter(viewer.may_see_relation_q())
    if types is not None:
        relations = relations.filter(type__in=list(types))
    # One row per (type, target), however many origins declared it; ranked within its type.
    rows = (
        relations.values("type", "target_ref")
        .annotate(origins=Count("pk"))
        .annotate(
            rank=Window(RowNumber(), partition_by=[F("type")], order_by=[F("target_ref").asc()]),
            total=Window(Count("*"), partition_by=[F("type")]),
        )
        .filter(rank__lte=limit)
        .order_by("type", "target_ref")
        .values_list("type", "target_ref", "total")
    )
    grouped: dict[str, RelatedRefs] = {}
    for relation_type, target_ref, total in rows:
        found = grouped.setdefault(relation_type, RelatedRefs(relation_type, [], total))
        found.target_refs.append(target_ref)
    return grouped


@dataclass(frozen=True)
class EntityLabel:
    """What a page calls an entity it links to: its title, a group's or person's display name,
    else its name; its kind, and the group's type (team, organization)."""

    ref: str
    kind: str
    name: str
    title: str
    spec_type: str = ""
    in_catalog: bool = True

    @property
    def url(self) -> str:
        """Its page; "" for a ref the catalog does not hold or no page address can carry."""
        if not self.in_catalog:
            return ""
        try:
            return parse_entity_ref(self.ref).url
        except EntityRefError:
            return ""

    @property
    def noun(self) -> str:
        """Its kind as a sentence says it after the title, unless the title says it already:
        "Payments team", not "Team Payments team"."""
        noun = kind_noun(kind=self.kind, spec_type=self.spec_type)
        return "" if noun.lower() in self.title.lower() else noun


def entity_labels(*, refs: Iterable[str]) -> dict[str, EntityLabel]:
    """A label for each of these (lower-cased) refs in one query; a ref the catalog does not
    hold is labelled from the ref itself, marked not in the catalog."""
    refs = {ref.lower() for ref in refs if ref}
    if not refs:
        return {}
    rows = Entity.objects.filter(ref__in=refs).values_list(
        "ref", "kind", "name", "title", "spec_type", "restricted",
        "descriptor__spec__profile__displayName",
    )  # fmt: skip
    labels = {}
    for ref, kind, name, title, spec_type, restricted, display_name in rows:
        shown = title or (display_name if isinstance(display_name, str) else "") or name
        # A restricted entity's type is one of its details, as in the catalog's list.
        shown_type = "" if restricted else spec_type
        labels[ref] = EntityLabel(ref, kind, name, shown.strip() or name, shown_type)
    for ref in refs - labels.keys():
        kind, _, rest = ref.partition(":")
        name = rest.rpartition("/")[2] or ref
        labels[ref] = EntityLabel(ref, kind if rest else "", name, name, in_catalog=False)
    return labels


# --- Reads of the Backstage-shaped API (catalog/api.py) ------------------------------------------


def locations_all() -> QuerySet[Location]:
    return Location.objects.all()


def location_by_id(*, location_id: int) -> Location | None:
    return Location.objects.filter(pk=location_id).first()


def entity_with_location(*, ref: str) -> Entity | None:
    """The entity of a lower-cased ref, with its location read in the same query."""
    return Entity.objects.select_related("location").filter(ref=ref).first()


def entity_by_uid(*, uid: str) -> Entity | None:
    """The entity of a uid, with its location; None for a uid that is no UUID too."""
    try:
        key = uuid.UUID(uid)
    except ValueError:
        return None
    return Entity.objects.select_related("location").filter(uid=key).first()


def entity_for_refresh(*, ref: str) -> Entity | None:
    """Only what a refresh request needs of the entity: its location and its owner."""
    return Entity.objects.filter(ref=ref).only("pk", "location_id", "owner_ref").first()


def entities_matching(
    *,
    viewer: Viewer,
    conditions: Q | None,
    term: str = "",
    text_fields: list[str] | None = None,
    order: list[tuple[str, str]] | None = None,
) -> QuerySet[Entity]:
    """Entities that meet the conditions and the search term (over `text_fields` when given,
    else the catalog's search), in the API's order, ties broken by primary key."""
    entities = Entity.objects.all()
    if conditions is not None:
        entities = entities.filter(conditions)
    term = term.strip()
    if term and text_fields:
        details_q = viewer.may_see_restricted_q()
        entities = entities.filter(text_fields_q(term, text_fields, details_q=details_q))
    else:
        entities = entities.matching(term)
    ordering = ordering_by(order or [("metadata.name", "asc")],
                         details_q=viewer.may_see_restricted_q())  # fmt: skip
    return entities.order_by(*ordering, "pk")


def entities_by_refs(*, keys: list[str], conditions: Q | None) -> QuerySet[Entity]:
    """The entities of these lower-cased refs that meet the conditions."""
    entities = Entity.objects.filter(ref__in=keys)
    if conditions is not None:
        entities = entities.filter(conditions)
    return entities


def entity_total_stored(*, filters: list[str], term: str, has_query: bool) -> int | None:
    """The number of entities for the whole catalog or one filter on kinds, from the counts
    made when the catalog last changed (kind is public, so the same for every caller); None
    when the query asks more and must be counted."""
    if term or has_query:
        return None
    alternatives = parse_filters(filters)
    if not alternatives:
        kinds = FacetCount.objects.filter(facet="kind")
    elif len(alternatives) == 1 and len(alternatives[0]) == 1 and alternatives[0][0][0] == "kind":
        values = alternatives[0][0][1]
        if not values:
            return None
        kinds = (
            FacetCount.objects.filter(facet="kind")
            .annotate(upper=Upper("value"))
            .filter(upper__in=[value.upper() for value in values])
        )
    else:
        return None
    return sum(kinds.values_list("count", flat=True))


# API facet keys that the catalog page's facets count too (FACET_FIELDS, and "tag").
SUMMARIZED_FACETS = {
    "kind": "kind",
    "metadata.namespace": "namespace",
    "spec.type": "type",
    "spec.lifecycle": "lifecycle",
    "metadata.tags": "tag",
}


def field_facets(
    *, names: list[str], conditions: Q | None, narrowed: bool
) -> dict[str, list[FacetValue]]:
    """For each field asked (Backstage's `facet=`), its values' counts among the entities that
    meet the conditions (all of them when None), most common first.

    When the caller asked no conditions (not `narrowed`), the keys the catalog page counts too
    come from the counts its last change left. Beyond the public keys, what restricted
    entities hold is not counted.
    """
    wanted = {
        SUMMARIZED_FACETS[name.lower()] for name in names if name.lower() in SUMMARIZED_FACETS
    }
    summarized = not narrowed and bool(wanted)
    whole = (
        catalog_facets(restricted_opened_q=None, limit=None, only=wanted) if summarized else None
    )
    entities = Entity.objects.filter(conditions).values("pk") if conditions is not None else None
    facets: dict[str, list[FacetValue]] = {}
    for name in names:
        key = name.lower()
        if whole is not None and key in SUMMARIZED_FACETS:
            facets[name] = whole.groups[SUMMARIZED_FACETS[key]]
            continue
        if key.startswith("relations."):
            # Every relation of an entity, whoever declared it, as filters on them match.
            among = Entity.objects.filter(conditions) if conditions is not None else None
            counts = relation_counts(key, among=among)
            facets[name] = [FacetValue(value, count) for value, count in counts]
            continue
        rows = SearchRow.objects.filter(key=key)
        if entities is not None:
            rows = rows.filter(entity__in=entities)
        if key not in PUBLIC_KEYS:
            # What restricted entities hold beyond the public keys is theirs: not counted.
            rows = rows.filter(entity__restricted=False)
        counted = (
            rows.exclude(value=None)
            .values("value")
            .annotate(count=Count("entity", distinct=True), original=Max("original_value"))
            .order_by("-count", "value")
        )
        facets[name] = [FacetValue(row["original"], row["count"]) for row in counted]
    return facets


def entity_ancestry(*, ref: str) -> list[tuple[Entity, list[str]]] | None:
    """Backstage's ancestry of an entity: the entity, then each parent (the Location entity
    whose target its file was read through, as the refresh recorded it), each with its
    parent's ref; None when there is no such entity. An entity in the registered file itself
    is a root (Atrium makes no entity for a location)."""
    entity = Entity.objects.filter(ref=ref).first()
    if entity is None:
        return None
    # A chain is a few Locations deep: one query reads them all.
    location_entities = {
        candidate.ref: candidate
        for candidate in Entity.objects.filter(
            location_id=entity.location_id, kind__iexact="location"
        )
    }
    chain: list[tuple[Entity, list[str]]] = []
    current: Entity | None = entity
    seen = set()
    while current is not None and current.ref not in seen:
        seen.add(current.ref)
        parent = location_entities.get(current.parent_ref)
        chain.append((current, [parent.ref] if parent else []))
        current = parent
    return chain


def location_exists(*, target: str) -> bool:
    return Location.objects.filter(target=target).exists()


def entity_of_uid(*, uid: str) -> QuerySet[Entity]:
    """The entity of a uid (none or one, none for a uid that is no UUID), to be read as the
    API answers it."""
    try:
        key = uuid.UUID(uid)
    except ValueError:
        return Entity.objects.none()
    return Entity.objects.filter(uid=key)
