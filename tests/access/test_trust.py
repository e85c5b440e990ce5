"""The trust model, tried as an attacker with an ordinary account would: a role is granted only
with its owners' say, people and groups come only from trusted locations, and a person is who
Auth0 verified. Grants go to the devtenant over real HTTP."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from access.audit import SYSTEM
from access.models import AccessRequest, AuditEvent
from access.services import grant_provision
from catalog.models import Location
from catalog.services import location_refresh, location_register
from portal.models import User
from tests.factories import AccessRequestFactory
from tests.helpers import ENTITY, DevTenant, own_role, person_of_tenant, tenant_roles_of

pytestmark = pytest.mark.django_db

# team-checkout's own entity, declaring roles of other teams and a protected one, and naming
# a teammate as approver.
CHECKOUT = """\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: team-checkout}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: ada}
spec:
  profile: {email: ada@example.com}
  memberOf: [team-checkout]
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: bob}
spec:
  profile: {email: bob@example.com}
  memberOf: [team-checkout]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout-tools
  annotations:
    atrium.dev/required-roles: payments.admin, portal-admin, checkout.deploy, checkout.viewer
    atrium.dev/approvers: user:bob
    atrium.dev/max-access-duration: P99999999D
spec: {type: service, lifecycle: production, owner: team-checkout}
"""
TOOLS = "component:default/checkout-tools"


@pytest.fixture
def checkout(tmp_path: Path, payments: None) -> None:
    (tmp_path / "checkout.yaml").write_text(CHECKOUT)
    location = location_register(
        target=str(tmp_path / "checkout.yaml"), allow_kinds=["User", "Group"]
    )
    location_refresh(location=location)


def local_person(email: str, sub: str, *, verified: bool = True) -> tuple[User, Client]:
    """Someone with no account in the devtenant (their decisions never call Auth0)."""
    user = User.objects.create_user(
        sub, email, email.split("@")[0].title(), email_verified=verified
    )
    client = Client()
    client.force_login(user)
    return user, client


def api(client: Client, path: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(f"/api/access/{path}", body or {}, content_type="application/json")


def ask(client: Client, entity: str, role: str, duration: str = "P7D") -> Any:
    body = {"entityRef": entity, "role": role, "reason": "On call", "duration": duration}
    return api(client, "requests", body)


def test_a_team_declaring_another_teams_role_gets_it_only_from_that_teams_owners(
    devtenant: DevTenant, checkout: None
) -> None:
    ada, as_ada = person_of_tenant(devtenant, "ada@example.com")
    grace, as_grace = person_of_tenant(devtenant, "grace@example.com")
    _, as_bob = local_person("bob@example.com", "auth0|bob")

    form = as_ada.get("/access/requests/new/", {"entity": TOOLS, "role": "payments.admin"})
    asked = ask(as_ada, TOOLS, "payments.admin").json()
    # Bob is the approver checkout-tools names and Ada's teammate; neither makes him a decider.
    by_teammate = api(as_bob, f"requests/{asked['id']}/approve")
    waiting_for_bob = as_bob.get("/access/approvals/").content.decode()
    by_owner = api(as_grace, f"requests/{asked['id']}/approve", {"comment": "ok"})

    assert (
        'needs an approval from <a href="/catalog/default/group/team-payments/"'
        in form.content.decode()
    )
    # He may not even see it: it is not his to decide.
    assert by_teammate.status_code == 404
    assert "checkout-tools" not in waiting_for_bob
    assert by_owner.status_code == 200 and by_owner.json()["state"] == "approved"


def test_protected_and_ownerless_roles_are_never_requested_nor_granted(
    devtenant: DevTenant, checkout: None, settings: Any
) -> None:
    settings.ACCESS_PROTECTED_ROLES = frozenset({"portal-admin", "checkout.deploy"})
    # Even a registry entry naming owners cannot make a protected role requestable.
    own_role("portal-admin", "team-checkout")
    own_role("checkout.deploy", "team-checkout")
    own_role("checkout.viewer")
    ada, as_ada = person_of_tenant(devtenant, "ada@example.com")

    admin = ask(as_ada, TOOLS, "portal-admin")
    deploy = ask(as_ada, TOOLS, "checkout.deploy")
    unowned = ask(as_ada, TOOLS, "checkout.viewer")
    page = as_ada.get("/catalog/default/component/checkout-tools/").content.decode()
    form = as_ada.get("/access/requests/new/", {"entity": TOOLS}).content.decode()

    assert (admin.status_code, admin.json()["error"]["message"]) == (
        400,
        "portal-admin is protected: it is never requested or granted through Atrium.",
    )
    assert deploy.json()["error"]["message"].startswith("checkout.deploy is protected")
    assert unowned.status_code == 400
    assert unowned.json()["error"]["message"].startswith("Nobody owns checkout.viewer in Atrium")
    assert "portal-admin is protected" in page and "Nobody owns checkout.viewer" in page
    assert '<option value="portal-admin"' not in form
    assert '<option value="payments.admin"' in form
    assert not AccessRequest.objects.exclude(role_name="payments.admin").exists()

    # A request for it that reached the worker anyway (a row written by hand) is never
    # carried into Auth0.
    forged = AccessRequestFactory.create(
        requester=ada, entity_ref=TOOLS, role_name="portal-admin",
        duration=timedelta(days=1), state=AccessRequest.State.APPROVED,
    )  # fmt: skip
    state = grant_provision(request_id=forged.pk, actor=SYSTEM)

    forged.refresh_from_db()
    assert state == "failed" and forged.note.startswith("portal-admin is protected")
    assert "portal-admin" not in tenant_roles_of(devtenant, "ada@example.com")


def test_people_and_groups_from_a_location_not_allowed_them_give_no_membership(
    devtenant: DevTenant,
    payments: None,
    tmp_path: Path,
) -> None:
    # Anyone who can add a descriptor somewhere claims Bob's e-mail and a seat in team-payments.
    (tmp_path / "spoof.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: mallory}\n"
        "spec:\n  profile: {email: bob@example.com}\n  memberOf: [team-payments]\n"
    )
    spoof = location_register(target=str(tmp_path / "spoof.yaml"))
    location_refresh(location=spoof)
    ada, as_ada = person_of_tenant(devtenant, "ada@example.com")
    _, as_bob = local_person("bob@example.com", "auth0|bob")

    asked = ask(as_ada, ENTITY, "payments.viewer").json()
    approve = api(as_bob, f"requests/{asked['id']}/approve")
    details = as_bob.get("/catalog/default/component/payments-api/").content.decode()

    assert approve.status_code == 404  # he may not even see it
    assert "https://runbooks.example.com/payments" not in details
    assert "User entities may not come from the location" in " ".join(
        Location.objects.get(pk=spoof.pk).last_problems
    )


def test_an_unverified_account_has_no_groups_and_cannot_approve(
    devtenant: DevTenant,
    payments: None,
) -> None:
    ada, as_ada = person_of_tenant(devtenant, "ada@example.com")
    grace, as_grace = person_of_tenant(devtenant, "grace@example.com")
    User.objects.filter(pk=grace.pk).update(email_verified=False)

    asked = ask(as_ada, ENTITY, "payments.viewer").json()
    approve = api(as_grace, f"requests/{asked['id']}/approve")
    approvals = as_grace.get("/access/approvals/").content.decode()

    assert approve.status_code == 404
    assert "Auth0 has not verified your e-mail address (grace@example.com)" in approvals
    assert AccessRequest.objects.get(pk=asked["id"]).state == "pending"


def test_a_second_account_of_a_person_neither_approves_their_request_nor_counts_twice(
    devtenant: DevTenant,
    payments: None,
    tmp_path: Path,
) -> None:
    own_role("payments.admin", "team-payments", minApprovals=2)
    ada, as_ada = person_of_tenant(devtenant, "ada@example.com")
    grace, as_grace = person_of_tenant(devtenant, "grace@example.com")
    # Grace's second Auth0 account (another connection), with the same verified e-mail.
    _, as_grace_too = local_person("Grace@Example.com", "google-oauth2|grace")
    _, as_alan = local_person("alan@example.com", "auth0|alan")

    own = ask(as_grace, ENTITY, "payments.admin").json()
    by_other_account = api(as_grace_too, f"requests/{own['id']}/approve")
    on_the_page = as_grace_too.post(
        f"/access/approvals/{own['id']}/", {"outcome": "approved"}, follow=True
    ).content.decode()

    theirs = ask(as_ada, ENTITY, "payments.admin").json()
    first = api(as_grace, f"requests/{theirs['id']}/approve")
    again_from_other_account = api(as_grace_too, f"requests/{theirs['id']}/approve")
    pending = AccessRequest.objects.get(pk=theirs["id"]).state
    second = api(as_alan, f"requests/{theirs['id']}/approve")

    assert by_other_account.status_code == 403
    assert by_other_account.json()["error"]["message"] == (
        "Nobody decides their own request, from this or another account."
    )
    assert "Nobody decides their own request, from this or another account." in on_the_page
    assert first.status_code == 200 and first.json()["state"] == "pending"
    assert again_from_other_account.status_code == 409
    assert pending == "pending"
    assert second.json()["state"] == "approved"


def test_a_duration_beyond_every_cap_is_refused_before_auth0_is_called(
    devtenant: DevTenant, checkout: None
) -> None:
    own_role("payments.admin", "team-payments", maxDuration="P14D")
    ada, as_ada = person_of_tenant(devtenant, "ada@example.com")

    huge = ask(as_ada, TOOLS, "payments.admin", duration="P99999999D")
    over_a_year = ask(as_ada, TOOLS, "payments.admin", duration="P400D")
    over_the_role = ask(as_ada, TOOLS, "payments.admin", duration="P15D")
    entity = as_ada.get("/catalog/default/component/checkout-tools/").content.decode()

    assert huge.status_code == 400
    assert huge.json()["error"]["message"] == (
        "duration: 'P99999999D' is longer than a year (P365D), the longest grant Atrium makes"
    )
    assert over_a_year.status_code == 400
    assert over_the_role.json()["error"]["message"] == (
        "The duration must be longer than zero and at most 14 days."
    )
    assert "atrium.dev/max-access-duration: &#x27;P99999999D&#x27; is longer than a year" in entity
    assert not AccessRequest.objects.exists()
    assert "payments.admin" not in tenant_roles_of(devtenant, "ada@example.com")


def test_a_grant_ends_within_the_caps_as_they_stand_and_one_not_recorded_is_taken_back(
    devtenant: DevTenant,
    payments: None,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    ada, _ = person_of_tenant(devtenant, "ada@example.com")

    def approved(role: str, days: int) -> AccessRequest:
        request: AccessRequest = AccessRequestFactory.create(
            requester=ada, entity_ref=ENTITY, role_name=role,
            duration=timedelta(days=days), state=AccessRequest.State.APPROVED,
        )  # fmt: skip
        return request

    # Approved for ten years (before a cap was lowered): granted, ending within today's cap.
    long_ago = approved("payments.viewer", 3650)
    grant_provision(request_id=long_ago.pk, actor=SYSTEM)
    long_ago.refresh_from_db()

    def broken(**_: Any) -> str:
        raise RuntimeError("database went away")

    monkeypatch.setattr("access.services._grant_activate", broken)
    lost = approved("payments.admin", 1)
    state = grant_provision(request_id=lost.pk, actor=SYSTEM)
    lost.refresh_from_db()

    assert long_ago.state == "active" and long_ago.expires_at is not None
    assert long_ago.expires_at <= timezone.now() + settings.ACCESS_MAX_DURATION
    assert state == "failed" and "the role was removed in Auth0 again" in lost.note
    assert tenant_roles_of(devtenant, "ada@example.com") >= {"payments.viewer"}
    assert "payments.admin" not in tenant_roles_of(devtenant, "ada@example.com")
    assert AuditEvent.objects.filter(action="grant.failed", correlation_id=lost.correlation_id)


def test_an_owning_teams_approvers_narrow_who_of_its_members_decides_never_widen_it(
    devtenant: DevTenant,
    payments: None,
    tmp_path: Path,
) -> None:
    # payments' own entity names Alan (one of its members) and Ada (not one of them).
    (tmp_path / "ledger.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: ledger\n"
        "  annotations:\n    atrium.dev/required-roles: payments.admin\n"
        "    atrium.dev/approvers: user:alan, user:ada\n"
        "spec: {type: service, lifecycle: production, owner: team-payments}\n"
    )
    location_refresh(location=location_register(target=str(tmp_path / "ledger.yaml")))
    ada, as_ada = person_of_tenant(devtenant, "ada@example.com")
    grace, as_grace = person_of_tenant(devtenant, "grace@example.com")
    _, as_alan = local_person("alan@example.com", "auth0|alan")
    _, as_bob = local_person("bob@example.com", "auth0|bob")

    asked = ask(as_bob, "component:default/ledger", "payments.admin").json()
    by_ada = api(as_ada, f"requests/{asked['id']}/approve")
    by_grace = api(as_grace, f"requests/{asked['id']}/approve")
    by_alan = api(as_alan, f"requests/{asked['id']}/approve")

    assert by_ada.status_code == 404  # named, but not among the role's owners
    assert by_grace.status_code == 404  # an owner, but the entity narrowed it to Alan
    assert by_alan.status_code == 200 and by_alan.json()["state"] == "approved"


def test_a_decision_on_a_request_one_may_not_see_or_that_is_not_there_is_a_plain_404(
    devtenant: DevTenant,
    payments: None,
) -> None:
    ada, as_ada = person_of_tenant(devtenant, "ada@example.com")
    grace, as_grace = person_of_tenant(devtenant, "grace@example.com")
    _, as_bob = local_person("bob@example.com", "auth0|bob")
    asked = ask(as_ada, ENTITY, "payments.viewer").json()
    api(as_grace, f"requests/{asked['id']}/approve")
    htmx = {"HX-Request": "true"}

    page = as_bob.post(f"/access/approvals/{asked['id']}/", {"outcome": "denied"})
    fragment = as_bob.post(f"/access/approvals/{asked['id']}/", {"outcome": "denied"}, headers=htmx)
    missing = as_grace.post("/access/approvals/999999/", {"outcome": "denied"}, headers=htmx)

    assert (page.status_code, fragment.status_code, missing.status_code) == (404, 404, 404)
    assert "Grace" not in page.content.decode() + fragment.content.decode()
    assert AccessRequest.objects.get(pk=asked["id"]).state == "approved"
