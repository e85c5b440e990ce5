"""Portal admins register a location from a page, after a preview; others may not."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from access.models import AuditEvent
from catalog.models import Entity, Location
from tests.helpers import PEOPLE, signed_in

pytestmark = pytest.mark.django_db
DESCRIPTOR = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: payments-api}
spec: {type: service, lifecycle: production, owner: team-payments}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: broken one}
spec: {type: service, lifecycle: production, owner: team-payments}
"""


def test_an_admin_previews_then_registers_and_sees_the_outcome(served: str, tmp_path: Path) -> None:
    (tmp_path / "catalog-info.yaml").write_text(DESCRIPTOR)
    admin = signed_in("linus@example.com", "portal-admin")
    target = f"{served}/catalog-info.yaml"

    preview = admin.post("/catalog/locations/", {"target": target, "action": "preview"})

    page = preview.content.decode()
    assert "1 entity would be in the catalog, with 1 problem." in page
    assert "default/payments-api" in page
    assert "&quot;metadata.name&quot; is not valid" in page
    assert not Location.objects.exists() and not Entity.objects.exists()

    registered = admin.post(
        "/catalog/locations/", {"target": target, "action": "register"}, follow=True
    )

    page = registered.content.decode()
    assert f"Registered {target}: 1 entities, 1 problems." in page
    assert "refreshed, with problems" in page
    assert Entity.objects.filter(name="payments-api").exists()
    recorded = AuditEvent.objects.get()
    assert (recorded.action, recorded.actor, recorded.target) == (
        "catalog.location_registered",
        "auth0|linus@example.com",
        target,
    )


def test_a_non_url_target_is_refused_with_a_message() -> None:
    admin = signed_in("linus@example.com", "portal-admin")

    response = admin.post(
        "/catalog/locations/", {"target": "file:///etc/passwd", "action": "preview"}
    )

    assert response.status_code == 200
    assert "Enter a valid URL." in response.content.decode()
    assert not Location.objects.exists()


def test_people_who_are_not_admins_may_not_register() -> None:
    response = signed_in("ada@example.com").get("/catalog/locations/")

    assert response.status_code == 403


def test_people_and_groups_are_refused_unless_the_box_is_ticked(
    served: str, tmp_path: Path
) -> None:
    (tmp_path / "org.yaml").write_text(PEOPLE)
    admin = signed_in("linus@example.com", "portal-admin")
    target = f"{served}/org.yaml"
    box = "This location holds people and groups (may define User and Group entities)"

    unticked = admin.post("/catalog/locations/", {"target": target, "action": "preview"})
    ticked = admin.post(
        "/catalog/locations/", {"target": target, "holds_people": "on", "action": "preview"}
    )

    page = unticked.content.decode()
    assert box in page
    assert "0 entities would be in the catalog, with 2 problems." in page
    assert "User and Group entities in it are refused." in page
    assert (
        f"NotAllowedError: User entities may not come from the location {target}; "
        "a portal admin can allow User and Group for it"
    ) in page
    page = ticked.content.decode()
    assert "2 entities would be in the catalog." in page
    # Without JavaScript, the preview's form is the one that registers: the box stays ticked.
    assert re.search(r'<input type="checkbox" name="holds_people"[^>]* checked>', page)

    registered = admin.post(
        "/catalog/locations/",
        {"target": target, "holds_people": "on", "action": "register"},
        follow=True,
    )

    assert "Registered" in registered.content.decode()
    assert "<td>User, Group</td>" in registered.content.decode()
    assert Entity.objects.filter(ref="user:default/grace").exists()
    assert Location.objects.get().allow_kinds == ["User", "Group"]
    assert AuditEvent.objects.get().detail["allow_kinds"] == ["User", "Group"]


ROUTED = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments-api
  annotations:
    atrium.dev/gateway-routes: GET payments.internal.example/v1/*
spec: {type: service, lifecycle: production, owner: team-payments}
"""


def test_gateway_routes_are_refused_unless_their_box_is_ticked(served: str, tmp_path: Path) -> None:
    (tmp_path / "routed.yaml").write_text(ROUTED)
    admin = signed_in("linus@example.com", "portal-admin")
    target = f"{served}/routed.yaml"

    unticked = admin.post("/catalog/locations/", {"target": target, "action": "preview"})
    ticked = admin.post(
        "/catalog/locations/", {"target": target, "declares_routes": "on", "action": "preview"}
    )

    page = unticked.content.decode()
    assert "Its entities may declare gateway routes (atrium.dev/gateway-routes)" in page
    assert "Gateway routes its entities declare are refused." in page
    assert "1 entity would be in the catalog, with 1 problem." in page
    page = ticked.content.decode()
    assert "Its entities may declare gateway routes." in page
    assert "1 entity would be in the catalog." in page
    assert re.search(r'<input type="checkbox" name="declares_routes"[^>]* checked>', page)

    registered = admin.post(
        "/catalog/locations/",
        {"target": target, "declares_routes": "on", "action": "register"},
        follow=True,
    )

    assert "<td>allowed</td>" in registered.content.decode()
    assert Location.objects.get().allows_routes
    assert str(Entity.objects.get().gateway_routes.get()) == "GET payments.internal.example/v1/*"
    assert AuditEvent.objects.get().detail["allow_routes"] is True
