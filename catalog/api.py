"""The catalog API, in the shapes of Backstage's catalog REST API so its clients work."""

# Over 400 lines, kept whole: one router for Backstage's one catalog API, each endpoint beside
# the parsing of its parameters; the reads are catalog.selectors', the cursors catalog.cursors'.

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema
from ninja.errors import HttpError
from pydantic import Field

from access.api import api_actor
from access.policy import (
    Viewer,
    may_refresh_entity,
    may_register_locations,
    may_see_server_paths,
    viewer_for,
)
from catalog import selectors
from catalog.cursors import CursorError, decode_after, decode_query_cursor, encode_cursor
from catalog.descriptors import DescriptorError, validate_entity
from catalog.fetch import url_refusal
from catalog.models import Entity, Location
from catalog.refs import EntityRefError, parse_entity_ref
from catalog.search import FilterError, Predicate, filters_q, parse_filters
from catalog.serializers import entities_json, entities_json_texts, entity_texts_by_refs
from catalog.services import (
    LocationRefused,
    entity_delete,
    location_delete,
    location_import,
    normalize_target,
)
from catalog.tasks import location_refresh_queue
from portal.apikit import RENDERER, json_response, json_text_response, person_of, principal_of
from portal.bounds import MAX_OFFSET, MAX_TERM, Id, Offset, Values, bounded, values_param

router = Router(tags=["catalog"])


class LocationInput(Schema):
    type: str
    target: str
    # Atrium's: the kinds the location may define besides the default ones (User, Group).
    allowKinds: Values | None = None
    # Atrium's: whether its entities may declare gateway routes (a new location may not).
    allowRoutes: bool | None = None


class ValidateInput(Schema):
    entity: Any
    location: str = ""


def _location_type(target: str) -> str:
    """Backstage's LocationSpec type: `url` for what is fetched over HTTP, `file` for a path."""
    return "url" if urlsplit(target).scheme in {"http", "https"} else "file"


# What a caller who may not see server paths reads instead of a file location's target.
HIDDEN_PATH = "(a path on the Atrium server, shown to portal admins)"


def location_json(location: Location, *, shows_paths: bool = True) -> dict[str, Any]:
    """Backstage's Location, with Atrium's `allowKinds` beside its fields. A file location's
    path is replaced by HIDDEN_PATH unless `shows_paths`."""
    kind = _location_type(location.target)
    target = location.target if kind == "url" or shows_paths else HIDDEN_PATH
    return {"id": str(location.pk), "type": kind, "target": target,
            "allowKinds": location.allow_kinds, "allowRoutes": location.allows_routes}  # fmt: skip


def _shows_paths(request: HttpRequest) -> bool:
    return may_see_server_paths(principal_of(request), person_of(request))


def _location_ref(location: Location) -> str:
    return f"{_location_type(location.target)}:{location.target}"


def _require_catalog_writer(request: HttpRequest, refusal: str) -> None:
    """Writes to the catalog: machines with `write:catalog`, people who administer the portal."""
    principal = principal_of(request)
    principal.require_scope("write:catalog")
    if not may_register_locations(principal, person_of(request)):
        raise HttpError(403, refusal)


@router.get("/locations", summary="Every registered location")
def locations_list(request: HttpRequest) -> list[dict[str, Any]]:
    principal_of(request).require_scope("read:catalog")
    shows_paths = _shows_paths(request)
    return [
        {"data": location_json(location, shows_paths=shows_paths)}
        for location in selectors.locations_all()
    ]


@router.get("/locations/{location_id}", summary="One registered location")
def location_detail(request: HttpRequest, location_id: Id) -> dict[str, Any]:
    principal_of(request).require_scope("read:catalog")
    location = selectors.location_by_id(location_id=location_id)
    if location is None:
        raise HttpError(404, f"Found no location with ID {location_id}")
    return location_json(location, shows_paths=_shows_paths(request))


@router.get(
    "/locations/by-entity/{kind}/{namespace}/{name}", summary="The location an entity came from"
)
def location_by_entity(request: HttpRequest, kind: str, namespace: str, name: str) -> HttpResponse:
    principal_of(request).require_scope("read:catalog")
    ref = f"{kind}:{namespace}/{name}".lower()
    entity = selectors.entity_with_location(ref=ref)
    if entity is None:
        raise HttpError(404, f"found no entity for ref {ref}")
    return json_response(request, location_json(entity.location, shows_paths=_shows_paths(request)))


@router.post("/locations", summary="Register a location (dryRun=true: only show what it holds)")
def locations_add(
    request: HttpRequest,
    payload: LocationInput,
    dryRun: bool = False,
) -> HttpResponse:
    _require_catalog_writer(request, "registering locations is for portal admins")
    if payload.type != "url":
        raise HttpError(
            400,
            f"only url locations can be registered through the API, not {payload.type!r}; "
            "register files with `manage.py import_catalog`",
        )
    target = normalize_target(payload.target)
    if not target.startswith(("http://", "https://")):
        raise HttpError(400, f"the target {payload.target!r} is not an http(s) URL")
    if (refusal := url_refusal(target)) is not None:
        raise HttpError(400, f"{target}: {refusal}")
    exists = selectors.location_exists(target=target)
    if exists and not dryRun:
        raise HttpError(409, f"Location url:{target} already exists")
    try:
        report = location_import(
            target=target,
            dry_run=dryRun,
            with_entities=True,
            allow_kinds=payload.allowKinds,
            allow_routes=payload.allowRoutes,
        )
    except LocationRefused as error:
        raise HttpError(400, str(error)) from error
    if not dryRun:
        api_actor(request).record(
            "catalog.location_registered", f"url:{target}",
            entities=len(report.entities), problems=len(report.problems),
            **report.allow_kinds_detail,
        )  # fmt: skip
    body: dict[str, Any] = {
        "location": location_json(report.location),
        "entities": [entity.descriptor for entity in report.entities],
        "problems": [str(problem) for problem in report.problems],
    }
    if dryRun:
        body["exists"] = exists
    return json_response(request, body, status=201)


@router.delete("/locations/{location_id}", summary="Forget a location and its entities")
def locations_remove(request: HttpRequest, location_id: Id) -> HttpResponse:
    _require_catalog_writer(request, "registering locations is for portal admins")
    location = selectors.location_by_id(location_id=location_id)
    if location is None:
        raise HttpError(404, f"Found no location with ID {location_id}")
    location_delete(location=location)
    api_actor(request).record("catalog.location_removed", _location_ref(location))
    return HttpResponse(status=204)


@router.post("/validate-entity", summary="Would the catalog accept this entity?")
def entity_validate(request: HttpRequest, payload: ValidateInput) -> HttpResponse:
    principal_of(request).require_scope("read:catalog")
    try:
        validate_entity(payload.entity)
    except DescriptorError as error:
        errors = [{"name": "InputError", "message": error.message}]
        return json_response(request, {"errors": errors}, status=400)
    return HttpResponse(status=200)


# --- Entities ----------------------------------------------------------------------------------

DEFAULT_PAGE = 20
MAX_PAGE = 500


def _viewer(request: HttpRequest) -> Viewer:
    principal = principal_of(request)
    principal.require_scope("read:catalog")
    return viewer_for(person_of(request))


def _split(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _fields(values: list[str]) -> list[str]:
    """Backstage's `fields=`: dotted paths; an array index is not one (Backstage's message)."""
    fields = _split(values)
    if any("[" in field for field in fields):
        raise HttpError(400, "invalid fields, array type fields are not supported")
    return fields


def _conditions(filters: list[str], predicate: Any, *, viewer: Viewer) -> Q | None:
    """`filter=` alternatives and a predicate (both must hold), or None when neither is given."""
    try:
        alternatives = parse_filters(filters)
    except FilterError as error:
        raise HttpError(400, str(error)) from error
    if predicate is not None and not isinstance(predicate, dict):
        raise HttpError(400, "Query must be an object")
    conditions = []
    if alternatives:
        conditions.append(filters_q(alternatives, viewer=viewer))
    if predicate is not None:
        try:
            conditions.append(Predicate(viewer=viewer).q(predicate))
        except FilterError as error:
            raise HttpError(400, str(error)) from error
    if not conditions:
        return None
    combined = Q()
    for condition in conditions:
        combined &= condition
    return combined


def _query(
    filters: list[str],
    term: str = "",
    order: list[tuple[str, str]] | None = None,
    *,
    viewer: Viewer,
    predicate: Any = None,
    text_fields: list[str] | None = None,
) -> QuerySet[Entity]:
    return selectors.entities_matching(
        viewer=viewer,
        conditions=_conditions(filters, predicate, viewer=viewer),
        term=term,
        text_fields=text_fields,
        order=order,
    )


Limit = Annotated[int, Field(ge=1, le=MAX_PAGE, description=f"1 to {MAX_PAGE}")]


def _limit(raw: int | None, default: int) -> int:
    """A page size from the query, a body or a cursor: the schema bounds only the first."""
    return default if raw is None else bounded("limit", raw, low=1, high=MAX_PAGE)


def _offset(raw: int | None) -> int:
    return 0 if raw is None else bounded("offset", raw, low=0, high=MAX_OFFSET)


@router.get("/entities", summary="Entities, filtered as Backstage filters them")
def entities_list(
    request: HttpRequest,
    filter: list[str] = values_param(),
    fields: list[str] = values_param(),
    limit: Limit | None = None,
    offset: Offset | None = None,
    after: str | None = None,
    order: list[str] = values_param(),
) -> HttpResponse:
    """All matching entities; with `limit`, a page of them and, while more follow, a `Link`
    header to the next page (`after=`, an opaque cursor of limit and offset, as Backstage's)."""
    viewer = _viewer(request)
    projection = _fields(fields)
    ordering = []
    for raw in order:
        direction, _, field_name = raw.partition(":")
        if direction not in {"asc", "desc"} or not field_name:
            raise HttpError(400, f"order must look like asc:metadata.name, not {raw!r}")
        ordering.append((field_name, direction))
    entities = _query(filter, order=ordering, viewer=viewer)
    if after is not None:
        try:
            state = decode_after(after)
        except CursorError as error:
            raise HttpError(400, str(error)) from error
        limit, offset = state.get("limit", limit), state.get("offset", offset or 0)
    start = _offset(offset)
    if limit is None:
        every = entities_json_texts(entities[start:], viewer=viewer, fields=projection)
        return json_text_response(_json_list(every))
    limit = _limit(limit, MAX_PAGE)
    # One more than the page, to know whether another follows.
    page = entities_json_texts(
        entities[start : start + limit + 1], viewer=viewer, fields=projection
    )
    response = json_text_response(_json_list(page[:limit]))
    if len(page) > limit:
        query = request.GET.copy()
        query.pop("offset", None)
        query["after"] = encode_cursor({"limit": limit, "offset": start + limit})
        response["Link"] = f'<{request.path}?{query.urlencode()}>; rel="next"'
    return response


def _json_list(texts: list[tuple[str, str]]) -> str:
    """A JSON array of entities' texts, spaced as the API's renderer spaces one."""
    return "[" + ", ".join(text for _, text in texts) + "]"


@router.get("/entities/by-name/{kind}/{namespace}/{name}", summary="One entity by its name")
def entity_by_name(request: HttpRequest, kind: str, namespace: str, name: str) -> HttpResponse:
    viewer = _viewer(request)
    texts = entity_texts_by_refs([f"{kind}:{namespace}/{name}".lower()], viewer=viewer)
    if not texts:
        raise HttpError(
            404, f"No entity named '{name}' found, with kind '{kind}' in namespace '{namespace}'"
        )
    return json_text_response(texts[0][1])


@router.get("/entities/by-uid/{uid}", summary="One entity by its uid")
def entity_by_uid(request: HttpRequest, uid: str) -> HttpResponse:
    viewer = _viewer(request)
    texts = entities_json_texts(selectors.entity_of_uid(uid=uid), viewer=viewer)
    if not texts:
        raise HttpError(404, f"No entity with uid {uid}")
    return json_text_response(texts[0][1])


@router.delete(
    "/entities/by-uid/{uid}", summary="Remove an entity (its location may emit it again)"
)
def entity_remove(request: HttpRequest, uid: str) -> HttpResponse:
    """As Backstage's: the entity goes now, and comes back when its location is next read if
    the location still emits it. Nothing to remove is not an error (204 either way)."""
    _require_catalog_writer(request, "removing entities is for portal admins")
    entity = selectors.entity_by_uid(uid=uid)
    if entity is not None:
        entity_delete(
            entity=entity, actor=api_actor(request), location=_location_ref(entity.location)
        )
    return HttpResponse(status=204)


@router.get(
    "/entities/by-name/{kind}/{namespace}/{name}/ancestry",
    summary="The entity and the Location entities it was read through",
)
def entity_ancestry(request: HttpRequest, kind: str, namespace: str, name: str) -> HttpResponse:
    """Backstage's ancestry: the entity, then each Location entity it was read through
    (`catalog.selectors.entity_ancestry`)."""
    viewer = _viewer(request)
    ref = f"{kind}:{namespace}/{name}".lower()
    chain = selectors.entity_ancestry(ref=ref)
    if chain is None:
        raise HttpError(404, f"No such entity {ref}")
    bodies = entities_json([member for member, _ in chain], viewer=viewer)
    items = [
        {"entity": body, "parentEntityRefs": parents}
        for body, (_, parents) in zip(bodies, chain, strict=True)
    ]
    return json_response(request, {"rootEntityRef": chain[0][0].ref, "items": items})


class ByRefsInput(Schema):
    entityRefs: Values
    fields: Values = []
    query: Any = None


@router.post(
    "/entities/by-refs", summary="Entities by reference, in the order asked, null if absent"
)
def entities_by_refs(
    request: HttpRequest, payload: ByRefsInput, filter: list[str] = values_param()
) -> HttpResponse:
    """An entity that does not match `filter=` (or the body's `query`) is null, as a missing one."""
    viewer = _viewer(request)
    projection = _fields(payload.fields)
    keys = []
    for raw in payload.entityRefs:
        try:
            keys.append(parse_entity_ref(raw).key)
        except EntityRefError as error:
            raise HttpError(400, str(error)) from error
    conditions = _conditions(filter, payload.query, viewer=viewer)
    if conditions is None and not projection:
        texts = dict(entity_texts_by_refs(list(dict.fromkeys(keys)), viewer=viewer))
    else:
        found = selectors.entities_by_refs(keys=keys, conditions=conditions)
        texts = dict(entities_json_texts(found, viewer=viewer, fields=projection))
    items = ", ".join(texts.get(key, "null") for key in keys)
    return json_text_response(f'{{"items": [{items}]}}')


def _decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        state = decode_query_cursor(cursor)
    except CursorError as error:
        raise HttpError(400, str(error)) from error
    # A cursor carries what its first request asked: the same bounds hold for it.
    _offset(state["offset"])
    _term(state.get("term", ""))
    return state


def _order_field(raw: str) -> list[str]:
    field_name, _, direction = raw.partition(",")
    if direction not in {"", "asc", "desc"}:
        raise HttpError(400, "Invalid order field order, must be asc or desc")
    if not field_name.strip():
        raise HttpError(400, f"Invalid order field {raw!r}, the field is missing")
    return [field_name.strip(), direction or "asc"]


def _term(raw: str) -> str:
    term = raw.strip()
    if len(term) > MAX_TERM:
        raise HttpError(400, f"the search term is {len(term):,} characters; at most {MAX_TERM:,}")
    return term


def _first_state(params: dict[str, Any]) -> dict[str, Any]:
    """What a first request asks; its cursors carry it to the next pages."""
    offset = _offset(params.get("offset"))
    state: dict[str, Any] = {
        "filter": params.get("filter") or [],
        "term": _term(params.get("fullTextFilterTerm") or ""),
        "order": params.get("order") or [],
        "offset": offset,
        # Where the first page began: a previous page goes back no further, as Backstage's.
        "start": offset,
    }
    if params.get("fullTextFilterFields"):
        state["textFields"] = params["fullTextFilterFields"]
    if params.get("query") is not None:
        state["query"] = params["query"]
    if params.get("totalItems") not in {None, "include", "exclude"}:
        raise HttpError(400, "totalItems must be include or exclude")
    if params.get("totalItems") == "exclude":
        state["count"] = False
    return state


def _by_query(request: HttpRequest, params: dict[str, Any]) -> HttpResponse:
    viewer = _viewer(request)
    limit = _limit(params.get("limit"), DEFAULT_PAGE)
    projection = _fields(params.get("fields") or [])
    state = _decode_cursor(params["cursor"]) if params.get("cursor") else _first_state(params)
    entities = _query(
        state.get("filter", []),
        state.get("term", ""),
        [(field_name, direction) for field_name, direction in state.get("order", [])],
        viewer=viewer,
        predicate=state.get("query"),
        text_fields=state.get("textFields"),
    )
    total = 0
    if state.get("count", True):
        stored = selectors.entity_total_stored(
            filters=state.get("filter", []), term=state.get("term", ""), has_query="query" in state
        )
        total = entities.count() if stored is None else stored
    offset, start = state["offset"], state.get("start", 0)
    # One more than the page, to know whether another follows.
    page = entities_json_texts(
        entities[offset : offset + limit + 1], viewer=viewer, fields=projection
    )
    page_info: dict[str, str] = {}
    if len(page) > limit:
        page_info["nextCursor"] = encode_cursor({**state, "offset": offset + limit})
    if offset > start:
        page_info["prevCursor"] = encode_cursor({**state, "offset": max(offset - limit, start)})
    rest = RENDERER.render(
        request, {"totalItems": total, "pageInfo": page_info}, response_status=200
    )
    return json_text_response(f'{{"items": {_json_list(page[:limit])}, {rest[1:]}')


@router.get("/entities/by-query", summary="A page of entities, with a cursor to the next")
def entities_by_query(
    request: HttpRequest,
    filter: list[str] = values_param(),
    fields: list[str] = values_param(),
    limit: Limit | None = None,
    offset: Offset | None = None,
    orderField: list[str] = values_param(),
    fullTextFilterTerm: str = "",
    fullTextFilterFields: list[str] = values_param(),
    totalItems: str | None = None,
    cursor: str = "",
) -> HttpResponse:
    params = {
        "filter": filter, "fields": fields, "limit": limit, "offset": offset,
        "order": [_order_field(raw) for raw in orderField],
        "fullTextFilterTerm": fullTextFilterTerm,
        "fullTextFilterFields": _split(fullTextFilterFields),
        "totalItems": totalItems, "cursor": cursor,
    }  # fmt: skip
    return _by_query(request, params)


class ByQueryInput(Schema):
    """Backstage's POST body (`query`, `orderBy` or `orderField`, `fullTextFilter`), and the
    GET parameters' names, which this body took before (`filter`, `fullTextFilterTerm`)."""

    query: Any = None
    orderBy: Any = None
    orderField: Values = []
    fullTextFilter: Any = None
    filter: Values = []
    fullTextFilterTerm: str = ""
    fields: Values = []
    limit: Limit | None = None
    offset: Offset | None = None
    totalItems: str | None = None
    cursor: str = ""


def _order_by(raw: Any) -> list[list[str]]:
    """The client's `orderBy`: `{"field", "order"}`, or a list of them."""
    order = []
    for item in raw if isinstance(raw, list) else [raw]:
        if not isinstance(item, dict) or not isinstance(item.get("field"), str):
            raise HttpError(400, 'orderBy must be a list of {"field": ..., "order": ...}')
        direction = item.get("order", "asc")
        if direction not in {"asc", "desc"}:
            raise HttpError(400, "Invalid order field order, must be asc or desc")
        order.append([item["field"], direction])
    return order


@router.post("/entities/by-query", summary="Entities matching a predicate query, a page at a time")
def entities_by_query_post(request: HttpRequest, payload: ByQueryInput) -> HttpResponse:
    term, text_fields = payload.fullTextFilterTerm, list[str]()
    if payload.fullTextFilter is not None:
        full_text = payload.fullTextFilter
        if not isinstance(full_text, dict) or not isinstance(full_text.get("term", ""), str):
            raise HttpError(400, 'fullTextFilter must look like {"term": "...", "fields": [...]}')
        text_fields = full_text.get("fields") or []
        if not isinstance(text_fields, list) or not all(isinstance(f, str) for f in text_fields):
            raise HttpError(400, "fullTextFilter.fields must be a list of field names")
        term = full_text.get("term", "")
    order = [_order_field(raw) for raw in payload.orderField]
    if payload.orderBy is not None:
        order += _order_by(payload.orderBy)
    params = {
        "query": payload.query, "filter": payload.filter, "fields": payload.fields,
        "limit": payload.limit, "offset": payload.offset, "order": order,
        "fullTextFilterTerm": term, "fullTextFilterFields": _split(text_fields),
        "totalItems": payload.totalItems, "cursor": payload.cursor,
    }  # fmt: skip
    return _by_query(request, params)


def _facets(
    request: HttpRequest, facet: list[str], filters: list[str], predicate: Any
) -> HttpResponse:
    principal_of(request).require_scope("read:catalog")
    narrowed = bool(filters) or predicate is not None
    # Conditions on details match what the caller may see: only they need to know who it is.
    viewer = _viewer(request) if narrowed else Viewer()
    conditions = _conditions(filters, predicate, viewer=viewer)
    counted = selectors.field_facets(names=facet, conditions=conditions, narrowed=narrowed)
    facets = {
        name: [{"value": value.value, "count": value.count} for value in values]
        for name, values in counted.items()
    }
    return json_response(request, {"facets": facets})


@router.get("/entity-facets", summary="Counts of each value of the fields asked for")
def entity_facets_api(
    request: HttpRequest,
    facet: list[str] = values_param(),
    filter: list[str] = values_param(),
) -> HttpResponse:
    return _facets(request, facet, filter, None)


class FacetsInput(Schema):
    facets: Values = []
    query: Any = None


@router.post("/entity-facets", summary="Counts of each value, among entities matching a predicate")
def entity_facets_post(request: HttpRequest, payload: FacetsInput) -> HttpResponse:
    facets = [name for name in payload.facets if name]
    if not facets:
        raise HttpError(400, "Missing or empty facets parameter")
    return _facets(request, facets, [], payload.query)


class RefreshInput(Schema):
    entityRef: str


@router.post(
    "/refresh",
    summary="Queue a read of an entity's location (write:catalog, and owners or admins)",
)
def entity_refresh(request: HttpRequest, payload: RefreshInput) -> HttpResponse:
    principal = principal_of(request)
    principal.require_scope("write:catalog")
    try:
        key = parse_entity_ref(payload.entityRef).key
    except EntityRefError as error:
        raise HttpError(400, str(error)) from error
    entity = selectors.entity_for_refresh(ref=key)
    if entity is None:
        raise HttpError(404, f"No entity {payload.entityRef} in the catalog")
    if not may_refresh_entity(principal, person_of(request), owner_ref=entity.owner_ref):
        raise HttpError(403, f"only {key}'s owners and portal admins may refresh it")
    # Queued: a refresh reads the whole location, which the request should not wait for. The
    # answer is 200, as Backstage's (which also only schedules) and its client expect.
    location_refresh_queue(location_id=entity.location_id)
    return HttpResponse(status=200)
