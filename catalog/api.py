"""The catalog API, in the shapes of Backstage's catalog REST API so its clients work."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema
from ninja.errors import HttpError

from access.policy import may_register_locations
from catalog.descriptors import DescriptorError, validate_entity
from catalog.models import Location
from catalog.services import (
    location_delete,
    location_refresh,
    location_register,
    normalize_target,
)
from portal.api import json_response, principal_of
from portal.models import User

router = Router(tags=["catalog"])


class LocationInput(Schema):
    type: str
    target: str


class ValidateInput(Schema):
    entity: Any
    location: str = ""


def location_json(location: Location) -> dict[str, str]:
    return {"id": str(location.pk), "type": "url", "target": location.target}


def _person(request: HttpRequest) -> User | None:
    principal = principal_of(request)
    if principal.is_machine:
        return None
    return User.objects.filter(sub=principal.sub).first()


def _require_registrar(request: HttpRequest) -> None:
    principal = principal_of(request)
    principal.require_scope("write:catalog")
    if not may_register_locations(principal, _person(request)):
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
    dryRun: bool = False,  # noqa: N803
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
    with transaction.atomic():
        location = location_register(target=target)
        report = location_refresh(location=location)
        body: dict[str, Any] = {
            "location": location_json(location),
            "entities": [entity.descriptor for entity in location.entities.all()],
            "problems": [str(problem) for problem in report.problems],
        }
        if dryRun:
            body["exists"] = exists
            transaction.set_rollback(True)
    return json_response(request, body, status=201)


@router.delete("/locations/{location_id}", summary="Forget a location and its entities")
def locations_remove(request: HttpRequest, location_id: int) -> HttpResponse:
    _require_registrar(request)
    location = Location.objects.filter(pk=location_id).first()
    if location is None:
        raise HttpError(404, f"Found no location with ID {location_id}")
    location_delete(location=location)
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
