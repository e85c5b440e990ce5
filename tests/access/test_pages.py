"""My access, "Refresh my roles" against the devtenant, and the admins' Roles pages."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from access.models import AuditEvent, Role, RoleMembership, RoleSyncRun
from access.sync import roles_sync
from catalog.services import location_refresh, location_register
from devtenant.demo import demo_tenant
from portal.models import User
from tests.helpers import (
    DevTenant,
    ada_of_the_tenant,
    ask,
    management,
    seed_members,
    signed_in,
    tenant_ids,
    text,
)
from tests.portal.auth_helpers import machine_token

pytestmark = pytest.mark.django_db


def test_my_access_lists_my_roles_with_source_and_end() -> None:
    client = signed_in("ada@example.com", "engineer")
    ada = User.objects.get(email="ada@example.com")
    viewer = Role.objects.create(name="payments.viewer")
    RoleMembership.objects.create(
        user=ada, role=viewer, source=RoleMembership.Source.PORTAL_GRANT,
        expires_at=timezone.now() + timedelta(days=3, hours=1, minutes=30),
    )  # fmt: skip
    ended = Role.objects.create(name="checkout.viewer")
    RoleMembership.objects.create(
        user=ada, role=ended, source=RoleMembership.Source.PORTAL_GRANT,
        expires_at=timezone.now() - timedelta(minutes=1),
    )  # fmt: skip

    page = text(client.get("/access/").content)

    assert "engineer from your last sign-in" in page
    assert "payments.viewer granted through Atrium" in page
    assert "in 3 days" in page
    assert "checkout.viewer" not in page  # ended: no longer held


def test_my_requests_name_the_entity_by_its_title_linked_to_its_page(payments: None) -> None:
    client = signed_in("ada@example.com")
    ask(client)

    html = client.get("/access/").content.decode()

    assert '<a href="/catalog/default/component/payments-api/">Payments API</a>' in html
    assert "component:default/payments-api" not in html


def test_my_access_is_for_people_who_signed_in(client: Client) -> None:
    response = client.get("/access/")

    assert response.status_code == 302
    assert response["Location"].startswith("/auth/login/?next=/access/")


def test_refresh_my_roles_follows_auth0_both_ways(devtenant: DevTenant) -> None:
    ada, client = ada_of_the_tenant(devtenant)
    users, roles = tenant_ids(devtenant)
    management(
        devtenant, "POST", f"users/{users['ada@example.com']}/roles",
        {"roles": [roles["payments.viewer"]]},
    )  # fmt: skip

    refreshed = client.post("/access/refresh/", follow=True)

    page = text(refreshed.content)
    assert "Your roles were refreshed from Auth0: added checkout.viewer; added engineer; " in page
    assert "payments.viewer Read access to the payments services granted in Auth0 directly" in page
    imported = AuditEvent.objects.filter(action="role.imported", actor=ada.sub, via="web")
    assert imported.count() == 3

    management(
        devtenant, "DELETE", f"users/{users['ada@example.com']}/roles",
        {"roles": [roles["payments.viewer"]]},
    )  # fmt: skip
    page = text(client.post("/access/refresh/", follow=True).content)

    assert "removed payments.viewer (no longer held in Auth0)" in page
    assert "payments.viewer" not in page.split("My roles", 1)[1]
    assert not ada.role_memberships.filter(role__name="payments.viewer").exists()
    assert text(client.post("/access/refresh/", follow=True).content).count("already match") == 1


def test_refresh_my_roles_changes_nothing_when_auth0_fails(devtenant: DevTenant) -> None:
    ada, client = ada_of_the_tenant(devtenant)
    role = Role.objects.create(name="payments.admin")
    RoleMembership.objects.create(user=ada, role=role, source=RoleMembership.Source.AUTH0)
    devtenant.admin("faults", {"method": "GET", "path": "/api/v2/users/*/roles", "status": 500})

    page = text(client.post("/access/refresh/", follow=True).content)

    assert "Auth0 could not tell us your roles, so nothing changed" in page
    assert list(ada.role_memberships.values_list("role__name", flat=True)) == ["payments.admin"]
    assert not AuditEvent.objects.exists()


def test_refresh_my_roles_is_a_post_with_csrf(devtenant: DevTenant) -> None:
    ada, _ = ada_of_the_tenant(devtenant)
    client = Client(enforce_csrf_checks=True)
    client.force_login(ada)

    assert client.get("/access/refresh/").status_code == 405
    assert client.post("/access/refresh/").status_code == 403
    assert not ada.role_memberships.exists()


def test_the_roles_page_is_for_portal_admins() -> None:
    assert signed_in("ada@example.com", "engineer").get("/access/roles/").status_code == 403
    ada_nav = signed_in("grace@example.com").get("/").content.decode()
    assert 'href="/access/roles/"' not in ada_nav


def test_admins_see_roles_counts_members_and_the_sync_history(devtenant: DevTenant) -> None:
    seed_members(devtenant, "big.role", 60)
    roles_sync()
    admin = signed_in("linus@example.com", "portal-admin")

    page = text(admin.get("/access/roles/").content)

    assert "Last synced with Auth0" in page and "stale" not in page
    assert "big.role — 60 0" in page  # name, description, members, entities that declare it
    assert "payments.viewer Read access to the payments services 0 0" in page
    assert re.search(r"applied 7 6[0-9] 0 \d+", page)  # roles, added, removed, API calls
    members = text(admin.get("/access/roles/big.role/", {"page": 2}).content)
    assert "Page 2 of 2 · 60 members" in members
    assert "member-9@example.com" in members and "granted in Auth0 directly" in members


def test_a_role_deleted_in_auth0_is_flagged_with_the_entities_that_require_it(
    devtenant: DevTenant, tmp_path: Path, settings: Any
) -> None:
    (tmp_path / "ledger.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: ledger\n"
        "  annotations: {atrium.dev/required-roles: ledger.viewer}\n"
        "spec: {type: service, lifecycle: production, owner: team-payments}\n"
    )
    location_refresh(location=location_register(target=str(tmp_path / "ledger.yaml")))
    devtenant.admin("seed", {"roles": [{"name": "ledger.viewer"}]})
    roles_sync()
    # The tenant as it is once ledger.viewer was deleted in Auth0's dashboard.
    devtenant.admin("reset")
    devtenant.admin("seed", demo_tenant(portal_base_url=settings.PORTAL_BASE_URL))
    roles_sync()
    admin = signed_in("linus@example.com", "portal-admin")

    listing = text(admin.get("/access/roles/").content)
    detail = text(admin.get("/access/roles/ledger.viewer/").content)

    assert "ledger.viewer deleted in Auth0" in listing
    assert "This role was deleted in Auth0" in detail
    assert "Entities that require it ledger" in detail
    assert (
        'title="component:default/ledger"'
        in admin.get("/access/roles/ledger.viewer/").content.decode()
    )
    ada = signed_in("ada@example.com")
    entity_page = text(ada.get("/catalog/default/component/ledger/").content)
    assert "ledger.viewer Deleted in Auth0: nobody can be granted it" in entity_page
    assert "Request access" not in entity_page


def test_admins_are_told_on_every_page_when_the_breaker_stopped_the_sync() -> None:
    RoleSyncRun.objects.create(
        outcome=RoleSyncRun.Outcome.BLOCKED, finished_at=timezone.now(),
        message="the sync would remove 40 of 45 memberships",
    )  # fmt: skip
    admin = signed_in("linus@example.com", "portal-admin")
    ada = signed_in("ada@example.com", "engineer")

    assert "stopped by its breaker" in text(admin.get("/catalog/").content)
    assert "would remove 40 of 45" in text(admin.get("/").content)
    assert "stopped by its breaker" not in text(ada.get("/catalog/").content)

    RoleSyncRun.objects.create(outcome=RoleSyncRun.Outcome.OK, finished_at=timezone.now())
    assert "stopped by its breaker" not in text(admin.get("/catalog/").content)


def test_a_machine_client_with_read_access_lists_a_roles_members(
    client: Client, devtenant: DevTenant
) -> None:
    signed_in("ada@example.com", "engineer")
    token = machine_token(devtenant)

    body = client.get(
        "/api/access/roles/engineer/members", HTTP_AUTHORIZATION=f"Bearer {token}"
    ).json()
    narrow = client.get(
        "/api/access/roles/engineer/members",
        HTTP_AUTHORIZATION=f"Bearer {machine_token(devtenant, scope='read:catalog')}",
    )

    assert [item["email"] for item in body["items"]] == ["ada@example.com"]
    assert narrow.status_code == 403


def test_the_django_admin_is_for_portal_admins_and_the_mirror_is_read_only() -> None:
    admin = signed_in("linus@example.com", "portal-admin")
    ada = signed_in("ada@example.com", "engineer")

    assert admin.get("/admin/access/rolemembership/").status_code == 200
    assert admin.get("/admin/access/auditevent/add/").status_code == 403
    assert ada.get("/admin/", follow=True).status_code == 403
