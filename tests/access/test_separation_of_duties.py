"""Separation of duties: roles nobody may hold at once. Asking, approving, auto-approval and
break-glass are refused when they would create a conflict; the Roles page flags held ones."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

from access.audit import Actor
from access.models import AccessRequest, Role
from access.services import NotAllowed, RequestRefused, access_request_create
from catalog.models import Entity
from portal.models import User
from tests.factories import RoleFactory, RoleMembershipFactory, UserFactory
from tests.helpers import (
    AUDIT,
    CHECKOUT,
    LEDGER,
    DevTenant,
    catalog_add,
    own_role,
    signed_in,
    text,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def duties(payments: None, tmp_path: Path) -> None:
    """payments.admin and payments.auditor: nobody may hold both (set on one, held on both)."""
    catalog_add(tmp_path / "checkout.yaml", CHECKOUT)
    own_role("payments.auditor", "team-payments")
    own_role("payments.admin", "team-payments", conflictsWith=["payments.auditor"])


def ada() -> tuple[User, Client]:
    person = UserFactory.create(email="ada@example.com", name="Ada Lovelace")
    client = Client()
    client.force_login(person)
    return person, client


def grace() -> Client:
    client = Client()
    client.force_login(UserFactory.create(email="grace@example.com"))
    return client


def ask_for(client: Client, entity: str, role: str) -> str:
    form = {"entity": entity, "role": role, "reason": "Month-end close", "duration": "P7D"}
    return text(client.post("/access/requests/new/", form, follow=True).content)


def test_the_conflict_holds_both_ways_in_the_registry(duties: None) -> None:
    auditor = Role.objects.get(name="payments.auditor")
    assert auditor.conflicts_with == ["payments.admin"]

    own_role("payments.admin", "team-payments")  # the conflict dropped on one side

    auditor.refresh_from_db()
    assert auditor.conflicts_with == []


def test_a_request_that_would_create_a_conflict_is_refused_with_the_reason(duties: None) -> None:
    person, as_ada = ada()
    RoleMembershipFactory.create(user=person, role=Role.objects.get(name="payments.auditor"))

    page = ask_for(as_ada, LEDGER, "payments.admin")
    api = as_ada.post("/api/access/requests", {"entityRef": LEDGER, "role": "payments.admin",
                      "reason": "x"}, content_type="application/json")  # fmt: skip

    said = (
        "You hold payments.auditor (or will, once granted): nobody may hold it together with "
        "payments.admin (separation of duties)."
    )
    assert said in page
    assert (api.status_code, api.json()["error"]["message"]) == (400, said)
    assert not AccessRequest.objects.exists()


def test_a_request_waiting_for_the_other_role_counts_too(duties: None) -> None:
    _, as_ada = ada()
    ask_for(as_ada, AUDIT, "payments.auditor")
    waiting = AccessRequest.objects.get()

    page = ask_for(as_ada, LEDGER, "payments.admin")

    assert f"You asked for payments.auditor (request {waiting.pk})" in page
    assert "Withdraw that request first." in page
    assert AccessRequest.objects.count() == 1


def test_an_approval_that_would_create_a_conflict_is_refused(
    duties: None, django_capture_on_commit_callbacks: object
) -> None:
    person, as_ada = ada()
    as_grace = grace()
    ask_for(as_ada, LEDGER, "payments.admin")
    request = AccessRequest.objects.get()
    # Since asking, Ada was given payments.auditor (in Auth0 directly, seen by the sync).
    RoleMembershipFactory.create(user=person, role=Role.objects.get(name="payments.auditor"))

    page = as_grace.post(f"/access/approvals/{request.pk}/", {"outcome": "approved"}, follow=True)
    api = as_grace.post(f"/api/access/requests/{request.pk}/approve", {},
                        content_type="application/json")  # fmt: skip
    denied = as_grace.post(f"/access/approvals/{request.pk}/", {"outcome": "denied"}, follow=True)

    assert (
        "This approval is refused: Ada Lovelace holds payments.auditor (or will, once granted)"
        in text(page.content)
    )
    assert api.status_code == 403
    assert "nobody may hold it together with payments.admin" in api.json()["error"]["message"]
    # Denying creates no conflict: it goes through.
    assert "Request" in text(denied.content)
    request.refresh_from_db()
    assert request.state == "denied"
    assert list(request.decisions.values_list("outcome", flat=True)) == ["denied"]


def test_the_roles_page_flags_people_who_hold_both(duties: None) -> None:
    person, _ = ada()
    for name in ("payments.admin", "payments.auditor"):
        RoleMembershipFactory.create(user=person, role=Role.objects.get(name=name))
    linus = signed_in("linus@example.com", "portal-admin")

    roles = text(linus.get("/access/roles/").content)
    role = text(linus.get("/access/roles/payments.auditor/").content)

    assert "Conflicting roles held together" in roles
    assert "Ada Lovelace holds payments.admin and payments.auditor" in roles
    assert "Ada Lovelace holds payments.admin and payments.auditor" in role
    assert "Nobody may hold it together with payments.admin." in role


def test_a_conflict_with_a_role_the_mirror_lacks_is_refused(duties: None) -> None:
    linus = signed_in("linus@example.com", "portal-admin")

    page = linus.post("/access/roles/payments.admin/", {
        "owners": "team-payments", "requestable": "on", "min_approvals": "1",
        "conflicts_with": "payments.nope",
    })  # fmt: skip

    assert "no role payments.nope in the portal&#x27;s mirror" in page.content.decode()
    assert Role.objects.get(name="payments.admin").conflicts_with == ["payments.auditor"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_two_requests_for_conflicting_roles_at_once_leave_one(tmp_path: Path) -> None:
    catalog_add(tmp_path / "checkout.yaml", CHECKOUT)
    RoleFactory.create(name="payments.auditor")
    own_role("payments.auditor", "group:default/team-checkout")
    own_role("payments.admin", "group:default/team-checkout", conflictsWith=["payments.auditor"])
    person = UserFactory.create(email="ada@example.com")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def ask(entity_ref: str, role: str) -> None:
        barrier.wait()
        try:
            access_request_create(
                requester=person, entity=Entity.objects.get(ref=entity_ref), role=role,
                reason="x", duration=None, actor=Actor(person.sub),
            )  # fmt: skip
            outcomes.append("asked")
        except (RequestRefused, NotAllowed) as refused:
            outcomes.append(str(refused))
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=pair)
               for pair in ((LEDGER, "payments.admin"), (AUDIT, "payments.auditor"))]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    asked, refused = sorted(outcomes, key=lambda outcome: outcome != "asked")
    assert asked == "asked"
    assert "Withdraw that request first." in refused
    assert AccessRequest.objects.count() == 1


def test_the_worker_refuses_a_grant_that_would_create_a_conflict(duties: None) -> None:
    from access.services import grant_provision

    person, as_ada = ada()
    ask_for(as_ada, LEDGER, "payments.admin")
    request = AccessRequest.objects.get()
    grace().post(f"/access/approvals/{request.pk}/", {"outcome": "approved"})
    # Between the approval and the worker, Auth0 gave Ada payments.auditor.
    RoleMembershipFactory.create(user=person, role=Role.objects.get(name="payments.auditor"))

    state = grant_provision(request_id=request.pk, actor=Actor("system"))

    request.refresh_from_db()
    assert (state, request.state) == ("failed", "failed")
    assert "nobody may hold it together with payments.admin" in request.note


def test_the_sync_flags_conflicts_it_finds_in_auth0(duties: None, devtenant: DevTenant) -> None:
    from access.sync import roles_sync
    from tests.helpers import management, tenant_ids

    devtenant.admin("seed", {"roles": [{"name": "payments.auditor"}]})
    users, roles = tenant_ids(devtenant)
    management(devtenant, "POST", f"users/{users['grace@example.com']}/roles",
               {"roles": [roles["payments.auditor"]]})  # fmt: skip

    report = roles_sync()

    assert report.run.message.endswith(
        "Separation of duties: 1 person holds conflicting roles "
        "(payments.admin and payments.auditor)."
    )
    linus = signed_in("linus@example.com", "portal-admin")
    assert "holds payments.admin and payments.auditor" in text(linus.get("/access/roles/").content)


def test_the_roles_page_names_each_roles_policies(duties: None) -> None:
    own_role("payments.viewer", "team-payments", sensitive=True,
             autoApprove=[{"group": "team-checkout", "maxDuration": "PT8H"}],
             breakGlass={"group": "team-checkout", "maxDuration": "PT1H"})  # fmt: skip
    linus = signed_in("linus@example.com", "portal-admin")

    page = text(linus.get("/access/roles/").content)

    assert "decided with MFA approved by rule break-glass" in page
    assert "conflicts with payments.auditor" in page
    assert "conflicts with payments.admin" in page


def test_the_access_report_flags_holdings_that_conflict(duties: None) -> None:
    import csv
    import io

    person, _ = ada()
    for name in ("payments.admin", "payments.auditor"):
        RoleMembershipFactory.create(user=person, role=Role.objects.get(name=name))
    linus = signed_in("linus@example.com", "portal-admin")

    report = linus.get("/access/reviews/report/")
    rows = list(csv.DictReader(io.StringIO(b"".join(report.streaming_content).decode())))  # type: ignore[attr-defined]

    flagged = {row["role"]: row["conflicts_with_held"] for row in rows
               if row["holder_email"] == "ada@example.com"}  # fmt: skip
    assert flagged == {"payments.admin": "payments.auditor", "payments.auditor": "payments.admin"}
    assert all(not row["conflicts_with_held"] for row in rows
               if row["holder_email"] != "ada@example.com")  # fmt: skip
