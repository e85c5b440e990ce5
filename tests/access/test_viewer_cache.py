"""A person's viewer is kept between requests (access.viewers), and every change that decides
what they may see takes effect at their next request all the same."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from access.models import RoleMembership
from access.sync import role_memberships_record_from_token
from catalog.services import location_refresh, location_register
from portal.models import User
from tests.factories import RoleFactory, RoleMembershipFactory
from tests.helpers import signed_in

pytestmark = pytest.mark.django_db

PAYMENTS_API = "/api/catalog/entities/by-name/component/default/payments-api"


def sees_links(client: Any) -> bool:
    return "links" in client.get(PAYMENTS_API).json()["metadata"]


def tables_read(client: Any) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(PAYMENTS_API).status_code == 200
    return [query["sql"].split(" FROM ")[1].split()[0] for query in queries]


def kept_in_redis() -> None:
    """Viewers are kept only in a cache every process shares (access.viewers)."""
    if not settings.CACHES["default"].get("LOCATION", "").startswith("redis"):
        pytest.skip("set REDIS_URL to keep viewers in Redis (CI does)")


def test_the_second_call_reads_no_roles_or_identity_again(demo_catalog: None) -> None:
    kept_in_redis()
    client = signed_in("grace@example.com", "payments.viewer")

    first, second = tables_read(client), tables_read(client)

    # Roles held, the catalog User by e-mail and that User's groups: kept after the first call.
    assert '"access_rolemembership"' in first and '"access_rolemembership"' not in second
    assert first.count('"catalog_relation"') == second.count('"catalog_relation"') + 1
    assert len(second) == len(first) - 3
    assert sees_links(client)


def test_a_revoked_membership_stops_counting_at_the_next_call(demo_catalog: None) -> None:
    client = signed_in("bob@example.com", "payments.viewer")
    assert sees_links(client)

    RoleMembership.objects.filter(role__name="payments.viewer").delete()

    assert not sees_links(client)


def test_a_membership_granted_counts_at_the_next_call(demo_catalog: None) -> None:
    client = signed_in("bob@example.com")
    assert not sees_links(client)

    bob = User.objects.get(email="bob@example.com")
    RoleMembershipFactory.create(user=bob, role=RoleFactory.create(name="payments.viewer"))

    assert sees_links(client)


def test_roles_seen_at_sign_in_count_at_once_and_go_with_the_next_token(
    demo_catalog: None,
) -> None:
    client = signed_in("bob@example.com")
    bob = User.objects.get(email="bob@example.com")
    assert not sees_links(client)

    role_memberships_record_from_token(user=bob, role_names=["payments.viewer"])
    assert sees_links(client)

    role_memberships_record_from_token(user=bob, role_names=[])
    assert not sees_links(client)


def test_a_grant_that_ends_stops_counting_when_it_ends(
    demo_catalog: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = signed_in("bob@example.com")
    bob = User.objects.get(email="bob@example.com")
    ends = timezone.now() + timedelta(minutes=5)
    RoleMembershipFactory.create(
        user=bob,
        role=RoleFactory.create(name="payments.viewer"),
        source=RoleMembership.Source.PORTAL_GRANT,
        expires_at=ends,
    )
    assert sees_links(client)

    later = ends + timedelta(seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)

    assert not sees_links(client)


def test_a_refresh_that_moves_a_person_out_of_the_owning_team_takes_their_view(
    tmp_path: Path,
) -> None:
    RoleFactory.create(name="payments.viewer")
    catalog = tmp_path / "catalog.yaml"

    def write(members: str) -> None:
        catalog.write_text(
            f"""apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments-api
  links: [{{url: "https://runbooks.example.com/payments-api"}}]
  annotations: {{atrium.dev/required-roles: payments.viewer}}
spec: {{type: service, lifecycle: production, owner: team-payments}}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {{name: team-payments}}
spec: {{type: team, children: [], members: [{members}]}}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {{name: grace}}
spec: {{profile: {{email: grace@example.com}}, memberOf: []}}
"""
        )

    write("grace")
    location = location_register(target=str(catalog), allow_kinds=["User", "Group"])
    location_refresh(location=location)
    grace = signed_in("grace@example.com")
    assert sees_links(grace)

    write("")
    location_refresh(location=location)

    assert not sees_links(grace)


def test_an_unreachable_cache_reads_the_database_and_keeps_the_rules(
    demo_catalog: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.cache import caches

    kept_in_redis()

    def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("the cache is down")

    holder = signed_in("bob@example.com", "payments.viewer")
    outsider = signed_in("ada@example.com")
    assert sees_links(holder)
    for method in ("get_many", "get", "set", "add"):
        monkeypatch.setattr(caches["default"], method, down)

    assert sees_links(holder) and not sees_links(outsider)
    RoleMembership.objects.filter(role__name="payments.viewer").delete()
    assert not sees_links(holder)


def test_a_bulk_removal_makes_kept_viewers_stale_once_not_once_a_row(
    demo_catalog: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from access import viewers

    client = signed_in("bob@example.com", "payments.viewer", "checkout.viewer", "engineer")
    assert sees_links(client)
    bumps: list[None] = []
    forget = viewers.viewers_forget_all

    def counted() -> None:
        bumps.append(None)
        forget()

    monkeypatch.setattr(viewers, "viewers_forget_all", counted)

    # The next token names none of the three: the sign-in's bulk delete removes them all.
    role_memberships_record_from_token(
        user=User.objects.get(email="bob@example.com"), role_names=[]
    )

    assert not sees_links(client)
    # Once for the three rows together (its second, on commit, waits for the test's
    # transaction, which never commits); a bump a row would be three.
    assert len(bumps) == 1
