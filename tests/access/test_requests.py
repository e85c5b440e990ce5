"""Asking for access, deciding, and the grant carried into the devtenant and ended on time."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core import mail
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from access.audit import Actor
from access.auth0 import Auth0Error, Directory
from access.models import AccessRequest, AuditEvent, RoleMembership
from access.services import AlreadyDecided, access_request_decide, grant_fail, grant_provision
from access.tasks import reconcile_grants_task
from catalog.services import location_refresh, location_register
from portal.celery import app as celery_app
from portal.models import User
from tests.helpers import (
    ENTITY,
    DevTenant,
    ada_asks_grace,
    ask,
    person_of_tenant,
    signed_in,
    tenant_roles_of,
    text,
)

pytestmark = pytest.mark.django_db
LEDGER_OF_ADMINS = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: ledger
  annotations: {atrium.dev/required-roles: payments.admin}
spec: {type: service, lifecycle: production, owner: team-payments}
"""


def audit_trail(request: AccessRequest) -> list[tuple[str, str, str]]:
    return list(
        AuditEvent.objects.filter(correlation_id=request.correlation_id)
        .order_by("at", "id")
        .values_list("action", "actor", "via")
    )


def test_ask_approve_grant_expire(
    devtenant: DevTenant, payments: None, eager_tasks: None, django_capture_on_commit_callbacks: Any
) -> None:
    ada, as_ada = person_of_tenant(devtenant, "ada@example.com")
    grace, as_grace = person_of_tenant(devtenant, "grace@example.com")

    form = as_ada.get(f"/access/requests/new/?entity={ENTITY}&role=payments.viewer").content
    assert b'Decided by <a href="/catalog/default/group/team-payments/"' in form
    with django_capture_on_commit_callbacks(execute=True):
        asked = ask(as_ada)
    assert b"Your request was sent" in asked.content
    request = AccessRequest.objects.get()
    assert request.state == "pending" and request.duration == timedelta(days=7)
    assert [m.to for m in mail.outbox] == [["alan@example.com", "grace@example.com"]]
    assert "Ada asks for payments.viewer" in mail.outbox[0].subject

    dashboard = as_grace.get("/access/approvals/").content.decode()
    assert "On call for payments" in dashboard
    assert '<span class="count" aria-label="1 waiting">1</span>' in dashboard
    with django_capture_on_commit_callbacks(execute=True):
        decided = as_grace.post(
            f"/access/approvals/{request.pk}/",
            {"outcome": "approved", f"comment-{request.pk}": "ok for a week"},
            HTTP_HX_REQUEST="true",
        )
    assert decided.status_code == 200
    assert "You approved the request #" in decided.content.decode()

    request.refresh_from_db()
    assert request.state == "active"
    assert request.expires_at == request.starts_at + timedelta(days=7)  # type: ignore[operator]
    assert "payments.viewer" in tenant_roles_of(devtenant, "ada@example.com")
    held = RoleMembership.objects.get(user=ada, role__name="payments.viewer")
    assert (held.source, held.expires_at) == ("portal_grant", request.expires_at)
    page = as_ada.get("/catalog/default/component/payments-api/").content.decode()
    assert "https://runbooks.example.com/payments" in page  # the restricted details

    AccessRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        call_command("expire_grants", stdout=open("/dev/null", "w"))  # noqa: SIM115
    request.refresh_from_db()
    assert request.state == "expired"
    assert "payments.viewer" not in tenant_roles_of(devtenant, "ada@example.com")
    assert not RoleMembership.objects.filter(user=ada, role__name="payments.viewer").exists()
    assert audit_trail(request) == [
        ("request.created", ada.sub, "web"),
        ("request.approved", grace.sub, "web"),
        ("grant.activated", grace.sub, "task"),  # the worker names who set it going
        ("grant.expired", "system", "task"),
    ]
    assert [m.subject for m in mail.outbox][1:] == [
        "[Atrium] Your request for payments.viewer was approved",
        "[Atrium] You now hold payments.viewer",
        "[Atrium] Your access to payments.viewer has ended",
    ]


def test_asking_again_shows_the_open_request_and_bad_input_says_why(
    devtenant: DevTenant, payments: None
) -> None:
    _, as_ada = person_of_tenant(devtenant, "ada@example.com")
    ask(as_ada)

    again = as_ada.get(f"/access/requests/new/?entity={ENTITY}&role=payments.viewer", follow=True)
    no_reason = ask(as_ada, role="payments.admin", reason=" ")
    too_long = ask(as_ada, role="payments.admin", duration="P90D")

    assert b"You asked for payments.viewer already" in again.content
    assert AccessRequest.objects.count() == 1
    assert b"the reason is required" in no_reason.content
    assert b"Select a valid choice. P90D" in too_long.content  # the entity allows 30 days


def test_nobody_approves_their_own_request_nor_one_they_do_not_own(
    devtenant: DevTenant, payments: None
) -> None:
    ada, as_ada = person_of_tenant(devtenant, "ada@example.com")
    ask(as_ada)
    request = AccessRequest.objects.get()
    signed_in("bob@example.com", "portal-admin")  # an admin, but the owners can decide
    bob = User.objects.get(email="bob@example.com")
    own = as_ada.post(f"/access/approvals/{request.pk}/", {"outcome": "approved"}, follow=True)

    assert b"Nobody decides their own request, from this or another account." in own.content
    assert "Nothing is waiting for you." in as_ada.get("/access/approvals/").content.decode()
    with pytest.raises(Exception, match="You may not decide this request"):
        access_request_decide(request_id=request.pk, approver=bob, outcome="approved",
                              comment="", actor=Actor(bob.sub))  # fmt: skip
    request.refresh_from_db()
    assert request.state == "pending" and not request.decisions.exists()


def test_a_second_decision_is_told_who_decided_first(
    devtenant: DevTenant, payments: None, eager_tasks: None
) -> None:
    request, as_ada, as_grace = ada_asks_grace(devtenant)
    as_grace.post(f"/access/approvals/{request.pk}/", {"outcome": "denied"})

    twice = as_grace.post(
        f"/access/approvals/{request.pk}/", {"outcome": "approved"}, HTTP_HX_REQUEST="true"
    )

    assert twice.status_code == 409
    assert "This request was already denied by Grace" in twice.content.decode()


def test_a_decision_on_the_page_updates_the_counts_of_what_waits(
    devtenant: DevTenant, payments: None, eager_tasks: None
) -> None:
    request, as_ada, as_grace = ada_asks_grace(devtenant)
    page = as_grace.get("/access/approvals/").content.decode()
    # The navigation bar's count, the Waiting tab's and the total listen for the decision's event.
    assert page.count('hx-trigger="approvals-changed from:body"') == 3
    assert as_grace.get("/access/approvals/count/").content.decode().strip() == (
        '<span class="count" aria-label="1 waiting">1</span>'
    )
    assert as_grace.get("/access/approvals/count/?as=tab").content.decode().strip() == "(1)"

    decided = as_grace.post(
        f"/access/approvals/{request.pk}/", {"outcome": "denied"}, HTTP_HX_REQUEST="true"
    )

    assert decided.status_code == 200 and decided["HX-Trigger"] == "approvals-changed"
    assert as_grace.get("/access/approvals/count/").content.decode().strip() == ""
    assert as_grace.get("/access/approvals/count/?as=tab").content.decode().strip() == "(0)"


def test_the_approvals_list_filters_by_role_entity_and_requester(
    devtenant: DevTenant, payments: None, eager_tasks: None
) -> None:
    request, as_ada, as_grace = ada_asks_grace(devtenant)
    row = f'id="request-{request.pk}"'

    def shown(query: str) -> bool:
        return row in as_grace.get(f"/access/approvals/?{query}").content.decode()

    assert shown("") and shown(f"role={request.role_name}") and shown("requester=ADA")
    assert shown(f"entity={request.entity_ref}&requester=example.com")
    assert not shown("role=nobody.role") and not shown("requester=linus")
    assert not shown("entity=component:default/elsewhere")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_two_approvals_at_the_same_moment_make_one_grant(
    devtenant: DevTenant, payments: None, eager_tasks: None
) -> None:
    ada, as_ada = person_of_tenant(devtenant, "ada@example.com")
    grace, _ = person_of_tenant(devtenant, "grace@example.com")
    alan = User.objects.create_user("auth0|alan", "alan@example.com", "Alan", email_verified=True)
    ask(as_ada)
    request = AccessRequest.objects.get()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def approve(person: User) -> None:
        barrier.wait()
        try:
            access_request_decide(request_id=request.pk, approver=person, outcome="approved",
                                  comment="", actor=Actor(person.sub))  # fmt: skip
            outcomes.append("approved")
        except AlreadyDecided as conflict:
            outcomes.append(str(conflict))
        finally:
            connection.close()

    threads = [threading.Thread(target=approve, args=(p,)) for p in (grace, alan)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes)[0].startswith("This request was already approved by ")
    assert sorted(outcomes)[1] == "approved"
    assert AuditEvent.objects.filter(action="request.approved").count() == 1
    request.refresh_from_db()
    assert request.state == "active" and request.decisions.count() == 1
    log = requests.get(devtenant.url("__admin/requests"), timeout=10).json()
    assigns = [r for r in log if r["method"] == "POST" and r["path"].endswith("/roles")]
    assert len(assigns) == 1


def test_auth0_failing_during_provisioning_ends_active_or_failed_never_lost(
    devtenant: DevTenant, payments: None, django_capture_on_commit_callbacks: Any, tmp_path: Path
) -> None:
    ada, as_ada = person_of_tenant(devtenant, "ada@example.com")
    linus, as_linus = person_of_tenant(devtenant, "linus@example.com")
    RoleMembership.objects.create(user=linus, role_id=_role("portal-admin"), source="auth0")
    ask(as_ada)
    request = AccessRequest.objects.get()
    AccessRequest.objects.filter(pk=request.pk).update(state="approved")
    path = "/api/v2/users/*/roles"
    devtenant.admin("faults", {"method": "POST", "path": path, "status": 429, "times": 1})
    devtenant.admin("faults", {"method": "POST", "path": path, "status": 500, "times": 1})

    # A 429 and then a 500: the directory client's own retries carry it through.
    assert grant_provision(request_id=request.pk, actor=Actor("system")) == "active"

    # payments.viewer opens payments-api to her already: she asks for payments.admin from an
    # entity that only it opens.
    (tmp_path / "ledger.yaml").write_text(LEDGER_OF_ADMINS)
    location_refresh(location=location_register(target=str(tmp_path / "ledger.yaml")))
    ask(as_ada, role="payments.admin", entity="component:default/ledger")
    failing = AccessRequest.objects.get(role_name="payments.admin")
    AccessRequest.objects.filter(pk=failing.pk).update(state="approved")
    devtenant.admin("faults", {"method": "POST", "path": path, "status": 500})
    with pytest.raises(Auth0Error), Directory(retries=1, sleep=lambda s: None) as directory:
        grant_provision(request_id=failing.pk, actor=Actor("system"), directory=directory)
    grant_fail(request_id=failing.pk, message="Auth0 answered 500", actor=Actor("system"))
    page = as_linus.get(f"/access/requests/{failing.pk}/").content.decode()
    assert "granting failed" in page and "Retry the grant" in page

    requests.delete(devtenant.url("__admin/faults"), timeout=10)
    celery_app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            as_linus.post(f"/access/requests/{failing.pk}/retry/")
    finally:
        celery_app.conf.task_always_eager = False
    failing.refresh_from_db()
    assert failing.state == "active"
    assert "payments.admin" in tenant_roles_of(devtenant, "ada@example.com")


def test_the_reconciler_finishes_a_grant_a_dead_worker_left_once(
    devtenant: DevTenant, payments: None, eager_tasks: None, settings: Any
) -> None:
    _, as_ada = person_of_tenant(devtenant, "ada@example.com")
    ask(as_ada)
    request = AccessRequest.objects.get()
    # As a worker leaves it when it dies after taking the grant into provisioning.
    AccessRequest.objects.filter(pk=request.pk).update(
        state="provisioning", updated_at=timezone.now() - timedelta(minutes=10)
    )

    assert reconcile_grants_task() == [request.pk]
    assert reconcile_grants_task() == []

    request.refresh_from_db()
    assert request.state == "active"
    log = requests.get(devtenant.url("__admin/requests"), timeout=10).json()
    assert len([r for r in log if r["method"] == "POST" and r["path"].endswith("/roles")]) == 1


def _role(name: str) -> int:
    from access.models import Role

    return Role.objects.get_or_create(name=name)[0].pk


def test_a_reminder_before_the_end_leads_to_an_extension_that_the_expiry_keeps(
    devtenant: DevTenant, payments: None, eager_tasks: None, django_capture_on_commit_callbacks: Any
) -> None:
    from access.tasks import remind_grants_task

    ada, as_ada = person_of_tenant(devtenant, "ada@example.com")
    grace, as_grace = person_of_tenant(devtenant, "grace@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        ask(as_ada)
        first = AccessRequest.objects.get()
        as_grace.post(f"/access/approvals/{first.pk}/", {"outcome": "approved"})
    AccessRequest.objects.filter(pk=first.pk).update(expires_at=timezone.now() + timedelta(days=2))
    mail.outbox.clear()

    assert remind_grants_task() == 1 and remind_grants_task() == 0  # once
    reminder = mail.outbox[0]
    assert reminder.subject.startswith("[Atrium] Your access to payments.viewer ends ")
    extend = (
        "/access/requests/new/?entity=component%3Adefault%2Fpayments-api&role=payments.viewer"
        f"&extend={first.pk}"
    )
    assert extend in reminder.body

    # One click: the form comes filled in as the grant it extends.
    form = as_ada.get(extend).content.decode()
    assert "asking again for a role whose grant ends extends it" in form
    reason = f"Extending request {first.pk}: On call for payments"
    assert f"{reason}</textarea>" in form
    assert '<option value="P7D" selected>7 days</option>' in form
    with django_capture_on_commit_callbacks(execute=True):
        as_ada.post(extend, {"entity": ENTITY, "role": "payments.viewer", "reason": reason,
                             "duration": "P7D"})  # fmt: skip
        second = AccessRequest.objects.get(state="pending")
        as_grace.post(f"/access/approvals/{second.pk}/", {"outcome": "approved"})
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, first.note) == ("expired", f"extended by request {second.pk}")
    assert second.state == "active" and second.expires_at > timezone.now() + timedelta(days=6)  # type: ignore[operator]

    call_command("expire_grants", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert "payments.viewer" in tenant_roles_of(devtenant, "ada@example.com")
    assert RoleMembership.objects.get(user=ada, role__name="payments.viewer").expires_at == (
        second.expires_at
    )


def test_the_dashboard_filters_decides_in_bulk_and_keeps_a_history(
    devtenant: DevTenant, payments: None
) -> None:
    _, as_ada = person_of_tenant(devtenant, "ada@example.com")
    _, as_grace = person_of_tenant(devtenant, "grace@example.com")
    bob = signed_in("bob@example.com")
    ask(as_ada)
    ask(as_ada, role="payments.admin")
    ask(bob)
    viewer, admin, bobs = AccessRequest.objects.order_by("pk")

    by_role = as_grace.get("/access/approvals/", {"role": "payments.admin"}).content.decode()
    by_requester = as_grace.get("/access/approvals/", {"requester": "bob"}).content.decode()
    assert f'id="request-{admin.pk}"' in by_role and f'id="request-{viewer.pk}"' not in by_role
    assert f'id="request-{bobs.pk}"' in by_requester and by_requester.count('id="request-') == 1

    as_grace.post(f"/access/approvals/{bobs.pk}/", {"outcome": "denied"})
    done = as_grace.post(
        "/access/approvals/bulk/",
        {"selected": [viewer.pk, admin.pk, bobs.pk], "outcome": "denied", "comment": "not now"},
        follow=True,
    ).content.decode()

    assert "Denied 2 requests; 1 was already decided by you." in done
    assert set(AccessRequest.objects.values_list("state", flat=True)) == {"denied"}
    history = as_grace.get("/access/approvals/", {"tab": "history"}).content.decode()
    assert text(history.encode()).count("Denied by you: “not now”") == 2
    timeline = text(as_ada.get(f"/access/requests/{viewer.pk}/").content)
    assert "Asked for access by" in timeline and "Denied by" in timeline
    assert "“not now”" in timeline


def test_owners_revoke_a_grant_early_and_undecided_requests_lapse(
    devtenant: DevTenant, payments: None, eager_tasks: None,
    django_capture_on_commit_callbacks: Any, settings: Any,
) -> None:  # fmt: skip
    from access.services import requests_lapse

    ada, as_ada = person_of_tenant(devtenant, "ada@example.com")
    _, as_grace = person_of_tenant(devtenant, "grace@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        ask(as_ada)
        granted = AccessRequest.objects.get()
        as_grace.post(f"/access/approvals/{granted.pk}/", {"outcome": "approved"})
    assert as_ada.post(f"/access/requests/{granted.pk}/revoke/").status_code == 403

    with django_capture_on_commit_callbacks(execute=True):
        revoked = as_grace.post(f"/access/requests/{granted.pk}/revoke/", follow=True)
    assert b"The grant was revoked and the role removed in Auth0." in revoked.content
    granted.refresh_from_db()
    assert granted.state == "revoked"
    assert "payments.viewer" not in tenant_roles_of(devtenant, "ada@example.com")

    ask(as_ada, role="payments.admin")
    waiting = AccessRequest.objects.get(state="pending")
    AccessRequest.objects.filter(pk=waiting.pk).update(
        created_at=timezone.now() - settings.ACCESS_REQUEST_LAPSE - timedelta(minutes=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert requests_lapse() == 1
    waiting.refresh_from_db()
    assert waiting.state == "lapsed"
    assert mail.outbox[-1].subject == (
        "[Atrium] Your request for payments.admin lapsed without a decision"
    )


def test_slack_hears_of_each_step(
    devtenant: DevTenant, payments: None, eager_tasks: None,
    django_capture_on_commit_callbacks: Any, settings: Any, slack: list[dict[str, Any]],
) -> None:  # fmt: skip
    _, as_ada = person_of_tenant(devtenant, "ada@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        ask(as_ada)

    request = AccessRequest.objects.get()
    link = f"{settings.PORTAL_BASE_URL}/access/requests/{request.pk}/"
    assert slack == [{"text": f"[Atrium] Ada asks for payments.viewer — {link}"}]


def test_two_approvals_required_need_two_people_and_ada_decides_nothing_she_does_not_own(
    devtenant: DevTenant, payments: None, tmp_path: Path
) -> None:
    (tmp_path / "ledger.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: ledger\n"
        "  annotations:\n    atrium.dev/required-roles: payments.admin\n"
        '    atrium.dev/approvals-required: "2"\n'
        "spec: {type: service, lifecycle: production, owner: team-payments}\n"
    )
    location_refresh(location=location_register(target=str(tmp_path / "ledger.yaml")))
    _, as_ada = person_of_tenant(devtenant, "ada@example.com")
    _, as_grace = person_of_tenant(devtenant, "grace@example.com")
    alan = User.objects.create_user("auth0|alan", "alan@example.com", "Alan", email_verified=True)
    bob = signed_in("bob@example.com")
    ledger = "component:default/ledger"
    bob.post("/access/requests/new/", {"entity": ledger, "role": "payments.admin",
                                       "reason": "month end", "duration": "P1D"})  # fmt: skip
    request = AccessRequest.objects.get()

    by_ada = as_ada.post(f"/access/approvals/{request.pk}/", {"outcome": "approved"})
    by_ada_api = as_ada.post(f"/api/access/requests/{request.pk}/approve", {},
                             content_type="application/json")  # fmt: skip
    # Not hers to decide, nor to see: the page answers as the API does.
    assert by_ada.status_code == 404 and by_ada_api.status_code == 404

    waiting = '<span class="count" aria-label="1 waiting">1</span>'
    assert waiting in as_grace.get("/catalog/").content.decode()
    assert waiting not in as_ada.get("/catalog/").content.decode()
    as_grace.post(f"/access/approvals/{request.pk}/", {"outcome": "approved"})
    request.refresh_from_db()
    assert request.state == "pending"  # one of two
    assert waiting not in as_grace.get("/catalog/").content.decode()  # hers is given
    again = as_grace.post(f"/access/approvals/{request.pk}/", {"outcome": "approved"}, follow=True)
    assert b"You decided this request already." in again.content
    access_request_decide(request_id=request.pk, approver=alan, outcome="approved", comment="",
                          actor=Actor(alan.sub))  # fmt: skip
    request.refresh_from_db()
    assert request.state == "approved" and request.decisions.count() == 2
