"""Out-of-range parameters, cursors, ids and NUL characters: a 400 that names the limit."""

from __future__ import annotations

import base64
import json

import pytest

from access.models import AccessRequest
from tests.helpers import signed_in

pytestmark = pytest.mark.django_db


def _cursor(state: object) -> str:
    return base64.b64encode(json.dumps(state).encode()).decode()


API_CASES = [
    ("/api/catalog/entities?offset=99999999999999999999",
     "query.offset: Input should be less than or equal to 1000000"),
    ("/api/catalog/entities?limit=10&offset=9223372036854775800",
     "query.offset: Input should be less than or equal to 1000000"),
    ("/api/catalog/entities?limit=501", "query.limit: Input should be less than or equal to 500"),
    (f"/api/catalog/entities?after={_cursor({'limit': 1, 'offset': 10**22})}",
     "offset must be between 0 and 1000000"),
    (f"/api/catalog/entities?after={_cursor({'limit': 10**6, 'offset': 0})}",
     "limit must be between 1 and 500"),
    ("/api/catalog/entities?after=%25%25not-base64", "Malformed after cursor, could not be parsed"),
    ("/api/catalog/entities/by-query?offset=99999999999999999999",
     "query.offset: Input should be less than or equal to 1000000"),
    (f"/api/catalog/entities/by-query?cursor={_cursor({'offset': 10**25})}",
     "offset must be between 0 and 1000000"),
    (f"/api/catalog/entities/by-query?cursor={_cursor({'offset': 0, 'term': 'x' * 1001})}",
     "the search term is 1,001 characters; at most 1,000"),
    (f"/api/catalog/entities/by-query?cursor={_cursor(['not', 'a', 'state'])}",
     "the cursor is not one this API gave out"),
    ("/api/catalog/entities/by-query?fullTextFilterTerm=" + "x" * 1001,
     "the search term is 1,001 characters; at most 1,000"),
    ("/api/catalog/entities?filter=kind%3D%00x", "a query parameter holds a NUL character (%00)"),
    ("/api/catalog/entities/by-name/component/default/a%00b",
     "the path holds a NUL character (%00)"),
    ("/api/access/requests?state=%00", "a query parameter holds a NUL character (%00)"),
    ("/api/catalog/entities?filter=" + "x" * 9000,
     "the query string is 9,007 bytes; at most 8,192 are read"),
    ("/api/access/requests/99999999999999999999999",
     "path.request_id: Input should be less than or equal to 9223372036854775807"),
    ("/api/access/requests/-5", "path.request_id: Input should be greater than or equal to 1"),
    ("/api/catalog/locations/99999999999999999999",
     "path.location_id: Input should be less than or equal to 9223372036854775807"),
    ("/api/audit/events?limit=1001", "query.limit: Input should be less than or equal to 1000"),
    ("/api/audit/events?cursor=" + base64.urlsafe_b64encode(b"before:" + b"9" * 30).decode(),
     "is not a cursor this API gave out"),
]  # fmt: skip


@pytest.mark.parametrize(("url", "message"), API_CASES, ids=[url[:70] for url, _ in API_CASES])
def test_an_out_of_range_parameter_is_an_input_error_naming_the_limit(
    demo_catalog: None,
    url: str,
    message: str,
) -> None:
    client = signed_in("linus@example.com", "portal-admin")

    response = client.get(url)

    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]["name"] == "InputError"
    assert message in response.json()["error"]["message"]


def test_a_request_for_more_than_a_year_says_so(demo_catalog: None) -> None:  # noqa: F811
    client = signed_in("ada@example.com")
    ask = {"entityRef": "component:default/payments-api", "role": "payments.viewer",
           "reason": "On call"}  # fmt: skip

    def message(duration: str) -> str:
        response = client.post("/api/access/requests", {**ask, "duration": duration},
                               content_type="application/json")  # fmt: skip
        assert response.status_code == 400
        return str(response.json()["error"]["message"])

    assert message("P99999999999D") == (
        "duration: 'P99999999999D' is longer than a year (P365D), the longest grant Atrium makes"
    )
    assert message("P" + "9" * 5000 + "D") == (
        f"duration: 'P{'9' * 39}…' is 5,002 characters long; a duration such as P30D has at most 64"
    )
    assert not AccessRequest.objects.exists()


PAGE_CASES = [
    "/catalog/?q=%00",
    "/catalog/?owner=a%00b",
    "/catalog/default/component/a%00b/",
    "/access/requests/new/?entity=%00",
    "/access/audit/?actor=%00",
    "/access/roles/a%00/",
    "/access/approvals/?role=%00",
]


@pytest.mark.parametrize("url", PAGE_CASES)
def test_a_nul_character_on_a_page_is_a_clear_400(url: str) -> None:
    response = signed_in("linus@example.com", "portal-admin").get(url)

    assert response.status_code == 400
    assert "holds a NUL character (%00)" in response.content.decode()


@pytest.mark.parametrize(
    "url",
    ["/catalog/?page=abc", "/catalog/?page=" + "9" * 30, "/catalog/?sort=nonsense",
     "/access/audit/?page=abc", "/access/audit/?page=" + "9" * 30, "/access/audit/?sort=nonsense",
     "/access/audit/?since=99999-01-01", "/access/roles/?sort=nonsense"],
)  # fmt: skip
def test_a_nonsense_page_or_sort_still_shows_the_page(demo_catalog: None, url: str) -> None:  # noqa: F811
    """django-tables2 shows the last page for one past the end and ignores an unknown sort."""
    assert signed_in("linus@example.com", "portal-admin").get(url).status_code == 200


def test_a_long_search_on_the_page_is_refused_with_the_limit() -> None:
    response = signed_in("ada@example.com").get("/catalog/?q=" + "x" * 9000)

    assert response.status_code == 400
    assert "the query string is 9,002 bytes; at most 8,192 are read" in response.content.decode()


@pytest.mark.parametrize(
    "path",
    ["/access/approvals/99999999999999999999999/", "/access/approvals/424242/",
     "/access/requests/99999999999999999999999/cancel/", "/access/requests/424242/cancel/",
     "/access/requests/424242/retry/", "/access/requests/424242/revoke/"],
)  # fmt: skip
def test_a_decision_on_a_request_that_does_not_exist_is_404_through_htmx_too(path: str) -> None:
    client = signed_in("linus@example.com", "portal-admin")

    plain = client.post(path, {"outcome": "approved"})
    htmx = client.post(path, {"outcome": "approved"}, headers={"HX-Request": "true"})

    assert (plain.status_code, htmx.status_code) == (404, 404)
