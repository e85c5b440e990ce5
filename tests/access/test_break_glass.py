"""Break-glass: a member of the allowed group grants themselves a role at once, for a short
time, saying why; every owner and admin is told at once, by mail and Slack; the timeline shows
it in red and in words; never a protected role, never an outsider."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from access.audit import SYSTEM, Actor
from access.models import AccessRequest, AccessReview, AuditEvent, Role
from tests.factories import RoleFactory, RoleMembershipFactory, UserFactory
from tests.helpers import (
    CHECKOUT,
    LEDGER,
    DevTenant,
    catalog_add,
    own_role,
    person_of_tenant,
    signed_in,
    tenant_roles_of,
    text,
)

pytestmark = pytest.mark.django_db
GLASS = {"group": "team-checkout", "maxDuration": "PT1H"}


@pytest.fixture
def glass(payments: None, tmp_path: Path) -> None:
    """team-checkout may break glass into payments.admin for an hour; Linus administers."""
    catalog_add(tmp_path / "checkout.yaml", CHECKOUT)
    own_role("payments.admin", "team-payments", breakGlass=GLASS)
    linus = UserFactory.create(email="linus@example.com", name="Linus Torvalds")
    RoleMembershipFactory.create(user=linus, role=RoleFactory.create(name="portal-admin"))


def break_glass(client: Client, **extra: str) -> Any:
    form = {"entity": LEDGER, "role": "payments.admin", "reason": "Card payments down, INC-7",
            "duration": "PT1H", **extra}  # fmt: skip
    return client.post("/access/requests/break-glass/", form, follow=True)


def test_break_glass_from_start_to_end(
    devtenant: DevTenant,
    glass: None,
    eager_tasks: None,
    slack: list[dict[str, Any]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    ada, as_ada = person_of_tenant(devtenant, "ada@example.com")
    form = text(as_ada.get(f"/access/requests/new/?entity={LEDGER}").content)

    with django_capture_on_commit_callbacks(execute=True):
        page = break_glass(as_ada)

    assert "Break glass: payments.admin now" in form
    assert "at most 1 hour" in form
    request = AccessRequest.objects.get()
    assert (request.kind, request.state) == ("break_glass", "active")
    assert (request.expires_at - request.starts_at).total_seconds() == 3600  # type: ignore[operator]
    assert "payments.admin" in tenant_roles_of(devtenant, "ada@example.com")
    shown = page.content.decode()
    said = text(page.content)
    assert "Break-glass: payments.admin is being granted to you now, for 1 hour" in said
    assert "Break-glass: taken at once without a decision" in said
    # The timeline says it in words and marks it in red.
    assert '<li class="timeline-break-glass"><span class="timeline-what">Break-glass: taken at' in (
        shown
    )
    assert "Card payments down, INC-7" in said
    # Every owner and every admin, at once, by mail and by Slack.
    alarm = [m for m in mail.outbox if "BREAK-GLASS" in m.subject]
    assert [m.subject for m in alarm] == ["[Atrium] BREAK-GLASS: Ada took payments.admin"]
    assert sorted(alarm[0].to) == ["alan@example.com", "grace@example.com", "linus@example.com"]
    assert "review this use, and confirm it or revoke it" in alarm[0].body
    link = f"/access/requests/{request.pk}/"
    assert any(h["text"].startswith("[Atrium] BREAK-GLASS: Ada took payments.admin — ")
               and h["text"].endswith(link) for h in slack)  # fmt: skip
    assert [e.action for e in AuditEvent.objects.filter(
        correlation_id=request.correlation_id).order_by("id")] == [
        "request.break_glass", "grant.activated", "request.review_opened",
    ]  # fmt: skip

    # A review of this use is open for the owners, Ada's holding flagged as break-glass.
    review = AccessReview.objects.get()
    assert (review.kind, review.request_id, review.role.name) == ("use", request.pk,
                                                                  "payments.admin")  # fmt: skip
    item = review.items.get()
    assert (item.user_id, item.flagged, item.flags) == (ada.pk, True, ["break_glass"])
    assert (item.source, item.request_id) == ("portal_grant", request.pk)  # held, as granted
    again = text(as_ada.get(f"/access/requests/{request.pk}/").content)
    assert "Review of the use opened" in again
    assert f"Review {review.pk} of this use: flagged, waiting for the owners" in again
    told = [m for m in mail.outbox if "review" in m.subject.lower() and "BREAK" not in m.subject]
    assert told and {"alan@example.com", "grace@example.com"} <= set(told[0].to)
    # It ends on time, as any grant: in Auth0 and in the portal.
    AccessRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        call_command("expire_grants", stdout=open("/dev/null", "w"))  # noqa: SIM115
    request.refresh_from_db()
    assert request.state == "expired"
    assert "payments.admin" not in tenant_roles_of(devtenant, "ada@example.com")
    assert ada.role_memberships.count() == 0


def test_the_owners_revoke_a_break_glass_use_in_its_review(
    devtenant: DevTenant,
    glass: None,
    eager_tasks: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from access.reviews import ItemDecision, review_decide

    _, as_ada = person_of_tenant(devtenant, "ada@example.com")
    grace, _ = person_of_tenant(devtenant, "grace@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        break_glass(as_ada)
    item = AccessReview.objects.get().items.get()

    with django_capture_on_commit_callbacks(execute=True):
        decided = review_decide(
            review_id=item.review_id, reviewer=grace, actor=Actor(grace.sub),
            decisions=[ItemDecision(item.pk, "remove", "No incident on record")],
        )  # fmt: skip

    assert decided.done == 1
    request = AccessRequest.objects.get()
    assert request.state == "revoked"
    assert "payments.admin" not in tenant_roles_of(devtenant, "ada@example.com")
    page = text(as_ada.get(f"/access/requests/{request.pk}/").content)
    assert "of this use: revoked by the owners" in page
    assert "No incident on record" in page


def test_an_outsider_is_refused_and_offered_nothing(glass: None) -> None:
    outsider = signed_in("barbara@example.com")

    form = text(outsider.get(f"/access/requests/new/?entity={LEDGER}").content)
    refused = text(break_glass(outsider).content)
    body = {"entityRef": LEDGER, "role": "payments.admin", "reason": "x", "breakGlass": True}
    api = outsider.post("/api/access/requests", body, content_type="application/json")

    assert "Break glass" not in form
    assert (
        "Break-glass refused: Only members of group:default/team-checkout may break glass for "
        "payments.admin." in refused
    )
    assert api.status_code == 400
    assert not AccessRequest.objects.exists()


def test_a_reason_is_required_and_the_cap_holds(glass: None) -> None:
    as_ada = Client()
    as_ada.force_login(UserFactory.create(email="ada@example.com"))

    blank = text(break_glass(as_ada, reason=" ").content)
    longer = as_ada.post("/api/access/requests", {"entityRef": LEDGER, "role": "payments.admin",
                         "reason": "x", "duration": "PT2H", "breakGlass": True},
                         content_type="application/json")  # fmt: skip

    assert "Say why you break glass" in blank
    assert (
        longer.json()["error"]["message"] == "Break-glass lasts at most 1 hour for payments.admin."
    )
    assert not AccessRequest.objects.exists()


def test_never_for_a_protected_role_in_the_registry_nor_at_use(
    glass: None, devtenant: DevTenant, tmp_path: Path
) -> None:
    from access.registry import RegistryError, registry_entry_parse
    from access.services import role_registry_set

    linus = signed_in("linus2@example.com", "portal-admin")
    admin_role = Role.objects.get(name="portal-admin")
    by_page = linus.post("/access/roles/portal-admin/", {
        "requestable": "on", "min_approvals": "1", "break_glass_group": "team-checkout",
        "break_glass_max_duration": "PT1H",
    })  # fmt: skip
    with pytest.raises(RegistryError, match="protected"):
        role_registry_set(role=admin_role, entry=registry_entry_parse({"breakGlass": GLASS}),
                          actor=SYSTEM)  # fmt: skip
    roles_file = tmp_path / "roles.yaml"
    roles_file.write_text("- role: portal-admin\n  breakGlass: {group: team-checkout, "
                          "maxDuration: PT1H}\n")  # fmt: skip
    with pytest.raises(Exception, match="protected"):
        call_command("import_roles", str(roles_file), stdout=open("/dev/null", "w"))  # noqa: SIM115

    assert "protected: never granted, even in an emergency" in by_page.content.decode()
    admin_role.refresh_from_db()
    assert admin_role.break_glass is None

    # Set behind the registry's back (by hand in the database): refused when used all the same.
    Role.objects.filter(name="portal-admin").update(
        break_glass={"group": "group:default/team-checkout", "maxDuration": "PT1H"},
        owners=["group:default/team-payments"],
    )
    catalog_add(tmp_path / "admin.yaml", "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
                "metadata:\n  name: console\n  annotations: {atrium.dev/required-roles: "
                "portal-admin}\nspec: {type: service, lifecycle: production, owner: "
                "team-payments}\n")  # fmt: skip
    as_ada = Client()
    as_ada.force_login(UserFactory.create(email="ada@example.com"))
    refused = text(break_glass(as_ada, entity="component:default/console",
                               role="portal-admin").content)  # fmt: skip
    assert "Break-glass refused: portal-admin is protected" in refused
    assert not AccessRequest.objects.exists()


def test_a_waiting_request_for_the_role_is_replaced_by_the_break_glass_grant(glass: None) -> None:
    as_ada = Client()
    as_ada.force_login(UserFactory.create(email="ada@example.com"))
    as_ada.post("/access/requests/new/", {"entity": LEDGER, "role": "payments.admin",
                                          "reason": "Month end", "duration": "P1D"})  # fmt: skip

    break_glass(as_ada)

    states = dict(AccessRequest.objects.values_list("kind", "state"))
    assert states == {"decided": "cancelled", "break_glass": "approved"}
