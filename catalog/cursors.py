"""The catalog API's page cursors, base64 of JSON as Backstage's, and the check that one is ours."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


class CursorError(ValueError):
    """A cursor that cannot be read, or is not one the API gave out; the message says which."""


def encode_cursor(state: dict[str, Any]) -> str:
    # Standard base64, as Backstage's: its client reads a cursor to choose GET or POST.
    return base64.b64encode(json.dumps(state).encode()).decode()


def _decode_json(raw: str) -> Any:
    """A cursor as Backstage makes them (base64 of JSON); the URL-safe alphabet is read too,
    and a `+` that a query string turned into a space."""
    text = raw.replace(" ", "+").replace("-", "+").replace("_", "/")
    return json.loads(base64.b64decode(text + "=" * (-len(text) % 4), validate=True))


def decode_after(after: str) -> dict[str, Any]:
    """Backstage's `after` of `GET /entities`: a mapping whose `limit` and `offset`, where
    present, are numbers."""
    try:
        state = _decode_json(after)
        if not isinstance(state, dict):
            raise ValueError(after)
    except (ValueError, RecursionError, binascii.Error) as error:
        raise CursorError("Malformed after cursor, could not be parsed") from error
    for key in ("limit", "offset"):
        if key in state and (not isinstance(state[key], int) or isinstance(state[key], bool)):
            raise CursorError(f"Malformed after cursor, {key} was not a number")
    return state


def decode_query_cursor(cursor: str) -> dict[str, Any]:
    """The state a `by-query` cursor carries, if it has the shape `encode_cursor` gave it.

    The bounds of its offset and term are the caller's to check, as for a first request.
    """
    try:
        state = _decode_json(cursor)
        if not isinstance(state, dict) or not cursor_is_sound(state):
            raise ValueError(cursor)
    except (ValueError, RecursionError, binascii.Error) as error:
        raise CursorError("the cursor is not one this API gave out") from error
    return state


def cursor_is_sound(state: dict[str, Any]) -> bool:
    """Whether a decoded state has the types a by-query cursor's fields have."""

    def strings(value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)

    def number(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    return (
        number(state.get("offset"))
        and number(state.get("start", 0))
        and strings(state.get("filter", []))
        and isinstance(state.get("term", ""), str)
        and strings(state.get("textFields", []))
        and isinstance(state.get("order", []), list)
        and all(
            isinstance(pair, list) and len(pair) == 2 and strings(pair)
            for pair in state.get("order", [])
        )
    )
