"""The home page as a signed-in person's dashboard: what waits for them, what they asked, what
ends soon, and the way into the catalog."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from access.models import AccessRequest
from portal.models import User
from tests.factories import AccessRequestFactory, GrantFactory, UserFactory
from tests.helpers import signed_in, text

pytestmark = pytest.mark.django_db


def region(page: str, label: str) -> str:
    found = re.search(rf'<section [^>]*aria-label="{label}">(.*?)</section>', page, re.S)
    assert found, f"no {label} on the page"
    return str(found[1])


def test_someone_signed_out_reads_what_atrium_is(client: Client) -> None:
    page = client.get("/").content.decode()

    assert "The developer portal for companies that sign in with Auth0" in text(page.encode())
    assert "Requests to decide" not in page and 'role="search"' not in page


def test_a_decider_sees_how_many_wait_and_the_oldest_first(payments: None) -> None:
    grace = signed_in("grace@example.com")
    asked = [
        AccessRequestFactory.create(
            requester=UserFactory.create(email=f"asker-{n}@example.com", name=f"Asker {n}"),
            created_at=timezone.now() - timedelta(hours=10 - n),
        )
        for n in range(7)
    ]

    page = grace.get("/").content.decode()

    waiting = region(page, "Requests to decide")
    assert "Waiting for you to decide (7)" in text(waiting.encode())
    shown = re.findall(r'href="/access/requests/(\d+)/"', waiting)
    assert shown == [str(request.pk) for request in asked[:5]]
    assert "Asker 0 asks for payments.viewer on Payments API" in text(waiting.encode())
    assert 'href="/access/approvals/">All 7 on Approvals' in waiting
    # The Content-Security-Policy holds: no style attribute, no inline script.
    assert " style=" not in page


def test_my_open_requests_with_their_state_and_grants_ending_soon_to_extend(
    payments: None,
) -> None:
    ada = signed_in("ada@example.com")
    person = User.objects.get(email="ada@example.com")
    pending = AccessRequestFactory.create(requester=person, role_name="payments.admin")
    AccessRequestFactory.create(
        requester=person, role_name="checkout.viewer", state=AccessRequest.State.DENIED
    )
    soon = GrantFactory.create(
        requester=person, role_name="payments.viewer",
        expires_at=timezone.now() + timedelta(days=3, hours=1),
    )  # fmt: skip
    GrantFactory.create(
        requester=person, role_name="ledger.viewer", entity_ref="component:default/ledger",
        expires_at=timezone.now() + timedelta(days=20),
    )  # fmt: skip

    page = ada.get("/").content.decode()

    mine = region(page, "My open requests")
    assert '<span class="badge badge-warn">waiting for a decision</span>' in mine
    assert f'href="/access/requests/{pending.pk}/"' in mine
    assert "payments.admin for Payments API" in text(mine.encode())
    assert "checkout.viewer" not in mine  # denied: not open
    ending = region(page, "Grants ending soon")
    assert "payments.viewer for Payments API ends in 3 days Extend" in text(ending.encode())
    assert (
        "/access/requests/new/?entity=component%3Adefault%2Fpayments-api&amp;role=payments.viewer"
        f"&amp;extend={soon.pk}"
    ) in ending
    assert "ledger.viewer" not in ending  # ends in 20 days


def test_the_search_box_goes_to_the_catalog(payments: None) -> None:
    page = signed_in("ada@example.com").get("/").content.decode()

    form = re.search(r'<form class="dashboard-search"[^>]*>.*?</form>', page, re.S)
    assert form
    assert 'action="/catalog/"' in form[0] and 'method="get"' in form[0]
    assert '<input type="search" id="dashboard-q" name="q"' in form[0]
    assert '<label class="visually-hidden" for="dashboard-q">Search the catalog</label>' in form[0]


def test_the_dashboard_reads_as_many_queries_for_many_requests_as_for_few(
    payments: None,
) -> None:
    grace = signed_in("grace@example.com")
    person = User.objects.get(email="grace@example.com")

    def queries_with(count: int) -> int:
        for n in range(count):
            asker = UserFactory.create(email=f"q{count}-{n}@example.com")
            AccessRequestFactory.create(requester=asker)
            AccessRequestFactory.create(
                requester=person, role_name=f"role-{count}-{n}", entity_ref="component:default/x"
            )
        grace.get("/")  # the session's first request reads what later ones keep
        with CaptureQueriesContext(connection) as captured:
            grace.get("/")
        return len(captured.captured_queries)

    assert queries_with(2) == queries_with(30)
