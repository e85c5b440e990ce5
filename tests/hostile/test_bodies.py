"""Hostile bodies to the API's writes: each a 400 naming what was wrong, and nothing written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from access.models import AccessRequest, AuditEvent, Role
from catalog.models import Entity
from tests.helpers import own_role, signed_in

pytestmark = pytest.mark.django_db

ASK = {"entityRef": "component:default/payments-api", "role": "payments.viewer",
       "reason": "On call", "duration": "P7D"}  # fmt: skip
SIX_MB = 6 * 1024 * 1024


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


# (what, raw body, content type, the message's words)
CORPUS = [
    ("six megabytes", b'{"reason": "' + b"x" * SIX_MB + b'"}', "application/json",
     "the request body is larger than 2,621,440 bytes, the most Atrium reads"),
    ("nested past Python's recursion", b"[" * 100_000 + b"]" * 100_000, "application/json",
     "the body nests deeper than 64 objects and arrays"),
    ("nested past 64", b'{"reason": ' + b"[" * 65 + b"]" * 65 + b"}", "application/json",
     "the body nests deeper than 64 objects and arrays"),
    ("text/plain", _json(ASK), "text/plain",
     "send the body as Content-Type: application/json, not 'text/plain'"),
    ("a form", b"entityRef=x&role=y", "application/x-www-form-urlencoded",
     "send the body as Content-Type: application/json, not 'application/x-www-form-urlencoded'"),
    ("invalid UTF-8", b'{"reason": "\xff\xfe"}', "application/json",
     "the body is not UTF-8: byte 12 is an invalid start byte"),
    ("a NUL in a value", _json({**ASK, "reason": "a\x00b"}), "application/json",
     "body.reason holds a NUL character (\\u0000)"),
    ("a NUL in a key", _json({**ASK, "a\x00": 1}), "application/json",
     "a key in body holds a NUL character (\\u0000)"),
    ("a number past a float", b'{"reason": 1e999}', "application/json",
     "the body is not JSON Atrium reads: the number 1e999 is too large"),
    ("a 5,000-digit number", b'{"reason": ' + b"9" * 5000 + b"}", "application/json",
     "the body is not JSON Atrium reads: the number 99999999999999999999… has 5,000 digits; "
     "at most 19"),
    ("NaN", b'{"reason": NaN}', "application/json",
     "the body is not JSON Atrium reads: NaN is not a JSON number"),
    ("not JSON", b'{"reason": ', "application/json",
     "the body is not JSON Atrium reads: Expecting value: line 1 column 12 (char 11)"),
]  # fmt: skip


def _written() -> tuple[int, int, list[tuple[str, ...]]]:
    owners = [tuple(role.owners) for role in Role.objects.order_by("name")]
    return AccessRequest.objects.count(), AuditEvent.objects.count(), owners


@pytest.fixture
def admin() -> Client:
    own_role("payments.viewer", "team-payments")
    return signed_in("linus@example.com", "portal-admin")


WRITES = [
    ("post", "/api/access/requests"),
    ("put", "/api/access/roles/payments.viewer"),
    ("post", "/api/access/requests/1/approve"),
    ("post", "/api/catalog/refresh"),
    ("post", "/api/catalog/validate-entity"),
    ("post", "/api/catalog/entities/by-refs"),
]


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize(("what", "body", "content_type", "message"), CORPUS,
                         ids=[case[0] for case in CORPUS])  # fmt: skip
def test_a_hostile_body_is_refused_with_what_was_wrong_and_writes_nothing(
    admin: Client,
    demo_catalog: None,
    method: str,
    path: str,
    what: str,
    body: bytes,
    content_type: str,
    message: str,
) -> None:
    before = _written()

    response = getattr(admin, method)(path, body, content_type=content_type)

    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert error["name"] == "InputError"
    assert message in error["message"]
    assert _written() == before


def test_huge_arrays_are_refused_naming_the_most_taken(admin: Client, demo_catalog: None) -> None:  # noqa: F811
    refs = [f"component:default/c{number}" for number in range(1001)]

    by_refs = admin.post("/api/catalog/entities/by-refs", {"entityRefs": refs},
                         content_type="application/json")  # fmt: skip
    owners = admin.put("/api/access/roles/payments.viewer",
                       {"owners": [f"group:default/g{n}" for n in range(1001)]},
                       content_type="application/json")  # fmt: skip
    predicate = admin.post(
        "/api/catalog/entities/by-query",
        {"query": {"metadata.name": {"$in": [f"n{n}" for n in range(1001)]}}},
        content_type="application/json",
    )
    filters = admin.post("/api/catalog/entities/by-query",
                         {"filter": [",".join(f"kind=k{n}" for n in range(1001))]},
                         content_type="application/json")  # fmt: skip

    assert [r.status_code for r in (by_refs, owners, predicate, filters)] == [400] * 4
    assert by_refs.json()["error"]["message"] == (
        "body.payload.entityRefs: List should have at most 1000 items after validation, not 1001"
    )
    assert owners.json()["error"]["message"] == "owners: 1,001 groups; at most 1,000"
    assert predicate.json()["error"]["message"] == (
        'Invalid query: $in for "metadata.name" has 1,001 values; at most 1,000'
    )
    assert filters.json()["error"]["message"] == "Invalid filter: 1,001 conditions; at most 1,000"
    assert Role.objects.get(name="payments.viewer").owners == ["group:default/team-payments"]
    # A thousand refs are still answered, each in its place.
    items = admin.post("/api/catalog/entities/by-refs", {"entityRefs": refs[:1000]},
                       content_type="application/json").json()["items"]  # fmt: skip
    assert len(items) == 1000 and not any(items)
    assert Entity.objects.filter(name="payments-api").exists()


def test_a_six_megabyte_form_to_a_page_is_a_clear_400(admin: Client) -> None:
    response = admin.post("/access/approvals/bulk/", b"comment=" + b"x" * SIX_MB,
                          content_type="application/x-www-form-urlencoded")  # fmt: skip

    assert response.status_code == 400
    assert "the request body is larger than 2,621,440 bytes" in response.content.decode()
