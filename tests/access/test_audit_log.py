"""The audit log as admins and automation read it: the page, its CSV, the API's cursor."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.test import Client, RequestFactory

from access.audit import Actor
from access.models import AccessRequest, AuditEvent
from portal.models import User
from tests.factories import UserFactory
from tests.helpers import DevTenant, ask, person_of_tenant, signed_in, text
from tests.portal.auth_helpers import client_token, machine_token, person_token, sign_in

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


# --- people by name -----------------------------------------------------------------------------


def events_of(client: Client, token: str, **query: str) -> list[dict[str, Any]]:
    body = client.get("/api/audit/events", query, headers={"Authorization": f"Bearer {token}"})
    assert body.status_code == 200, body.content
    items: list[dict[str, Any]] = body.json()["items"]
    return items


def test_the_log_keeps_who_acted_by_name_as_they_were_then(
    client: Client, devtenant: DevTenant, payments: None
) -> None:
    ada, as_ada = person_of_tenant(devtenant, "ada@example.com")
    grace, _ = person_of_tenant(devtenant, "grace@example.com")
    User.objects.filter(pk=ada.pk).update(name="Ada Lovelace")
    User.objects.filter(pk=grace.pk).update(name="Grace Hopper")
    as_ada.force_login(User.objects.get(pk=ada.pk))
    ask(as_ada)  # on the web page
    request = AccessRequest.objects.get()
    graces_token = person_token(devtenant, "grace@example.com", "openid approve:access")
    approved = client.post(
        f"/api/access/requests/{request.pk}/approve", {"comment": "ok"},
        content_type="application/json", headers={"Authorization": f"Bearer {graces_token}"},
    )  # fmt: skip
    assert approved.status_code == 200, approved.content
    machine = client_token(devtenant, ["admin:access"])
    changed = client.put(
        "/api/access/roles/payments.admin", {"owners": ["group:default/team-platform"]},
        content_type="application/json", headers={"Authorization": f"Bearer {machine}"},
    )  # fmt: skip
    assert changed.status_code == 200, changed.content
    # They change their names afterwards; what they did stays under the names they had.
    User.objects.filter(pk=ada.pk).update(name="Ada King")
    User.objects.filter(pk=grace.pk).update(name="Grace Brewster Murray Hopper")

    items = events_of(client, machine_token(devtenant))

    said = {(e["action"], e["via"]): (e["actor"], e["actorName"], e["actorEmail"]) for e in items}
    assert said[("request.created", "web")] == (ada.sub, "Ada Lovelace", "ada@example.com")
    assert said[("request.approved", "api")] == (grace.sub, "Grace Hopper", "grace@example.com")
    assert said[("role.registry_changed", "api")] == ("client:test-client", "", "")


def some_people_acting() -> None:
    Actor("auth0|ada", name="Ada Lovelace", email="ada@example.com").record("request.created", "a")
    Actor("auth0|grace", name="Grace Hopper", email="grace@example.com").record(
        "request.approved", "g"
    )
    Actor("client:automation", via=AuditEvent.Via.API).record("role.registry_changed", "m")
    # From before names were kept: found by the name the person has now.
    UserFactory.create(sub="auth0|alan", email="alan@example.com", name="Alan Turing")
    AuditEvent.objects.create(
        actor="auth0|alan", via="web", action="request.cancelled",
        target="payments.viewer on component:default/payments-api for auth0|alan",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("actor", "found"),
    [
        ("love", {"auth0|ada"}),  # part of a name, in any case
        ("GRACE@EXAMPLE.COM", {"auth0|grace"}),  # an e-mail
        ("auth0|ada", {"auth0|ada"}),  # an id
        ("client:auto", {"client:automation"}),  # part of an id
        ("turing", {"auth0|alan"}),  # the name now, of a record that kept none
        ("nobody", set()),
    ],
)
def test_the_actor_filter_finds_people_by_name_e_mail_or_id(
    client: Client, devtenant: DevTenant, actor: str, found: set[str]
) -> None:
    some_people_acting()
    admin = signed_in("linus@example.com", "portal-admin")

    through_api = {e["actor"] for e in events_of(client, machine_token(devtenant), actor=actor)}
    export = admin.get("/access/audit/", {"actor": actor, "format": "csv"})
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))  # type: ignore[attr-defined]

    assert through_api == found
    assert {row[1] for row in rows[1:]} == found


def test_the_audit_page_names_people_and_says_what_they_did() -> None:
    some_people_acting()
    admin = signed_in("linus@example.com", "portal-admin")

    page = text(admin.get("/access/audit/").content)
    by_grace = text(admin.get("/access/audit/", {"actor": "hopper"}).content)

    assert "Ada Lovelace Asked for access" in page
    assert "Grace Hopper Approved" in page
    # An old record: the person's name now, for who acted and whom it is about.
    withdrawn = "Alan Turing Request withdrawn payments.viewer on component:default/payments-api"
    assert f"{withdrawn} for Alan Turing" in page
    assert "API client automation Owners or rules changed" in page
    assert "auth0|" not in page
    assert "Grace Hopper" in by_grace and "Ada Lovelace" not in by_grace
    # The raw names stay the filter's values.
    cancelled = text(admin.get("/access/audit/", {"action": "request.cancelled"}).content)
    assert "Alan Turing Request withdrawn" in cancelled and "Ada Lovelace" not in cancelled


def test_the_audit_page_names_a_page_of_people_in_a_few_queries(
    django_assert_max_num_queries: Any,
) -> None:
    # A page of people from before names were kept, each named by the portal's User of that sub.
    for i in range(60):
        UserFactory.create(sub=f"auth0|p{i}", email=f"p{i}@example.com", name=f"Person {i}")
    some_events(60)
    AuditEvent.objects.bulk_create(
        AuditEvent(actor=f"auth0|p{i}", via="web", action="grant.activated") for i in range(60)
    )
    admin = signed_in("linus@example.com", "portal-admin")
    admin.get("/access/audit/")  # the session and the viewer's roles, read once

    # The page's own eight, then one for the people's names and one for their catalog pages.
    with django_assert_max_num_queries(10):
        page = text(admin.get("/access/audit/").content)

    assert page.count("Person ") == 50 and "Person 59 Access granted" in page
