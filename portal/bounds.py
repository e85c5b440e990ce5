"""How much a request may carry, and the 400 that names the limit when it carries more."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Annotated, Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.db import DataError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from ninja import Query
from ninja.errors import HttpError
from ninja.parser import Parser
from pydantic import Field

from portal.apikit import error_response

logger = logging.getLogger(__name__)

# The largest primary key PostgreSQL's bigint holds; a larger id names no row.
MAX_ID = 2**63 - 1
# Deeper than this no page of a catalog goes, and PostgreSQL still counts every row it skips.
MAX_OFFSET = 1_000_000
# Values in one list: `filter=`, `fields=`, `entityRefs`, facets, `$in`. Backstage sets none;
# past a thousand, one query would carry more parameters than PostgreSQL takes.
MAX_LIST = 1_000
# A query string's bytes. gunicorn refuses a request line past 4094 bytes before Atrium sees it.
MAX_QUERY_STRING = 8_192
# Nesting of a JSON body, as deep as a descriptor file may nest (`catalog.yamlfiles`).
MAX_JSON_DEPTH = 64
# Digits of a JSON integer: no count or id Atrium keeps needs more than a bigint's 19.
MAX_DIGITS = 19
# Characters of a full-text search term.
MAX_TERM = 1_000

Id = Annotated[int, Field(ge=1, le=MAX_ID, description=f"at most {MAX_ID}")]
Offset = Annotated[int, Field(ge=0, le=MAX_OFFSET, description=f"at most {MAX_OFFSET}")]
Values = Annotated[list[str], Field(max_length=MAX_LIST, description=f"at most {MAX_LIST}")]


def values_param() -> Any:
    """A repeated query parameter of at most MAX_LIST values. (django-ninja reads a query
    parameter as a list only when its annotation is a bare `list`, so `Values` cannot be it.)"""
    return Query([], max_length=MAX_LIST, description=f"at most {MAX_LIST} values")


def whole_number(text: str) -> int | None:
    """`text` as a whole number if it is one in ASCII digits, of at most MAX_DIGITS: `²` and
    `٣` are digits to str.isdigit(), and int() refuses or reads them."""
    if text.isascii() and text.isdigit() and len(text) <= MAX_DIGITS:
        return int(text)
    return None


def bounded(name: str, value: int, *, low: int, high: int) -> int:
    """A number read from a cursor or a body field that the schema cannot bound."""
    if isinstance(value, bool) or not low <= value <= high:
        raise HttpError(400, f"{name} must be between {low} and {high}")
    return value


def body_limit_message() -> str:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return f"the request body is larger than {limit:,} bytes, the most Atrium reads"


# --- JSON bodies -----------------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if value in {float("inf"), float("-inf")}:
        raise ValueError(f"the number {text[:40]} is too large")
    return value


def _integer(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_DIGITS:
        raise ValueError(f"the number {text[:20]}… has {digits:,} digits; at most {MAX_DIGITS}")
    return int(text)


def _checked(document: Any) -> None:
    """Nesting within MAX_JSON_DEPTH and no NUL, which PostgreSQL refuses in text."""
    stack = [(document, 1, "body")]
    while stack:
        value, depth, where = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise BodyRefused(f"{where} holds a NUL character (\\u0000)")
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise BodyRefused(f"the body nests deeper than {MAX_JSON_DEPTH} objects and arrays")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str) and "\x00" in key:
                raise BodyRefused(f"a key in {where} holds a NUL character (\\u0000)")
            stack.append((item, depth + 1, f"{where}.{key}"))


class BodyRefused(ValueError):
    """What is wrong with a body. django-ninja answers any parser error with a bare "Cannot
    parse request body"; the API's handler finds this as that error's cause and says it."""


class JsonBody(Parser):
    """The API's bodies: JSON, UTF-8, no NaN or Infinity, no NUL, nested at most 64 deep; any
    other is refused with what was wrong, never read half-way."""

    def parse_body(self, request: HttpRequest) -> Any:
        content_type = request.content_type or ""
        if content_type != "application/json" and not content_type.endswith("+json"):
            raise BodyRefused(
                f"send the body as Content-Type: application/json, not {content_type!r}"
            )
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise BodyRefused(
                f"the body is not UTF-8: byte {error.start} is an {error.reason}"
            ) from error
        try:
            document = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite,
                                  parse_int=_integer)  # fmt: skip
        except RecursionError as error:
            raise BodyRefused(
                f"the body nests deeper than {MAX_JSON_DEPTH} objects and arrays"
            ) from error
        except ValueError as error:  # JSONDecodeError too
            raise BodyRefused(f"the body is not JSON Atrium reads: {error}") from error
        _checked(document)
        return document


# --- Pages and the API alike -----------------------------------------------------------------


def refusal(request: HttpRequest, message: str, *, status: int = 400) -> HttpResponse:
    """The API's InputError under /api/, the error page elsewhere."""
    if request.path_info.startswith("/api/"):
        return error_response(request, status, "InputError", message)
    context = {"message": message, "status": status}
    return render(request, "400.html", context, status=status)


def _has_nul(values: Any) -> bool:
    return any("\x00" in key or any("\x00" in v for v in vs) for key, vs in values.lists())


class BoundsMiddleware:
    """NUL characters (PostgreSQL refuses them in text) and overlong query strings are refused
    here, before any view or query sees them; a DataError a view still meets is a 400."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query_bytes = len(request.META.get("QUERY_STRING", ""))
        if query_bytes > MAX_QUERY_STRING:
            return refusal(
                request,
                f"the query string is {query_bytes:,} bytes; at most {MAX_QUERY_STRING:,} are read",
            )
        if "\x00" in request.path_info:
            return refusal(request, "the path holds a NUL character (%00)")
        if _has_nul(request.GET):
            return refusal(request, "a query parameter holds a NUL character (%00)")
        # Form bodies only (request.POST is empty for others); the API checks JSON itself.
        if request.method == "POST" and _has_nul(request.POST):
            return refusal(request, "a form field holds a NUL character (%00)")
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DataError):
            return data_error(request, exception)
        return None


def data_error(request: HttpRequest, error: DataError) -> HttpResponse:
    # Every bound above is meant to stop input before the database; one that was missed is
    # still the request's fault, and logged so that it gets its own bound.
    logger.warning("a value reached the database out of its range: %s", error)
    first_line = str(error).splitlines()[0] if str(error) else "a value is out of range"
    return refusal(request, f"a value is out of the range the database holds: {first_line}")


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's handler400: what was wrong, in the API's shape under /api/."""
    if isinstance(exception, RequestDataTooBig):
        message = body_limit_message()
    elif isinstance(exception, TooManyFieldsSent):
        message = f"the form sent more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS:,} fields"
    elif isinstance(exception, SuspiciousOperation):
        message = "the request was refused as malformed"
    else:
        message = "the request was malformed"
    return refusal(request, message)
