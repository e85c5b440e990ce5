"""Mirroring Auth0's roles, against the devtenant over real HTTP."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
import requests
from django.core import mail
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from access.auth0 import Directory, DirectoryRole
from access.models import AccessRequest, AuditEvent, Role, RoleMembership, RoleSyncRun
from access.sync import SYNC_LOCK_KEY, SyncBusy, roles_sync
from devtenant.demo import demo_tenant
from portal.models import User
from tests.helpers import DevTenant, management, seed_members, tenant_ids

pytestmark = pytest.mark.django_db


def held(role: str) -> set[str]:
    return set(RoleMembership.objects.filter(role__name=role).values_list("user__email", flat=True))


def role_member_requests(devtenant: DevTenant, role_id: str) -> list[dict[str, Any]]:
    log = requests.get(devtenant.url("__admin/requests"), timeout=10).json()
    return [r for r in log if r["path"] == f"/api/v2/roles/{role_id}/users"]


def test_a_role_with_2500_members_is_read_in_checkpoint_pages(devtenant: DevTenant) -> None:
    seed_members(devtenant, "big.role", 2500)
    _, roles = tenant_ids(devtenant)

    report = roles_sync()

    assert report.outcome == RoleSyncRun.Outcome.OK
    assert len(held("big.role")) == 2500
    pages = role_member_requests(devtenant, roles["big.role"])
    assert len(pages) == 25 and all("page=" not in r["query"] for r in pages)
    assert all(r["status"] == 200 for r in pages)


def test_a_500_on_the_third_page_leaves_the_mirror_untouched(devtenant: DevTenant) -> None:
    seed_members(devtenant, "big.role", 250)
    roles_sync()
    users, roles = tenant_ids(devtenant)
    management(devtenant, "DELETE", f"users/{users['member-0@example.com']}/roles",
               {"roles": [roles["big.role"]]})  # fmt: skip
    devtenant.admin("faults", {"method": "GET", "path": f"/api/v2/roles/{roles['big.role']}/users",
                               "status": 500, "after": 2})  # fmt: skip
    before = set(RoleMembership.objects.values_list("user__sub", "role__name"))

    report = roles_sync(directory=Directory(retries=2))

    assert report.outcome == RoleSyncRun.Outcome.FAILED
    assert "500" in report.run.message and "gave up after 3 attempts" in report.run.message
    assert set(RoleMembership.objects.values_list("user__sub", "role__name")) == before
    assert "member-0@example.com" in held("big.role")


def test_a_storm_of_429s_is_absorbed(devtenant: DevTenant) -> None:
    seed_members(devtenant, "big.role", 150)
    devtenant.admin("faults", {"method": "GET", "path": "/api/v2/roles/*/users",
                               "status": 429, "times": 4})  # fmt: skip

    report = roles_sync()

    assert report.outcome == RoleSyncRun.Outcome.OK, report.run.message
    assert len(held("big.role")) == 150


def test_the_breaker_stops_a_mass_removal_and_force_applies_it(
    devtenant: DevTenant, settings: Any
) -> None:
    settings.ADMINS = []
    seed_members(devtenant, "big.role", 40)
    roles_sync()
    users, roles = tenant_ids(devtenant)
    for i in range(40):
        management(devtenant, "DELETE", f"users/{users[f'member-{i}@example.com']}/roles",
                   {"roles": [roles["big.role"]]})  # fmt: skip

    blocked = roles_sync()

    assert blocked.outcome == RoleSyncRun.Outcome.BLOCKED
    assert "would remove 40" in blocked.run.message and "--force" in blocked.run.message
    assert len(held("big.role")) == 40
    assert AuditEvent.objects.filter(action="sync.blocked").count() == 1
    assert [m.to for m in mail.outbox] == [["linus@example.com"]]  # the portal admin

    forced = roles_sync(force=True)

    assert forced.outcome == RoleSyncRun.Outcome.OK
    assert held("big.role") == set()


def test_drift_both_ways_is_mirrored_and_audited(devtenant: DevTenant) -> None:
    roles_sync()
    users, roles = tenant_ids(devtenant)
    assert "grace@example.com" in held("payments.admin")
    management(devtenant, "POST", f"users/{users['ada@example.com']}/roles",
               {"roles": [roles["platform.operator"]]})  # fmt: skip
    management(devtenant, "DELETE", f"users/{users['grace@example.com']}/roles",
               {"roles": [roles["payments.admin"]]})  # fmt: skip

    report = roles_sync()

    ada, grace = users["ada@example.com"], users["grace@example.com"]
    assert report.added == [(ada, "platform.operator")]
    assert report.removed == [(grace, "payments.admin")]
    assert "ada@example.com" in held("platform.operator")
    assert "grace@example.com" not in held("payments.admin")
    imported = AuditEvent.objects.get(action="role.imported", target=f"platform.operator → {ada}")
    assert imported.actor == "system" and imported.via == "sync"
    assert imported.detail["source"] == "granted outside the portal"
    assert AuditEvent.objects.filter(action="role.removed", target=f"payments.admin → {grace}")


def test_a_time_bound_grant_survives_an_import_and_one_auth0_lost_ends(
    devtenant: DevTenant,
) -> None:
    roles_sync()
    users, roles = tenant_ids(devtenant)
    ada = User.objects.get(email="ada@example.com")
    ends = timezone.now() + timedelta(days=7)
    for name in ("payments.viewer", "checkout.viewer"):
        role = Role.objects.get(name=name)
        RoleMembership.objects.update_or_create(
            user=ada, role=role,
            defaults={"source": RoleMembership.Source.PORTAL_GRANT, "expires_at": ends},
        )  # fmt: skip
        AccessRequest.objects.create(
            requester=ada, entity_ref="component:default/payments-api", role_name=name,
            reason="on call", duration=timedelta(days=7), state="active", expires_at=ends,
        )  # fmt: skip
    management(devtenant, "POST", f"users/{users['ada@example.com']}/roles",
               {"roles": [roles["payments.viewer"]]})  # fmt: skip
    management(devtenant, "DELETE", f"users/{users['ada@example.com']}/roles",
               {"roles": [roles["checkout.viewer"]]})  # fmt: skip

    roles_sync()

    kept = RoleMembership.objects.get(user=ada, role__name="payments.viewer")
    assert kept.source == RoleMembership.Source.PORTAL_GRANT and kept.expires_at == ends
    assert not RoleMembership.objects.filter(user=ada, role__name="checkout.viewer").exists()
    ended = AuditEvent.objects.get(action="grant.ended")
    assert ended.detail["reason"] == "removed in Auth0" and "checkout.viewer" in ended.target
    grants = dict(AccessRequest.objects.values_list("role_name", "state"))
    assert grants == {"payments.viewer": "active", "checkout.viewer": "revoked"}
    assert AccessRequest.objects.get(role_name="checkout.viewer").note == "removed in Auth0"


def test_a_role_deleted_in_auth0_is_marked_gone(devtenant: DevTenant, settings: Any) -> None:
    roles_sync()
    # The tenant as it would be with checkout.viewer deleted in Auth0's dashboard.
    tenant = demo_tenant(portal_base_url=settings.PORTAL_BASE_URL)
    tenant["roles"] = [r for r in tenant["roles"] if r["name"] != "checkout.viewer"]
    for user in tenant["users"]:
        user["roles"] = [r for r in user.get("roles", []) if r != "checkout.viewer"]
    devtenant.admin("reset")
    devtenant.admin("seed", tenant)

    roles_sync(force=True)

    assert Role.objects.get(name="checkout.viewer").gone_at is not None
    assert Role.objects.get(name="payments.viewer").gone_at is None
    assert held("checkout.viewer") == set()
    assert AuditEvent.objects.filter(action="role.gone", target="checkout.viewer").exists()


def test_a_repeated_sync_writes_nothing(devtenant: DevTenant) -> None:
    roles_sync()

    with CaptureQueriesContext(connection) as queries:
        report = roles_sync()

    assert report.added == [] and report.removed == []
    writes = [q["sql"] for q in queries.captured_queries
              if q["sql"].startswith(("INSERT", "UPDATE", "DELETE"))]  # fmt: skip
    assert writes and all('"access_rolesyncrun"' in sql for sql in writes), writes


def test_two_syncs_started_together_one_runs(devtenant: DevTenant) -> None:
    refused: list[Exception] = []

    class Meanwhile(Directory):
        def roles(self) -> list[DirectoryRole]:
            try:  # a second sync starts while this one reads
                roles_sync()
            except SyncBusy as busy:
                refused.append(busy)
            return super().roles()

    report = roles_sync(directory=Meanwhile())

    assert report.outcome == RoleSyncRun.Outcome.OK
    assert len(refused) == 1 and "another role sync is running" in str(refused[0])
    assert RoleSyncRun.objects.count() == 1


def test_a_lock_left_by_a_dead_worker_times_out(devtenant: DevTenant) -> None:
    cache.set(SYNC_LOCK_KEY, "a worker that died", timeout=1)
    with pytest.raises(SyncBusy):
        roles_sync()
    time.sleep(1.2)

    assert roles_sync().outcome == RoleSyncRun.Outcome.OK


def test_the_command_reports_a_dry_run_and_changes_nothing(
    devtenant: DevTenant, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("sync_roles", "--dry-run")

    out = capsys.readouterr().out
    assert "+ portal-admin → " in out
    assert "dry run: nothing applied" in out and "API calls" in out
    assert not RoleMembership.objects.exists()


class ReadBeforeThePortalActed(Directory):
    """Auth0 as it was when the sync began to read it: every role's members are read first,
    then the portal acts (`meanwhile`), then the sync gets the older answers."""

    def __init__(self, meanwhile: Any) -> None:
        super().__init__()
        self.meanwhile = meanwhile
        self.read: dict[str, Any] = {}

    def roles(self) -> list[DirectoryRole]:
        roles = super().roles()
        self.read = {role.id: super(ReadBeforeThePortalActed, self).role_members(role.id)
                     for role in roles}  # fmt: skip
        self.meanwhile()
        return roles

    def role_members(self, role_id: str) -> Any:
        return self.read[role_id]


def active_grant(devtenant: DevTenant, email: str, role: str) -> AccessRequest:
    """A portal grant as the worker leaves it: assigned in Auth0, in the mirror, active."""
    users, roles = tenant_ids(devtenant)
    management(devtenant, "POST", f"users/{users[email]}/roles", {"roles": [roles[role]]})
    person, _ = User.objects.get_or_create(sub=users[email], defaults={"email": email})
    RoleMembership.objects.update_or_create(
        user=person, role=Role.objects.get(name=role),
        defaults={"source": RoleMembership.Source.PORTAL_GRANT, "expires_at": None},
    )  # fmt: skip
    grant: AccessRequest = AccessRequest.objects.create(
        requester=person, entity_ref="component:default/payments-api", role_name=role,
        reason="on call", duration=timedelta(days=7), state="active",
    )  # fmt: skip
    return grant


def test_a_grant_revoked_while_the_sync_reads_auth0_is_not_brought_back(
    devtenant: DevTenant,
) -> None:
    from access.audit import SYSTEM
    from access.services import grant_end

    roles_sync()
    grant = active_grant(devtenant, "ada@example.com", "payments.viewer")
    roles_sync()  # the grant is in Auth0 and in the mirror: nothing to change
    assert "ada@example.com" in held("payments.viewer")
    directory = ReadBeforeThePortalActed(
        lambda: grant_end(request_id=grant.pk, actor=SYSTEM, revoke=True)
    )

    report = roles_sync(directory=directory)
    directory.close()

    assert report.outcome == RoleSyncRun.Outcome.OK
    assert report.added == []
    assert "ada@example.com" not in held("payments.viewer")
    assert "payments.viewer" not in {
        r["name"] for r in management(devtenant, "GET", f"users/{grant.requester.sub}/roles")
    }


def test_a_grant_made_active_while_the_sync_reads_auth0_is_not_taken_away(
    devtenant: DevTenant,
) -> None:
    roles_sync()
    made: list[AccessRequest] = []
    directory = ReadBeforeThePortalActed(
        lambda: made.append(active_grant(devtenant, "ada@example.com", "payments.viewer"))
    )

    report = roles_sync(directory=directory)
    directory.close()

    assert report.removed == []
    assert "ada@example.com" in held("payments.viewer")
    made[0].refresh_from_db()
    assert made[0].state == "active"
    # The next read sees Auth0 as it is now, and agrees.
    assert roles_sync().removed == []


def test_a_person_s_refresh_does_not_bring_back_a_grant_revoked_while_it_read(
    devtenant: DevTenant,
) -> None:
    from access.audit import SYSTEM
    from access.services import grant_end
    from access.sync import role_memberships_refresh_from_auth0

    roles_sync()
    grant = active_grant(devtenant, "ada@example.com", "payments.viewer")

    class ReadBeforeTheRevocation(Directory):
        def user_roles(self, user_id: str) -> list[DirectoryRole]:
            roles = super().user_roles(user_id)
            grant_end(request_id=grant.pk, actor=SYSTEM, revoke=True)
            return roles

    directory = ReadBeforeTheRevocation()
    outcome = role_memberships_refresh_from_auth0(
        user=grant.requester, actor=SYSTEM, directory=directory
    )
    directory.close()

    assert outcome.added == []
    assert "ada@example.com" not in held("payments.viewer")
