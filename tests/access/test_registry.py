"""The role registry: who owns each role and how it may be granted, set by portal admins on the
Roles pages, through the API and with `import_roles`, every change in the audit log."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from access.models import AuditEvent, Role
from tests.helpers import DevTenant, signed_in
from tests.portal.auth_helpers import client_token, machine_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def roles() -> None:
    for name in ("payments.viewer", "payments.admin", "checkout.viewer"):
        Role.objects.create(name=name, description=f"{name} in Auth0")


def test_admins_set_owners_on_the_roles_page_and_the_change_is_audited(roles: None) -> None:
    linus = signed_in("linus@example.com", "portal-admin")
    ada = signed_in("ada@example.com")

    before = linus.get("/access/roles/").content.decode()
    saved = linus.post("/access/roles/payments.viewer/", {
        "owners": "team-payments, group:default/team-risk", "requestable": "on",
        "max_duration": "P14D", "min_approvals": "2",
    }, follow=True)  # fmt: skip
    wrong = linus.post("/access/roles/payments.viewer/", {
        "owners": "user:ada", "requestable": "on", "max_duration": "P2Y", "min_approvals": "1",
    })  # fmt: skip
    after = linus.get("/access/roles/").content.decode()
    refused = ada.post("/access/roles/payments.viewer/", {"owners": "team-checkout"})

    assert "Nobody owns payments.viewer in Atrium yet" in before
    assert "payments.viewer: changed owners, maxDuration, minApprovals." in saved.content.decode()
    assert (
        "&#x27;user:ada&#x27; is not a group; a role is owned by groups" in wrong.content.decode()
    )
    assert "<code>group:default/team-payments</code>, <code>group:default/team-risk</code>" in after
    assert refused.status_code == 403
    role = Role.objects.get(name="payments.viewer")
    assert (role.owners, role.min_approvals) == (
        ["group:default/team-payments", "group:default/team-risk"],
        2,
    )
    event = AuditEvent.objects.get(action="role.registry_changed")
    assert (event.actor, event.via, event.target) == ("auth0|linus@example.com", "web", role.name)
    assert event.detail["changes"]["maxDuration"] == {"from": None, "to": "P14D"}


def test_platform_teams_keep_the_registry_as_code_through_the_api(
    devtenant: DevTenant, roles: None
) -> None:
    token = client_token(devtenant, ["read:access", "admin:access"])
    machine = {"Authorization": f"Bearer {token}"}
    reader = {"Authorization": f"Bearer {machine_token(devtenant)}"}
    client = Client()
    entry = {"owners": ["team-payments"], "requestable": True, "maxDuration": "P30D",
             "minApprovals": 1}  # fmt: skip

    put = client.put("/api/access/roles/payments.viewer", entry,
                     content_type="application/json", headers=machine)  # fmt: skip
    got = client.get("/api/access/roles/payments.viewer", headers=machine).json()
    # What a GET gave can be PUT back as it is.
    again = client.put("/api/access/roles/payments.viewer", got,
                       content_type="application/json", headers=machine)  # fmt: skip
    later = client.put("/api/access/roles/payments.viewer", {**entry, "sensitive": "yes"},
                       content_type="application/json", headers=machine)  # fmt: skip
    typo = client.put("/api/access/roles/payments.viewer", {"owner": ["team-payments"]},
                      content_type="application/json", headers=machine)  # fmt: skip
    unknown = client.put("/api/access/roles/nope", entry, content_type="application/json",
                         headers=machine)  # fmt: skip
    by_reader = client.put("/api/access/roles/payments.viewer", entry,
                           content_type="application/json", headers=reader)  # fmt: skip
    by_person = signed_in("grace@example.com").put(
        "/api/access/roles/payments.viewer", entry, content_type="application/json"
    )

    assert put.status_code == 200
    assert got == {"name": "payments.viewer", "description": "payments.viewer in Auth0",
                   "memberCount": 0, "owners": ["group:default/team-payments"],
                   "requestable": True, "maxDuration": "P30D", "minApprovals": 1,
                   "reviewEvery": None, "reviewDay": None, "removeUnreviewedAfter": None,
                   "nextReviewDue": None, "sensitive": False, "conflictsWith": [],
                   "autoApprove": [], "breakGlass": None}  # fmt: skip
    assert again.status_code == 200
    assert (later.status_code, later.json()["error"]["message"]) == (
        400,
        "sensitive: 'yes' is not true or false",
    )
    assert typo.json()["error"]["message"].startswith("owner: unknown field")
    assert unknown.status_code == 404
    assert by_reader.status_code == 403  # a machine without admin:access
    assert by_person.status_code == 403
    # One change, once: the PUT that repeated the entry changed nothing and recorded nothing.
    assert AuditEvent.objects.filter(action="role.registry_changed").count() == 1
    assert AuditEvent.objects.get(action="role.registry_changed").via == "api"


def test_import_roles_prints_what_changes_and_an_invalid_entry_changes_nothing(
    roles: None, tmp_path: Path
) -> None:
    good = tmp_path / "roles.yaml"
    good.write_text(
        "- role: payments.viewer\n  owners: [team-payments]\n  maxDuration: P30D\n"
        "- role: payments.admin\n  owners: [team-payments]\n  minApprovals: 2\n"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "- role: payments.viewer\n  owners: [team-payments]\n"
        "- role: checkout.viewer\n  minApprovals: many\n"
    )

    def run(*args: Any) -> str:
        out = StringIO()
        call_command("import_roles", *args, stdout=out)
        return out.getvalue()

    dry = run(str(good), "--dry-run")
    after_dry = Role.objects.get(name="payments.viewer").owners
    with pytest.raises(CommandError) as invalid:
        run(str(bad))
    after_invalid = Role.objects.get(name="payments.viewer").owners
    applied = run(str(good))
    again = run(str(good))

    assert 'payments.viewer: owners [] → ["group:default/team-payments"]' in dry
    assert "payments.admin: minApprovals 1 → 2" in dry
    assert "2 entries read, 2 roles would change." in dry
    assert after_dry == [] and after_invalid == []
    assert str(invalid.value) == (
        f"{bad}: entry 2 (checkout.viewer): minApprovals: 'many' is not a whole number from 1 to 10"
    )
    assert "2 roles changed." in applied and "0 roles changed." in again
    assert Role.objects.get(name="payments.admin").min_approvals == 2
    assert AuditEvent.objects.filter(action="role.registry_changed", via="cli").count() == 2


def test_a_role_the_registry_names_must_be_in_the_mirror(roles: None, tmp_path: Path) -> None:
    (tmp_path / "roles.yaml").write_text("- role: payments.viewr\n  owners: [team-payments]\n")

    with pytest.raises(CommandError) as missing:
        call_command("import_roles", str(tmp_path / "roles.yaml"))

    assert "no such role in the portal's mirror: payments.viewr" in str(missing.value)


def test_a_review_schedule_is_set_on_the_page_the_api_and_import_roles_and_checked_alike(
    devtenant: DevTenant, roles: None, tmp_path: Path
) -> None:
    token = client_token(devtenant, ["read:access", "admin:access"])
    machine = {"Authorization": f"Bearer {token}"}
    linus = signed_in("linus@example.com", "portal-admin")
    client = Client()
    base = {"owners": ["team-payments"]}

    def put(**fields: Any) -> Any:
        return client.put("/api/access/roles/payments.viewer", {**base, **fields},
                          content_type="application/json", headers=machine)  # fmt: skip

    scheduled = put(reviewEvery="P3M", reviewDay="2025-01-31", removeUnreviewedAfter="P14D")
    refused = {
        "P2W": put(reviewEvery="P2W"),
        "day alone": put(reviewDay="2025-01-31"),
        "not a date": put(reviewEvery="P1M", reviewDay="31/01/2025"),
        "hours": put(reviewEvery="P1M", removeUnreviewedAfter="PT12H"),
    }
    page = linus.post("/access/roles/payments.admin/", {
        "owners": "team-payments", "requestable": "on", "min_approvals": "1",
        "review_every": "P6M", "review_day": "", "remove_unreviewed_after": "",
    }, follow=True)  # fmt: skip
    wrong_page = linus.post("/access/roles/payments.admin/", {
        "owners": "team-payments", "min_approvals": "1", "review_day": "2025-02-01",
    })  # fmt: skip
    (tmp_path / "roles.yaml").write_text(
        "- role: checkout.viewer\n  owners: [team-checkout]\n  reviewEvery: P1Y\n"
        "  reviewDay: 2025-03-01\n"
    )
    call_command("import_roles", str(tmp_path / "roles.yaml"), stdout=StringIO())

    assert scheduled.status_code == 200
    answer = scheduled.json()
    assert (answer["reviewEvery"], answer["reviewDay"], answer["removeUnreviewedAfter"]) == (
        "P3M", "2025-01-31", "P14D",
    )  # fmt: skip
    # The next due date: the last day of a month three, six, nine or twelve after January.
    assert answer["nextReviewDue"][8:10] in {"30", "31"} and answer["nextReviewDue"][5:7] in {
        "01", "04", "07", "10",
    }  # fmt: skip
    messages = {why: r.json()["error"]["message"] for why, r in refused.items()}
    assert all(r.status_code == 400 for r in refused.values())
    assert messages["P2W"] == (
        "reviewEvery: 'P2W' is not one of P1M, P3M, P6M, P1Y (every 1, 3, 6 or 12 months)"
    )
    assert messages["day alone"] == "reviewDay: anchors reviewEvery's reviews; set reviewEvery too"
    assert messages["not a date"] == "reviewDay: '31/01/2025' is not a date such as 2025-01-15"
    assert messages["hours"].startswith("removeUnreviewedAfter: 'PT12H' is not a number of days")
    assert "payments.admin: changed owners, reviewEvery." in page.content.decode()
    assert "anchors reviewEvery&#x27;s reviews; set reviewEvery too" in wrong_page.content.decode()
    admin_role, checkout = (Role.objects.get(name=n) for n in ("payments.admin", "checkout.viewer"))
    assert (admin_role.review_every, admin_role.review_day) == (6, None)
    assert admin_role.review_next_due is not None
    assert (checkout.review_every, str(checkout.review_day)) == (12, "2025-03-01")
    assert checkout.review_next_due is not None
    assert checkout.review_next_due.strftime("%m-%d") == "03-01"
