"""`GET /api/access/roles` and `/roles/{name}/members`, as SPEC shapes them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from access.models import Role, RoleMembership
from tests.helpers import signed_in

pytestmark = pytest.mark.django_db


def test_roles_list_counts_only_memberships_in_force() -> None:
    client = signed_in("ada@example.com", "engineer")
    signed_in("grace@example.com", "engineer")
    ended = RoleMembership.objects.get(user__email="grace@example.com")
    ended.expires_at = timezone.now() - timedelta(minutes=1)
    ended.save()
    Role.objects.create(name="payments.viewer", description="Reads payments")

    body = client.get("/api/access/roles").json()

    assert body == {
        "items": [
            {"name": "engineer", "description": "", "memberCount": 1},
            {"name": "payments.viewer", "description": "Reads payments", "memberCount": 0},
        ]
    }


def test_portal_admins_see_a_roles_members_with_source_and_expiry() -> None:
    admin = signed_in("linus@example.com", "portal-admin")
    signed_in("ada@example.com", "engineer")

    body = admin.get("/api/access/roles/engineer/members").json()

    assert body == {
        "items": [
            {"sub": "auth0|ada@example.com", "email": "ada@example.com", "name": "Ada",
             "source": "sign_in", "expiresAt": None}
        ]
    }  # fmt: skip
    missing = admin.get("/api/access/roles/nope/members")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "No role 'nope' in the portal's mirror"


def test_people_who_are_not_admins_cannot_list_members() -> None:
    response = signed_in("ada@example.com", "engineer").get("/api/access/roles/engineer/members")

    assert response.status_code == 403
    assert response.json()["error"]["name"] == "NotAllowedError"
