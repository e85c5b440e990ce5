"""The catalog API's cursors: what encode_cursor gives out reads back, and nothing else passes."""

from __future__ import annotations

import base64
import json

import pytest

from catalog.cursors import CursorError, decode_after, decode_query_cursor, encode_cursor


def b64(value: object) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def test_a_cursor_given_out_reads_back_as_the_state_it_carries() -> None:
    state = {"filter": ["kind=component"], "term": "pay", "order": [["metadata.name", "desc"]],
             "offset": 40, "start": 20, "textFields": ["metadata.name"]}  # fmt: skip
    assert decode_query_cursor(encode_cursor(state)) == state


def test_a_cursor_is_read_whatever_base64_alphabet_or_query_string_mangled_it() -> None:
    # This state's base64 holds "+" and "/" (URL-safe: "-" and "_"), and "=" padding; a query
    # string turns "+" into a space.
    state = {"offset": 0, "term": "???>"}
    standard = encode_cursor(state)
    assert "+" in standard and "/" in standard and standard.endswith("=")
    for variant in (standard.replace("+", " "), standard.translate(str.maketrans("+/", "-_")),
                    standard.rstrip("=")):  # fmt: skip
        assert decode_query_cursor(variant) == state


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        base64.b64encode(b"{not json").decode(),
        b64([1, 2]),
        b64({"term": "x"}),  # no offset
        b64({"offset": -1}),
        b64({"offset": True}),
        b64({"offset": 0, "start": "0"}),
        b64({"offset": 0, "filter": "kind=api"}),
        b64({"offset": 0, "filter": [1]}),
        b64({"offset": 0, "term": 5}),
        b64({"offset": 0, "textFields": [None]}),
        b64({"offset": 0, "order": [["metadata.name"]]}),
        b64({"offset": 0, "order": [["metadata.name", 1]]}),
        b64({"offset": 0, "order": "asc"}),
        base64.b64encode(b"[" * 100_000 + b"]" * 100_000).decode(),
    ],
    ids=repr,
)
def test_a_query_cursor_not_shaped_as_ours_is_refused_with_one_message(cursor: str) -> None:
    with pytest.raises(CursorError, match="^the cursor is not one this API gave out$"):
        decode_query_cursor(cursor)


def test_an_after_cursor_gives_its_limit_and_offset() -> None:
    assert decode_after(b64({"limit": 5, "offset": 10})) == {"limit": 5, "offset": 10}
    assert decode_after(b64({})) == {}


@pytest.mark.parametrize(
    ("after", "message"),
    [
        ("%%%", "Malformed after cursor, could not be parsed"),
        (b64("a string"), "Malformed after cursor, could not be parsed"),
        (b64({"limit": "5"}), "Malformed after cursor, limit was not a number"),
        (b64({"offset": False}), "Malformed after cursor, offset was not a number"),
    ],
)
def test_an_after_cursor_that_cannot_be_read_says_what_is_wrong(after: str, message: str) -> None:
    with pytest.raises(CursorError, match=f"^{message}$"):
        decode_after(after)
