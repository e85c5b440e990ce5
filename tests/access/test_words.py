"""The words people read on the access pages and in mail: people by name, actions as sentences,
exact times in mail."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from access.models import AccessRequest, AuditEvent, Decision
from access.notifications import request_event_notify
from access.words import ACTIONS
from portal.models import User
from tests.factories import GrantFactory, UserFactory
from tests.helpers import ROOT, DevTenant, ask, person_of_tenant, signed_in, text

pytestmark = pytest.mark.django_db


def test_the_timeline_says_who_did_what_by_name(
    devtenant: DevTenant, payments: None, eager_tasks: None, django_capture_on_commit_callbacks: Any
) -> None:
    ada, as_ada = person_of_tenant(devtenant, "ada@example.com")
    grace, as_grace = person_of_tenant(devtenant, "grace@example.com")
    User.objects.filter(pk=ada.pk).update(name="Ada Lovelace")
    User.objects.filter(pk=grace.pk).update(name="Grace Hopper")
    with django_capture_on_commit_callbacks(execute=True):
        ask(as_ada)
        request = AccessRequest.objects.get()
        as_grace.post(
            f"/access/approvals/{request.pk}/",
            {"outcome": "approved", f"comment-{request.pk}": "ok for a week"},
        )

    page = text(as_ada.get(f"/access/requests/{request.pk}/").content)

    assert "payments.viewer for Ada Lovelace" in page
    assert "State: granted" in page and "for 7 days. Ends in 1 week" in page
    assert "On Payments API (component:default/payments-api)" in page
    assert "Asked for access by Ada Lovelace · just now" in page
    assert "Approved by Grace Hopper · just now “ok for a week”" in page
    # The worker granted it, in the name of the person who approved.
    assert "Access granted by Grace Hopper · just now" in page
    assert "auth0|" not in page and "grant.activated" not in page


def test_an_old_record_names_the_person_as_they_are_now() -> None:
    """A record from before names were kept is told by the person's name today."""
    ada = UserFactory.create(email="ada@example.com", name="Ada Lovelace")
    request = GrantFactory.create(requester=ada)
    AuditEvent.objects.create(
        actor=ada.sub, via="web", action="request.created", correlation_id=request.correlation_id
    )
    as_ada = Client()
    as_ada.force_login(ada)

    page = text(as_ada.get(f"/access/requests/{request.pk}/").content)

    assert "Asked for access by Ada Lovelace" in page and ada.sub not in page


ACTION_NAME = re.compile(r"[a-z_]+\.[a-z_]+")


def recorded_actions() -> set[str]:
    """The actions the portal's code records by name: `actor.record("…", …)`, `.event("…")`,
    and the names chosen just before (`action = "grant.revoked" if … else "grant.expired"`)."""
    found: set[str] = set()
    for source in [*ROOT.glob("access/**/*.py"), *ROOT.glob("catalog/**/*.py"),
                   *ROOT.glob("portal/**/*.py")]:  # fmt: skip
        for node in ast.walk(ast.parse(Path(source).read_text())):
            named: ast.AST | None = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr in ("record", "event") and node.args:
                    named = node.args[0]
            elif isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == "action" for target in node.targets
            ):
                named = node.value
            if named is None:
                continue
            found |= {
                value.value
                for value in ast.walk(named)
                if isinstance(value, ast.Constant) and isinstance(value.value, str)
                and ACTION_NAME.fullmatch(value.value)
            }  # fmt: skip
    return found


def test_every_action_the_portal_records_is_said_in_words() -> None:
    recorded = recorded_actions() | {"request.approved", "request.denied"}  # f"request.{verb}"

    assert len(recorded) > 20
    assert recorded - ACTIONS.keys() == set()


def test_mail_says_who_decided_and_exactly_when_access_ends(settings: Any) -> None:
    ada = UserFactory.create(email="ada@example.com", name="Ada Lovelace")
    grace = UserFactory.create(email="grace@example.com", name="Grace Hopper")
    request = GrantFactory.create(
        requester=ada, expires_at=datetime(2026, 12, 8, 9, 30, tzinfo=UTC)
    )
    Decision.objects.create(request=request, approver=grace, outcome=Decision.Outcome.APPROVED)

    for event in ("approved", "active", "reminder"):
        request_event_notify(request_id=request.pk, event=event)

    approved, active, reminder = mail.outbox
    assert reminder.subject.endswith("payments.viewer ends Tue 8 Dec 2026, 09:30 UTC")
    assert "was approved by Grace Hopper." in approved.body
    assert "until Tue 8 Dec 2026, 09:30 UTC." in active.body
    assert "until Tue 8 Dec 2026, 09:30 UTC." in str(active.alternatives[0][0])  # type: ignore[attr-defined]


def test_the_request_form_names_the_entity_and_its_deciders_by_title(payments: None) -> None:
    client = signed_in("ada@example.com")

    html = client.get(
        "/access/requests/new/?entity=component:default/payments-api&role=payments.viewer"
    ).content.decode()

    assert '<a href="/catalog/default/component/payments-api/">Payments API</a>' in html
    assert 'title="group:default/team-payments">' in html
    assert "<code>group:default/team-payments</code>" not in html
