"""The audit log as admins and automation read it: the page, its CSV, the API's cursor."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.test import Client, RequestFactory

from access.audit import Actor
from access.models import AuditEvent
from tests.helpers import DevTenant, signed_in, text
from tests.portal.auth_helpers import machine_token, sign_in

pytestmark = pytest.mark.django_db


def some_events(count: int) -> None:
    AuditEvent.objects.bulk_create(
        AuditEvent(actor=f"auth0|p{i % 3}", via="web", action="request.created",
                   target=f"payments.viewer on component:default/payments-api for auth0|p{i}",
                   detail={"role": "payments.viewer"}, ip="10.0.0.1")
        for i in range(count)
    )  # fmt: skip


def test_admins_filter_page_and_export_the_log() -> None:
    some_events(120)
    admin = signed_in("linus@example.com", "portal-admin")

    page = text(admin.get("/access/audit/", {"actor": "auth0|p1"}).content)
    export = admin.get("/access/audit/", {"actor": "auth0|p1", "format": "csv"})
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))  # type: ignore[attr-defined]

    assert "40 records" in page
    assert export["Content-Type"].startswith("text/csv")
    assert rows[0][:4] == ["at", "actor", "via", "action"] and len(rows) == 41
    assert {row[1] for row in rows[1:]} == {"auth0|p1"}
    assert (
        text(admin.get("/access/audit/", {"role": "payments.admin"}).content).count(
            "No audit record matches"
        )
        == 1
    )
    assert signed_in("ada@example.com", "engineer").get("/access/audit/").status_code == 403


def test_the_api_pages_the_log_by_cursor_for_read_audit(
    client: Client, devtenant: DevTenant
) -> None:
    some_events(250)
    auth = {"Authorization": f"Bearer {machine_token(devtenant)}"}

    seen: list[int] = []
    cursor = None
    while True:
        query = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/audit/events", query, headers=auth).json()
        seen += [item["id"] for item in body["items"]]
        cursor = body["pageInfo"]["nextCursor"]
        if cursor is None:
            break
    narrow = client.get(
        "/api/audit/events",
        HTTP_AUTHORIZATION=f"Bearer {machine_token(devtenant, scope='read:catalog')}",
    )
    forged = client.get("/api/audit/events", {"cursor": "bm9wZQ"}, headers=auth)

    assert len(seen) == 250 and seen == sorted(seen, reverse=True)
    assert narrow.status_code == 403
    assert forged.status_code == 400 and "is not a cursor" in forged.json()["error"]["message"]


def test_sign_in_and_out_are_recorded(client: Client, devtenant: DevTenant) -> None:
    sign_in(client, "ada@example.com")
    client.post("/auth/logout/")

    actions = list(AuditEvent.objects.order_by("id").values_list("action", "via"))
    assert actions == [("auth.signed_in", "web"), ("auth.signed_out", "web")]
    signed_in_event = AuditEvent.objects.order_by("id")[0]
    assert signed_in_event.detail == {"roles": ["checkout.viewer", "engineer"]}


def test_the_csv_export_never_hands_a_spreadsheet_a_formula() -> None:
    # A request's reason, a user agent, an entity name: text people chose, in the export.
    AuditEvent.objects.bulk_create(
        AuditEvent(actor="auth0|p1", via="web", action="request.created", target=target,
                   user_agent=agent)
        for target, agent in [
            ("=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1"),
            ("@SUM(A1)", "-2"),
            ("\tpayments", "\rcurl"),
            ("payments.viewer on component:default/a-b", "Mozilla/5.0 (a=b)"),
        ]
    )  # fmt: skip
    admin = signed_in("linus@example.com", "portal-admin")

    export = admin.get("/access/audit/", {"format": "csv"})
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))  # type: ignore[attr-defined]
    cells = {(row[4], row[7]) for row in rows[1:]}

    assert cells == {
        ('\'=HYPERLINK("http://evil.example","x")', "'+1+1"),
        ("'@SUM(A1)", "'-2"),
        ("'\tpayments", "'\rcurl"),
        ("payments.viewer on component:default/a-b", "Mozilla/5.0 (a=b)"),
    }


def test_behind_a_proxy_the_log_records_the_clients_address_not_the_proxys(
    settings: Any,
) -> None:
    """The address the trusted proxy appended, exactly (rate limits count an IPv6 /64)."""
    settings.TRUSTED_PROXY_COUNT = 1
    factory = RequestFactory()
    behind = factory.get(
        "/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 2001:db8:0:1::7"
    )
    direct = factory.get("/", REMOTE_ADDR="192.0.2.8", HTTP_X_FORWARDED_FOR="6.6.6.6")

    Actor.of_request(behind, "auth0|ada", AuditEvent.Via.WEB).record("probe.behind", "x")
    settings.TRUSTED_PROXY_COUNT = 0
    Actor.of_request(direct, "auth0|ada", AuditEvent.Via.WEB).record("probe.direct", "x")

    assert AuditEvent.objects.get(action="probe.behind").ip == "2001:db8:0:1::7"
    assert AuditEvent.objects.get(action="probe.direct").ip == "192.0.2.8"
