"""Auto-approval: a role's rule grants members of a group the role at once, within its bounds,
through the same grant path (the worker, Auth0, the end), marked "approved by rule"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from access.models import AccessRequest, AuditEvent
from tests.factories import UserFactory
from tests.helpers import (
    CHECKOUT,
    ENTITY,
    DevTenant,
    ask,
    catalog_add,
    own_role,
    person_of_tenant,
    tenant_roles_of,
    text,
)

pytestmark = pytest.mark.django_db
INCIDENT_RULE = {"group": "team-checkout", "maxDuration": "PT8H", "reasonPattern": "^INC-[0-9]+"}


@pytest.fixture
def incident_rule(payments: None, tmp_path: Path) -> None:
    """team-checkout may have payments.viewer for 8 hours without review during an incident."""
    catalog_add(tmp_path / "checkout.yaml", CHECKOUT)
    own_role("payments.viewer", "team-payments", autoApprove=[INCIDENT_RULE])


def test_inside_the_rule_the_role_is_granted_at_once_and_the_owners_are_told(
    devtenant: DevTenant,
    incident_rule: None,
    eager_tasks: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    ada, as_ada = person_of_tenant(devtenant, "ada@example.com")

    form = text(as_ada.get(f"/access/requests/new/?entity={ENTITY}&role=payments.viewer").content)
    with django_capture_on_commit_callbacks(execute=True):
        asked = ask(as_ada, reason="INC-4711 checkout cannot take cards", duration="PT8H")

    assert (
        "approved at once by rule for members of team-checkout when you ask for at most "
        "8 hours with a reason matching ^INC-[0-9]+ ; otherwise needs an approval from "
        "team-payments"
    ) in form
    request = AccessRequest.objects.get()
    assert (request.state, request.kind) == ("active", "auto_approved")
    assert request.rule == {"group": "group:default/team-checkout", "maxDuration": "PT8H",
                            "reasonPattern": "^INC-[0-9]+"}  # fmt: skip
    assert not request.decisions.exists()
    # The same grant path: Auth0 holds it, and it ends when its 8 hours are up.
    assert "payments.viewer" in tenant_roles_of(devtenant, "ada@example.com")
    assert (request.expires_at - request.starts_at).total_seconds() == 8 * 3600  # type: ignore[operator]
    page = text(asked.content)
    assert "Approved at once by rule: members of" in page
    # The timeline: by the rule, not by the person who asked.
    assert "Approved at once by rule · " in page
    assert "by the rule for members of group:default/team-checkout, for at most 8 hours" in page
    events = AuditEvent.objects.filter(correlation_id=request.correlation_id).order_by("id")
    assert [e.action for e in events] == [
        "request.created", "request.auto_approved", "grant.activated",
    ]  # fmt: skip
    assert events[1].detail["rule"]["group"] == "group:default/team-checkout"
    told = {m.subject: sorted(m.to) for m in mail.outbox}
    assert told["[Atrium] Ada was given payments.viewer at once by rule"] == [
        "alan@example.com", "grace@example.com",
    ]  # fmt: skip
    assert told["[Atrium] You now hold payments.viewer"] == ["ada@example.com"]


@pytest.mark.parametrize(
    ("reason", "duration", "why"),
    [
        ("On call for payments", "PT8H", "the reason does not match ^INC-[0-9]+"),
        ("Fixing INC-4711", "PT8H", "the pattern is anchored at the start"),
        ("INC-4711 checkout cannot take cards", "P1D", "longer than the rule's 8 hours"),
    ],
)
def test_outside_the_rule_the_request_waits_for_the_owners(
    devtenant: DevTenant, incident_rule: None, reason: str, duration: str, why: str
) -> None:
    _, as_ada = person_of_tenant(devtenant, "ada@example.com")

    ask(as_ada, reason=reason, duration=duration)

    request = AccessRequest.objects.get()
    assert (request.state, request.kind, request.rule) == ("pending", "decided", None), why


def test_only_members_of_the_group_now_through_a_verified_email_are_approved_by_rule(
    incident_rule: None,
) -> None:
    outsider = UserFactory.create(email="linus@example.com", email_verified=True)
    unverified = UserFactory.create(email="ada@example.com", email_verified=False)
    for person in (outsider, unverified):
        client = Client()
        client.force_login(person)
        ask(client, reason="INC-1 down", duration="PT8H")

    assert list(AccessRequest.objects.values_list("state", flat=True)) == ["pending", "pending"]


def test_the_api_is_approved_by_the_same_rule(
    devtenant: DevTenant, incident_rule: None, django_capture_on_commit_callbacks: Any
) -> None:
    _, as_ada = person_of_tenant(devtenant, "ada@example.com")
    body = {"entityRef": ENTITY, "role": "payments.viewer", "reason": "INC-9 cards down",
            "duration": "PT4H"}  # fmt: skip

    with django_capture_on_commit_callbacks(execute=False):
        created = as_ada.post("/api/access/requests", body, content_type="application/json")

    assert created.status_code == 201
    assert (created.json()["state"], created.json()["kind"]) == ("approved", "autoApproved")
    assert created.json()["rule"]["reasonPattern"] == "^INC-[0-9]+"


def test_a_rule_is_refused_when_it_is_set_wrong_naming_the_rule_and_field(
    payments: None,
) -> None:
    from access.registry import RegistryError, registry_entry_parse

    wrong = {
        "a pattern RE2 cannot run": ({"group": "team-x", "maxDuration": "PT8H",
                                      "reasonPattern": "(a)\\1"}, "is not a pattern Atrium runs"),
        "a pattern too long": ({"group": "team-x", "maxDuration": "PT8H",
                                "reasonPattern": "a" * 201}, "at most 200"),
        "no group": ({"maxDuration": "PT8H"}, "autoApprove: rule 1: group is required"),
        "a user": ({"group": "user:ada", "maxDuration": "PT8H"}, "is not a group"),
        "too long": ({"group": "team-x", "maxDuration": "P60D"}, "longer than the role's"),
        "unknown key": ({"group": "team-x", "maxDuration": "PT8H", "role": "x"}, "unknown field"),
    }  # fmt: skip
    for what, (rule, message) in wrong.items():
        with pytest.raises(RegistryError, match=message.replace("(", r"\(")):
            registry_entry_parse({"maxDuration": "P30D", "autoApprove": [rule]})
        assert what


def test_a_pattern_that_would_backtrack_for_ever_in_python_matches_at_once() -> None:
    """`(a+)+$` against 100,000 a's and a b takes Python's re longer than anyone waits; RE2
    answers in linear time, so a reason cannot hang the worker that reads it."""
    from access.registry import AutoApproveRule

    rule = AutoApproveRule(group="group:default/x", max_duration=__import__("datetime").timedelta(
        hours=1), reason_pattern="(a+)+$")  # fmt: skip
    assert rule.reason_matches("a" * 100_000 + "b") is False
    assert rule.reason_matches("aaaa") is True
