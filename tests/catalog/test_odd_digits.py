"""Digits str.isdigit() accepts and int() refuses, wherever a number is read from a request."""

from __future__ import annotations

import pytest

from portal.bounds import whole_number
from tests.helpers import signed_in

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("text", ["²", "٣", "1²", "", "-1", "1" * 20, " 1"])
def test_only_ascii_whole_numbers_are_numbers(text: str) -> None:
    assert whole_number(text) is None


def test_a_whole_number_is_read() -> None:
    assert whole_number("42") == 42


def test_an_extend_link_with_odd_digits_shows_the_plain_form(demo_catalog: None) -> None:
    client = signed_in("ada@example.com")

    for extend in ["²", "9" * 30]:
        response = client.get(
            f"/access/requests/new/?entity=component:default/payments-api"
            f"&role=payments.viewer&extend={extend}"
        )
        assert response.status_code == 200


def test_a_bulk_decision_ignores_selections_that_are_no_ids(demo_catalog: None) -> None:
    response = signed_in("grace@example.com").post(
        "/access/approvals/bulk/", {"outcome": "approved", "selected": ["²", "9" * 30]}
    )

    assert response.status_code == 302
