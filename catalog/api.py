"""The catalog API, in the shapes of Backstage's catalog REST API so its clients work."""

from __future__ import annotations

import base64
import json
from typing import Any

from django.db.models import Count, Max, QuerySet
from django.db.models.functions import Upper
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema
from ninja.errors import HttpError

from access.api import api_actor
from access.policy import Viewer, may_register_locations, viewer_for
from catalog.descriptors import DescriptorError, validate_entity
from catalog.models import Entity, FacetCount, Location, SearchRow
from catalog.refs import EntityRefError, parse_entity_ref
from catalog.search import PUBLIC_KEYS, FilterError, filters_q, parse_filters
from catalog.selectors import catalog_facets
from catalog.serializers import entities_json
from catalog.services import (
    location_delete,
    location_import,
    location_refresh,
    normalize_target,
)
from portal.api import json_response, person_of, principal_of

router = Router(tags=["catalog"])


class LocationInput(Schema):
    type: str
    target: str


class ValidateInput(Schema):
    entity: Any
    location: str = ""


def location_json(location: Location) -> dict[str, str]:
    return {"id": str(location.pk), "type": "url", "target": location.target}


def _require_registrar(request: HttpRequest) -> None:
    principal = principal_of(request)
    principal.require_scope("write:catalog")
    if not may_register_locations(principal, person_of(request)):
        raise HttpError(403, "registering locations is for portal admins")


@router.get("/locations", summary="Every registered location")
def locations_list(request: HttpRequest) -> list[dict[str, Any]]:
    principal_of(request).require_scope("read:catalog")
    return [{"data": location_json(location)} for location in Location.objects.all()]


@router.get("/locations/{location_id}", summary="One registered location")
def location_detail(request: HttpRequest, location_id: int) -> dict[str, str]:
    principal_of(request).require_scope("read:catalog")
    location = Location.objects.filter(pk=location_id).first()
    if location is None:
        raise HttpError(404, f"Found no location with ID {location_id}")
    return location_json(location)


@router.post("/locations", summary="Register a location (dryRun=true: only show what it holds)")
def locations_add(
    request: HttpRequest,
    payload: LocationInput,
    dryRun: bool = False,
) -> HttpResponse:
    _require_registrar(request)
    if payload.type != "url":
        raise HttpError(
            400,
            f"only url locations can be registered through the API, not {payload.type!r}; "
            "register files with `manage.py import_catalog`",
        )
    target = normalize_target(payload.target)
    if not target.startswith(("http://", "https://")):
        raise HttpError(400, f"the target {payload.target!r} is not an http(s) URL")
    exists = Location.objects.filter(target=target).exists()
    if exists and not dryRun:
        raise HttpError(409, f"Location url:{target} already exists")
    report = location_import(target=target, dry_run=dryRun, with_entities=True)
    if not dryRun:
        api_actor(request).record(
            "catalog.location_registered", f"url:{target}",
            entities=len(report.entities), problems=len(report.problems),
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
def locations_remove(request: HttpRequest, location_id: int) -> HttpResponse:
    _require_registrar(request)
    location = Location.objects.filter(pk=location_id).first()
    if location is None:
        raise HttpError(404, f"Found no location with ID {location_id}")
    location_delete(location=location)
    api_actor(request).record("catalog.location_removed", f"url:{location.target}")
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

ORDER_COLUMNS = {
    "metadata.name": "name",
    "metadata.namespace": "namespace",
    "metadata.title": "title",
    "kind": "kind",
    "spec.type": "spec_type",
    "spec.lifecycle": "lifecycle",
    "spec.owner": "owner_ref",
}
DEFAULT_PAGE = 20
MAX_PAGE = 500


def _viewer(request: HttpRequest) -> Viewer:
    principal = principal_of(request)
    principal.require_scope("read:catalog")
    return viewer_for(person_of(request))


def _split(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _query(
    filters: list[str],
    term: str = "",
    order: list[tuple[str, str]] | None = None,
    *,
    viewer: Viewer,
) -> QuerySet[Entity]:
    try:
        alternatives = parse_filters(filters)
    except FilterError as error:
        raise HttpError(400, str(error)) from error
    entities = Entity.objects.all()
    if alternatives:
        entities = entities.filter(filters_q(alternatives, details_q=viewer.may_see_restricted_q()))
    entities = entities.matching(term)
    ordering = []
    for field_name, direction in order or [("metadata.name", "asc")]:
        column = ORDER_COLUMNS.get(field_name)
        if column is None:
            known = ", ".join(ORDER_COLUMNS)
            raise HttpError(400, f"cannot order by {field_name!r}; one of {known}")
        ordering.append(f"-{column}" if direction == "desc" else column)
    return entities.order_by(*ordering, "pk").prefetch_related("required_role_rows")


def _limit(raw: int | None, default: int) -> int:
    if raw is None:
        return default
    if not 0 < raw <= MAX_PAGE:
        raise HttpError(400, f"limit must be between 1 and {MAX_PAGE}")
    return raw


@router.get("/entities", summary="Entities, filtered as Backstage filters them")
def entities_list(
    request: HttpRequest,
    filter: list[str] = Query([]),
    fields: list[str] = Query([]),
    limit: int | None = None,
    offset: int | None = None,
    after: str | None = None,
    order: list[str] = Query([]),
) -> HttpResponse:
    """All matching entities; with `limit`, a page of them and, while more follow, a `Link`
    header to the next page (`after=`, an opaque cursor of limit and offset, as Backstage's)."""
    viewer = _viewer(request)
    ordering = []
    for raw in order:
        direction, _, field_name = raw.partition(":")
        if direction not in {"asc", "desc"} or not field_name:
            raise HttpError(400, f"order must look like asc:metadata.name, not {raw!r}")
        ordering.append((field_name, direction))
    entities = _query(filter, order=ordering, viewer=viewer)
    if after is not None:
        limit, offset = _decode_after(after, limit, offset)
    if offset is not None and offset < 0:
        raise HttpError(400, "offset must not be negative")
    start = offset or 0
    if limit is None:
        return json_response(
            request, entities_json(entities[start:], viewer=viewer, fields=_split(fields))
        )
    limit = _limit(limit, MAX_PAGE)
    # One more than the page, to know whether another follows.
    page = list(entities[start : start + limit + 1])
    response = json_response(
        request, entities_json(page[:limit], viewer=viewer, fields=_split(fields))
    )
    if len(page) > limit:
        query = request.GET.copy()
        query.pop("offset", None)
        query["after"] = _encode_cursor({"limit": limit, "offset": start + limit})
        response["Link"] = f'<{request.path}?{query.urlencode()}>; rel="next"'
    return response


def _decode_after(after: str, limit: int | None, offset: int | None) -> tuple[int | None, int]:
    """Backstage's `after`: the limit and offset of the page it points to."""
    try:
        state = json.loads(base64.urlsafe_b64decode(after.encode()))
        if not isinstance(state, dict):
            raise ValueError(after)
    except ValueError as error:
        raise HttpError(400, "Malformed after cursor, could not be parsed") from error
    for key in ("limit", "offset"):
        if key in state and (not isinstance(state[key], int) or isinstance(state[key], bool)):
            raise HttpError(400, f"Malformed after cursor, {key} was not a number")
    return state.get("limit", limit), state.get("offset", offset or 0)


@router.get("/entities/by-name/{kind}/{namespace}/{name}", summary="One entity by its name")
def entity_by_name(request: HttpRequest, kind: str, namespace: str, name: str) -> HttpResponse:
    viewer = _viewer(request)
    entity = Entity.objects.filter(ref=f"{kind}:{namespace}/{name}".lower()).first()
    if entity is None:
        raise HttpError(
            404, f"No entity named '{name}' found, with kind '{kind}' in namespace '{namespace}'"
        )
    (body,) = entities_json([entity], viewer=viewer)
    return json_response(request, body)


class ByRefsInput(Schema):
    entityRefs: list[str]
    fields: list[str] = []


@router.post(
    "/entities/by-refs", summary="Entities by reference, in the order asked, null if absent"
)
def entities_by_refs(request: HttpRequest, payload: ByRefsInput) -> HttpResponse:
    viewer = _viewer(request)
    keys = []
    for raw in payload.entityRefs:
        try:
            keys.append(parse_entity_ref(raw).key)
        except EntityRefError as error:
            raise HttpError(400, str(error)) from error
    found = {
        entity.ref: entity
        for entity in Entity.objects.filter(ref__in=keys).prefetch_related("required_role_rows")
    }
    bodies = dict(
        zip(
            found,
            entities_json(found.values(), viewer=viewer, fields=_split(payload.fields)),
            strict=True,
        )
    )
    return json_response(request, {"items": [bodies.get(key) for key in keys]})


def _encode_cursor(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state).encode()).decode()


def _decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(state, dict) or not isinstance(state.get("offset"), int):
            raise ValueError(cursor)
    except ValueError as error:
        raise HttpError(400, "the cursor is not one this API gave out") from error
    return state


def _stored_total(raw_filters: list[str], term: str) -> int | None:
    """The number of entities for the whole catalog or one filter on kinds, from the counts
    made when the catalog last changed (kind is public, so the same for every caller); None
    when the query asks more and must be counted."""
    if term:
        return None
    alternatives = parse_filters(raw_filters)
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


def _by_query(request: HttpRequest, params: dict[str, Any]) -> HttpResponse:
    viewer = _viewer(request)
    limit = _limit(params.get("limit"), DEFAULT_PAGE)
    if params.get("cursor"):
        state = _decode_cursor(params["cursor"])
    else:
        ordering = []
        for raw in params.get("orderField") or []:
            field_name, _, direction = raw.partition(",")
            ordering.append((field_name, direction or "asc"))
        state = {
            "filter": params.get("filter") or [],
            "term": params.get("fullTextFilterTerm") or "",
            "order": ordering,
            "offset": 0,
        }
    entities = _query(
        state["filter"], state["term"], [tuple(o) for o in state["order"]], viewer=viewer
    )
    total = _stored_total(state["filter"], state["term"])
    if total is None:
        total = entities.count()
    offset = state["offset"]
    page = entities[offset : offset + limit]
    page_info: dict[str, str] = {}
    if offset + limit < total:
        page_info["nextCursor"] = _encode_cursor({**state, "offset": offset + limit})
    if offset > 0:
        page_info["prevCursor"] = _encode_cursor({**state, "offset": max(offset - limit, 0)})
    items = entities_json(page, viewer=viewer, fields=_split(params.get("fields") or []))
    return json_response(request, {"items": items, "totalItems": total, "pageInfo": page_info})


@router.get("/entities/by-query", summary="A page of entities, with a cursor to the next")
def entities_by_query(
    request: HttpRequest,
    filter: list[str] = Query([]),
    fields: list[str] = Query([]),
    limit: int | None = None,
    orderField: list[str] = Query([]),
    fullTextFilterTerm: str = "",
    cursor: str = "",
) -> HttpResponse:
    params = {"filter": filter, "fields": fields, "limit": limit, "orderField": orderField,
              "fullTextFilterTerm": fullTextFilterTerm, "cursor": cursor}  # fmt: skip
    return _by_query(request, params)


class ByQueryInput(Schema):
    filter: list[str] = []
    fields: list[str] = []
    limit: int | None = None
    orderField: list[str] = []
    fullTextFilterTerm: str = ""
    cursor: str = ""


@router.post("/entities/by-query", summary="The same query, with its parameters in the body")
def entities_by_query_post(request: HttpRequest, payload: ByQueryInput) -> HttpResponse:
    return _by_query(request, payload.dict())


# API facet keys that the catalog page's facets count too (`catalog.selectors.FACET_FIELDS`).
SUMMARIZED_FACETS = {
    "kind": "kind",
    "metadata.namespace": "namespace",
    "spec.type": "type",
    "spec.lifecycle": "lifecycle",
    "metadata.tags": "tag",
}


@router.get("/entity-facets", summary="Counts of each value of the fields asked for")
def entity_facets_api(
    request: HttpRequest,
    facet: list[str] = Query([]),
    filter: list[str] = Query([]),
) -> HttpResponse:
    principal_of(request).require_scope("read:catalog")
    # Filters on details match what the caller may see: only they need to know who it is.
    viewer = _viewer(request) if filter else Viewer()
    summarized = not filter and any(name.lower() in SUMMARIZED_FACETS for name in facet)
    whole = catalog_facets(limit=None) if summarized else None
    entities = _query(filter, viewer=viewer).order_by().values("pk")
    facets: dict[str, list[dict[str, Any]]] = {}
    for name in facet:
        if whole is not None and name.lower() in SUMMARIZED_FACETS:
            # The whole catalog's counts of these keys were made when it last changed.
            values = whole.groups[SUMMARIZED_FACETS[name.lower()]]
            facets[name] = [{"value": value.value, "count": value.count} for value in values]
            continue
        rows = SearchRow.objects.filter(key=name.lower())
        if filter:
            rows = rows.filter(entity__in=entities)
        if name.lower() not in PUBLIC_KEYS:
            # What restricted entities hold beyond the public keys is theirs: not counted.
            rows = rows.filter(entity__restricted=False)
        counted = (
            rows.exclude(value=None)
            .values("value")
            .annotate(count=Count("entity", distinct=True), original=Max("original_value"))
            .order_by("-count", "value")
        )
        facets[name] = [{"value": row["original"], "count": row["count"]} for row in counted]
    return json_response(request, {"facets": facets})


class RefreshInput(Schema):
    entityRef: str


@router.post("/refresh", summary="Read an entity's location again now")
def entity_refresh(request: HttpRequest, payload: RefreshInput) -> HttpResponse:
    principal_of(request).require_scope("write:catalog")
    try:
        key = parse_entity_ref(payload.entityRef).key
    except EntityRefError as error:
        raise HttpError(400, str(error)) from error
    entity = Entity.objects.select_related("location").filter(ref=key).first()
    if entity is None:
        raise HttpError(404, f"No entity {payload.entityRef} in the catalog")
    location_refresh(location=entity.location)
    return HttpResponse(status=200)
