"""The catalog: registered locations, the entities they emit, and the relations between them."""

from __future__ import annotations

import re
import uuid
from typing import Any, ClassVar

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVectorField
from django.db import connections, models
from django.db.models.functions import Upper
from django.utils import timezone


class Location(models.Model):
    """A descriptor file, folder or URL that was registered; refreshed to (re)read its entities.

    As Backstage's `catalog.rules`: every location may define the kinds of `DEFAULT_KINDS`;
    people and groups only one registered allowing them, since a User's e-mail and groups
    decide who someone is in the portal.
    """

    DEFAULT_KINDS: ClassVar[tuple[str, ...]] = (
        "Component", "API", "Resource", "System", "Domain", "Location",
    )  # fmt: skip
    # The kinds a registration may allow besides those; each has its column below.
    ALLOWABLE_KINDS: ClassVar[tuple[str, ...]] = ("User", "Group")

    class Outcome(models.TextChoices):
        NEVER = "never", "not refreshed yet"
        OK = "ok", "refreshed"
        PROBLEMS = "problems", "refreshed, with problems"
        FAILED = "failed", "could not be read"

    target = models.CharField(max_length=2048, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    last_outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.NEVER)
    # `file:document: message` lines from the last refresh.
    last_problems = models.JSONField(default=list, blank=True)
    # How long the last refresh took, read and stored, for /metrics.
    last_refresh_seconds = models.FloatField(null=True, blank=True)
    # Columns rather than a list of kinds, so that a query can ask "from a location allowed
    # Users" on every database (see `trusted_q`).
    allows_users = models.BooleanField(default=False, help_text="may define User entities")
    allows_groups = models.BooleanField(default=False, help_text="may define Group entities")
    # Gateway routes decide who reaches an API through a gateway: only a location registered
    # allowing them may declare them (`atrium.dev/gateway-routes`, catalog.routes).
    allows_routes = models.BooleanField(default=False, help_text="may declare gateway routes")
    # The files the last refresh read whole and found nothing wrong with, by path: the digest
    # of what was read (catalog.ingest.file_digest) and how many entities the file gave. A
    # refresh skips such a file while both still hold (catalog.services.location_refresh).
    file_digests = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["target"]

    def __str__(self) -> str:
        return self.target

    @property
    def allow_kinds(self) -> list[str]:
        """The kinds this location may define besides the default ones: `["User", "Group"]`."""
        allowed = {"User": self.allows_users, "Group": self.allows_groups}
        return [kind for kind in self.ALLOWABLE_KINDS if allowed[kind]]

    def may_define(self, kind: str) -> bool:
        """Whether an entity of this kind (in any case) may come from this location."""
        return kind.lower() in {name.lower() for name in (*self.DEFAULT_KINDS, *self.allow_kinds)}


def trusted_q(prefix: str = "") -> models.Q:
    """Entities of a kind their location may define: a User only from a location allowed
    Users, a Group only from one allowed Groups, any other kind from anywhere.

    `prefix` reaches the entity through a relation (`origin__` from a Relation). The one
    place that says which people and groups are to be believed: the selectors that tell who
    someone is and whom a group holds ask it, through the querysets below.
    """
    kind, location = f"{prefix}kind__iexact", f"{prefix}location__"
    return (
        (models.Q(**{kind: "user"}) & models.Q(**{f"{location}allows_users": True}))
        | (models.Q(**{kind: "group"}) & models.Q(**{f"{location}allows_groups": True}))
        | (~models.Q(**{kind: "user"}) & ~models.Q(**{kind: "group"}))
    )


class EntityQuerySet(models.QuerySet["Entity"]):
    def trusted(self) -> EntityQuerySet:
        """Entities their location may define (`trusted_q`)."""
        return self.filter(trusted_q())

    def matching(self, term: str) -> EntityQuerySet:
        """Entities that hold every word of the term: in the name, anywhere in it ("pay" finds
        `payments-api`), or at the start of a word of the title, description or tags.

        PostgreSQL answers from two GIN indexes (the stored full-text document of
        `search_text`, migration 0006; trigrams of the name, 0003); elsewhere a substring
        search stands in.
        """
        entities = self
        postgres = connections[self.db].vendor == "postgresql"
        for word in term.split()[:8]:
            in_name = models.Q(name__icontains=word)
            if not postgres:
                entities = entities.filter(in_name | models.Q(search_text__icontains=word))
                continue
            # Each part of the word as a prefix: `payments-api` → 'payments':* & 'api':*.
            parts = [part.lower() for part in re.findall(r"\w+", word)]
            if not parts:
                entities = entities.filter(in_name)
                continue
            query = SearchQuery(
                " & ".join(f"'{part}':*" for part in parts), search_type="raw", config="simple"
            )
            entities = entities.filter(in_name | models.Q(search_vector=query))
        return entities

    def by_relevance(self, term: str) -> EntityQuerySet:
        """Best match first, for a search the `matching` entities answer: the name being the
        term, then starting with it, then holding it, and within each the full-text rank of
        the search document (PostgreSQL's `ts_rank`, the more words found the higher); the
        catalog's order (by ref) breaks ties."""
        words = term.split()[:8]
        if not words:
            return self
        whole = term.strip()
        name_score = models.Case(
            models.When(name__iexact=whole, then=models.Value(3.0)),
            models.When(name__istartswith=words[0], then=models.Value(2.0)),
            models.When(name__icontains=words[0], then=models.Value(1.0)),
            default=models.Value(0.0),
            output_field=models.FloatField(),
        )
        score: models.Expression = name_score
        parts = [part.lower() for word in words for part in re.findall(r"\w+", word)]
        if connections[self.db].vendor == "postgresql" and parts:
            # Any word counts towards the rank (every one is required by `matching` already);
            # below 1, so that it orders within a name score and never across one.
            query = SearchQuery(
                " | ".join(f"'{part}':*" for part in parts), search_type="raw", config="simple"
            )
            rank = SearchRank(models.F("search_vector"), query)
            score = name_score + rank / (rank + models.Value(1.0))
        return self.annotate(relevance=score).order_by("-relevance", "ref")

    def tagged(self, tag: str) -> EntityQuerySet:
        """Entities with this tag: PostgreSQL answers `tags @> '["tag"]'` from a GIN index."""
        if connections[self.db].vendor == "postgresql":
            return self.filter(tags__contains=[tag])
        # SQLite has no JSON containment; a tag is one quoted string in the JSON text, and
        # Backstage's tag rule (letters, digits, `-:+#`) leaves no quote inside one to confuse.
        return self.filter(tags__icontains=f'"{tag}"')


class SearchDocument(models.Func):
    """What the full-text index holds: the words of `search_text`, computed by PostgreSQL as it
    stores the row (a generated column, so a recheck reads it instead of parsing the text again).

    Other databases keep the plain text; their search is a substring match that never reads it.
    """

    output_field = SearchVectorField()
    template = "COALESCE(%(expressions)s, '')"

    def __init__(self, **extra: Any) -> None:
        super().__init__(models.F("search_text"), **extra)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = "to_tsvector('simple'::regconfig, COALESCE(%(expressions)s, ''))"
        return self.as_sql(compiler, connection, template=template, **extra)


class Entity(models.Model):
    """The last good version of one entity, as its location emitted it."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # `kind:namespace/name`, lower-cased: how references find an entity, case-insensitively.
    ref = models.CharField(max_length=300, unique=True)
    kind = models.CharField(max_length=63)
    namespace = models.CharField(max_length=63)
    name = models.CharField(max_length=63)
    location = models.ForeignKey(Location, on_delete=models.CASCADE, related_name="entities")
    source = models.CharField(max_length=2048, help_text="the file that holds the descriptor")
    document = models.PositiveIntegerField(help_text="its position in that file, from 1")
    # The Location entity whose target that file was read through (Backstage's ancestry); empty
    # for an entity of the registered file itself.
    parent_ref = models.CharField(max_length=300, blank=True, default="")
    descriptor = models.JSONField(help_text="the entity as Backstage's API returns it")
    etag = models.CharField(max_length=64)
    # Processing problems of the latest attempt; the descriptor above stays the last good one.
    problems = models.JSONField(default=list, blank=True)
    # Columns browsing filters and sorts on, copied from the descriptor at each refresh.
    title = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    spec_type = models.CharField(max_length=100, blank=True)
    lifecycle = models.CharField(max_length=100, blank=True)
    owner_ref = models.CharField(max_length=300, blank=True)
    system_ref = models.CharField(max_length=300, blank=True)
    restricted = models.BooleanField(default=False)
    # Kept on the row, not in a table beside it: filtering on a tag and counting tags read
    # the entity alone (a GIN index answers `tags @> ...` on PostgreSQL).
    tags = models.JSONField(default=list, blank=True)
    # Name, title, description and tags: what the search box looks in.
    search_text = models.TextField(blank=True, editable=False)
    search_vector = models.GeneratedField(
        expression=SearchDocument(), output_field=SearchVectorField(), db_persist=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = EntityQuerySet.as_manager()

    class Meta:
        ordering = ["ref"]
        verbose_name_plural = "entities"
        indexes = [
            models.Index(fields=["kind", "namespace", "name"]),
            models.Index(fields=["owner_ref"]),
            # The browsing filters compare case-insensitively: UPPER(column) = UPPER(value).
            # Pages filtered by kind read that kind's entities in the catalog's order (by ref),
            # instead of every entity in that order until a page of the kind turns up.
            models.Index(Upper("kind"), "ref", name="entity_kind_ref"),
            models.Index(Upper("spec_type"), name="entity_type_ci"),
            models.Index(Upper("lifecycle"), name="entity_lifecycle_ci"),
            models.Index(Upper("owner_ref"), name="entity_owner_ci"),
            models.Index(Upper("namespace"), name="entity_namespace_ci"),
            # The API's default order, metadata.name then the key, read in index order.
            models.Index(fields=["name", "id"], name="entity_name_order"),
        ]

    def __str__(self) -> str:
        return self.ref

    @property
    def display_name(self) -> str:
        return self.title or self.name

    @property
    def url(self) -> str:
        """The entity's page in the portal ("" for a name no page address can carry)."""
        from catalog.refs import parse_entity_ref

        return parse_entity_ref(self.ref).url


class EntityRequiredRole(models.Model):
    """An Auth0 role the entity declares in `atrium.dev/required-roles`."""

    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="required_role_rows")
    role_name = models.CharField(max_length=255, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["entity", "role_name"], name="required_role_once")
        ]
        ordering = ["role_name"]

    def __str__(self) -> str:
        return self.role_name


class GatewayRoute(models.Model):
    """A route the entity declared in `atrium.dev/gateway-routes` and holds: no other entity's
    route overlaps it (catalog.routes says when two do). `claimed_at` says since when, kept
    while the entity goes on declaring the route: the first claim keeps it, so a later
    declaration, or the same one registered again, cannot take it."""

    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="gateway_routes")
    host = models.CharField(max_length=253)
    path = models.CharField(max_length=500)
    # Comma-separated, in HTTP's order; empty for every method.
    methods = models.CharField(max_length=100, blank=True)
    # The entity's `atrium.dev/audience`; empty: the portal's AUTHZ_DEFAULT_AUDIENCE.
    audience = models.CharField(max_length=300, blank=True)
    claimed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["entity", "host", "path", "methods"], name="gateway_route_once"
            )
        ]
        indexes = [models.Index(fields=["host"], name="gateway_route_host")]
        ordering = ["host", "path", "methods"]

    def __str__(self) -> str:
        start = f"{self.methods} " if self.methods else ""
        return f"{start}{self.host}{self.path}"


class RelationQuerySet(models.QuerySet["Relation"]):
    def trusted_memberships(self) -> RelationQuerySet:
        """`user memberOf group` relations to believe: declared by a User (its `spec.memberOf`)
        or a Group (its `spec.members`) from a location allowed that kind, naming a Group that
        a location allowed Groups defines. One query, however many rows it is filtered to."""
        groups = Entity.objects.filter(kind__iexact="group").trusted().values("ref")
        return self.filter(
            models.Q(origin__kind__iexact="user") | models.Q(origin__kind__iexact="group"),
            trusted_q("origin__"),
            type="memberOf",
            target_ref__in=groups,
        )


class Relation(models.Model):
    """`source_ref` —type→ `target_ref`, emitted while processing `origin`.

    Both directions are stored, as Backstage stores them; the target need not exist.
    """

    # Derived rows, seven or so per entity, removed with their entity by Django's cascade; as
    # with search rows, the database's foreign-key check cost more than the insert (it ran at
    # commit, for every row). The unique constraint's index, origin first, serves lookups.
    origin = models.ForeignKey(
        Entity,
        on_delete=models.CASCADE,
        related_name="emitted_relations",
        db_constraint=False,
        db_index=False,
    )
    source_ref = models.CharField(max_length=300)
    type = models.CharField(max_length=63)
    target_ref = models.CharField(max_length=300)

    objects = RelationQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["origin", "source_ref", "type", "target_ref"], name="relation_once"
            )
        ]
        indexes = [models.Index(fields=["source_ref", "type"])]

    def __str__(self) -> str:
        return f"{self.source_ref} {self.type} {self.target_ref}"


class SearchRow(models.Model):
    """One flattened `key=value` of an entity, lower-cased, as Backstage's search table holds them.

    `kind=component`, `metadata.tags=java`, `spec.owner=team-a`,
    `relations.ownedby=group:default/team-a`: the API's `filter=` finds entities through these.
    """

    # Derived rows, about 25 per entity, written with COPY and removed with their entity by
    # Django's cascade: without the database's foreign-key check, which costs more than the
    # insert itself at a million rows.
    entity = models.ForeignKey(
        Entity, on_delete=models.CASCADE, related_name="search_rows", db_constraint=False
    )
    key = models.CharField(max_length=200)
    # A key present with a null value differs from an empty string, as in Backstage.
    value = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    original_value = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001

    class Meta:
        indexes = [models.Index(fields=["key", "value"])]

    def __str__(self) -> str:
        return f"{self.key}={self.value}"


class FacetCount(models.Model):
    """How many entities of one kind have each value of a browsing facet, restricted or not.

    Rebuilt when a refresh changes the catalog, so that the catalog page of one kind or of
    every kind, the one most opened, does not count every entity on every view. Restricted
    entities are counted apart: type, lifecycle and tags are details of theirs, and who may
    see them is the policy's to say, viewer by viewer (`catalog.selectors.catalog_facets`).
    """

    kind = models.CharField(max_length=63)
    facet = models.CharField(max_length=20)
    value = models.CharField(max_length=300)
    restricted = models.BooleanField(default=False)
    count = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "facet", "value", "restricted"], name="facet_value_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.facet}={self.value}: {self.count}"
