"""Registering locations and validating entities through the API, as Backstage's API does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from access.models import AuditEvent
from catalog.models import Entity, GatewayRoute, Location
from tests.helpers import DevTenant, post_location, writer_token
from tests.portal.auth_helpers import sign_in

pytestmark = pytest.mark.django_db

DESCRIPTOR = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: payments-api}
spec: {type: service, lifecycle: production, owner: team-payments}
"""


def test_a_machine_with_write_catalog_registers_previews_and_removes_a_location(
    client: Client, devtenant: DevTenant, served: str, tmp_path: Path
) -> None:
    (tmp_path / "catalog-info.yaml").write_text(DESCRIPTOR)
    token = writer_token(devtenant, ["read:catalog", "write:catalog"])
    body = {"type": "url", "target": f"{served}/catalog-info.yaml"}

    preview = post_location(client, body, token, dryRun="true")
    assert preview.status_code == 201, preview.content
    assert [e["metadata"]["name"] for e in preview.json()["entities"]] == ["payments-api"]
    assert preview.json()["exists"] is False
    assert not Entity.objects.exists() and not Location.objects.exists()

    created = post_location(client, body, token)
    assert created.status_code == 201
    location = created.json()["location"]
    assert location["type"] == "url"
    assert location["target"] == body["target"]
    assert Entity.objects.filter(ref="component:default/payments-api").exists()

    again = post_location(client, body, token)
    assert again.status_code == 409
    assert again.json()["error"]["name"] == "ConflictError"

    listed = client.get("/api/catalog/locations", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert listed == [{"data": location}]

    removed = client.delete(
        f"/api/catalog/locations/{location['id']}", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert removed.status_code == 204
    assert not Entity.objects.exists()
    # Registered and removed, by the machine client, through the API: once each, not the preview.
    assert list(AuditEvent.objects.order_by("id").values_list("action", "actor", "via")) == [
        ("catalog.location_registered", "client:catalog-writer", "api"),
        ("catalog.location_removed", "client:catalog-writer", "api"),
    ]


def test_file_locations_are_not_registered_through_the_api(
    client: Client, devtenant: DevTenant
) -> None:
    token = writer_token(devtenant, ["write:catalog"])

    response = post_location(client, {"type": "file", "target": "/etc/passwd"}, token)

    assert response.status_code == 400
    assert "import_catalog" in response.json()["error"]["message"]


def test_a_machine_without_write_catalog_is_refused(client: Client, devtenant: DevTenant) -> None:
    token = writer_token(devtenant, ["read:catalog"])

    response = post_location(client, {"type": "url", "target": "http://127.0.0.1:1/x"}, token)

    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]


def test_only_portal_admins_register_from_the_browser_and_only_with_csrf(
    devtenant: DevTenant, served: str, tmp_path: Path
) -> None:
    (tmp_path / "catalog-info.yaml").write_text(DESCRIPTOR)
    body = {"type": "url", "target": f"{served}/catalog-info.yaml"}
    ada, linus = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    sign_in(ada, "ada@example.com")
    sign_in(linus, "linus@example.com")
    linus.get("/")  # the page sets the CSRF cookie that htmx sends back as a header

    refused = post_location(ada, body)
    no_csrf = post_location(linus, body)
    accepted = linus.post(
        "/api/catalog/locations",
        body,
        content_type="application/json",
        HTTP_X_CSRFTOKEN=linus.cookies["csrftoken"].value,
    )

    assert refused.status_code == 403
    assert no_csrf.status_code == 403
    assert "CSRF" in no_csrf.json()["error"]["message"]
    assert accepted.status_code == 201, accepted.content


def test_validate_entity_answers_as_backstage_does(client: Client, devtenant: DevTenant) -> None:
    token = writer_token(devtenant, ["read:catalog"])
    entity: dict[str, Any] = {
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": "payments-api"},
        "spec": {"type": "service", "lifecycle": "production", "owner": "team-payments"},
    }
    auth = {"Authorization": f"Bearer {token}"}

    valid = client.post(
        "/api/catalog/validate-entity",
        {"entity": entity, "location": "url:x"},
        content_type="application/json",
        headers=auth,
    )
    entity["metadata"]["name"] = "payments api"
    invalid = client.post(
        "/api/catalog/validate-entity",
        {"entity": entity, "location": "url:x"},
        content_type="application/json",
        headers=auth,
    )

    assert valid.status_code == 200
    assert invalid.status_code == 400
    assert invalid.json()["errors"][0]["message"].startswith(
        'Policy check failed; caused by Error: "metadata.name" is not valid'
    )


def test_file_locations_are_listed_as_files(client: Client, devtenant: DevTenant) -> None:
    from catalog.services import location_register

    location = location_register(target=str(Path(__file__)))
    token = writer_token(devtenant, ["read:catalog"])

    listed = client.get("/api/catalog/locations", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    one = client.get(f"/api/catalog/locations/{location.pk}", HTTP_AUTHORIZATION=f"Bearer {token}")

    # A path on the server is for those who may register locations (test_refresh_and_paths).
    assert listed == [{"data": {"id": str(location.pk), "type": "file",
                                "target": "(a path on the Atrium server, shown to portal admins)",
                                "allowKinds": [], "allowRoutes": False}}]  # fmt: skip
    assert one.json()["type"] == "file"


def test_removing_an_entity_by_uid_lasts_until_its_location_is_read_again(
    client: Client, devtenant: DevTenant, tmp_path: Path
) -> None:
    """As Backstage's: the entity goes, and its location brings it back (a new uid) on the
    next refresh while it still emits it. Recorded in the audit log."""
    from catalog.services import location_refresh, location_register

    (tmp_path / "catalog-info.yaml").write_text(DESCRIPTOR)
    location = location_register(target=str(tmp_path / "catalog-info.yaml"))
    location_refresh(location=location)
    uid = str(Entity.objects.get(name="payments-api").uid)
    auth = {"Authorization": f"Bearer {writer_token(devtenant, ['read:catalog', 'write:catalog'])}"}

    removed = client.delete(f"/api/catalog/entities/by-uid/{uid}", headers=auth)
    gone = client.get(f"/api/catalog/entities/by-uid/{uid}", headers=auth)
    again = client.delete(f"/api/catalog/entities/by-uid/{uid}", headers=auth)
    location_refresh(location=location)
    back = client.get("/api/catalog/entities/by-name/component/default/payments-api", headers=auth)

    assert removed.status_code == 204
    assert gone.status_code == 404
    assert again.status_code == 204  # nothing left to remove is not an error, as in Backstage
    assert back.status_code == 200
    assert back.json()["metadata"]["uid"] != uid
    assert list(AuditEvent.objects.values_list("action", "target", "actor", "via")) == [
        ("catalog.entity_removed", "component:default/payments-api", "client:catalog-writer",
         "api"),
    ]  # fmt: skip


def test_only_catalog_writers_remove_entities(
    client: Client, devtenant: DevTenant, tmp_path: Path
) -> None:
    from catalog.services import location_refresh, location_register

    (tmp_path / "catalog-info.yaml").write_text(DESCRIPTOR)
    location_refresh(location=location_register(target=str(tmp_path / "catalog-info.yaml")))
    path = f"/api/catalog/entities/by-uid/{Entity.objects.get(name='payments-api').uid}"
    reader = writer_token(devtenant, ["read:catalog"])
    ada = Client(enforce_csrf_checks=True)
    sign_in(ada, "ada@example.com")
    ada.get("/")

    by_reader = client.delete(path, HTTP_AUTHORIZATION=f"Bearer {reader}")
    by_ada = ada.delete(path, HTTP_X_CSRFTOKEN=ada.cookies["csrftoken"].value)

    assert by_reader.status_code == by_ada.status_code == 403
    assert by_reader.json()["error"]["name"] == by_ada.json()["error"]["name"] == "NotAllowedError"
    assert by_ada.json()["error"]["message"] == "removing entities is for portal admins"
    assert Entity.objects.filter(name="payments-api").exists()
    assert not AuditEvent.objects.filter(action__startswith="catalog.").exists()


USER = """\
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: grace}
spec: {profile: {email: grace@example.com}, memberOf: [team-payments]}
"""


def test_allow_kinds_lets_a_registered_url_define_people(
    client: Client, devtenant: DevTenant, served: str, tmp_path: Path
) -> None:
    (tmp_path / "org.yaml").write_text(DESCRIPTOR + USER)
    (tmp_path / "other.yaml").write_text(DESCRIPTOR.replace("payments-api", "ledger") + USER)
    token = writer_token(devtenant, ["read:catalog", "write:catalog"])
    allowed = {"type": "url", "target": f"{served}/org.yaml", "allowKinds": ["User", "Group"]}

    created = post_location(client, allowed, token)
    plain = post_location(client, {"type": "url", "target": f"{served}/other.yaml"}, token)

    assert created.status_code == plain.status_code == 201
    assert created.json()["location"]["allowKinds"] == ["User", "Group"]
    assert created.json()["problems"] == []
    assert Entity.objects.get(ref="user:default/grace").location.target == allowed["target"]
    assert plain.json()["location"]["allowKinds"] == []
    assert [e["metadata"]["name"] for e in plain.json()["entities"]] == ["ledger"]
    assert plain.json()["problems"] == [
        f"{served}/other.yaml:2: NotAllowedError: User entities may not come from the location "
        f"{served}/other.yaml; a portal admin can allow User and Group for it"
    ]
    one = client.get(
        f"/api/catalog/locations/{created.json()['location']['id']}",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert one.json()["allowKinds"] == ["User", "Group"]
    assert [event.detail["allow_kinds"] for event in AuditEvent.objects.order_by("id")] == [
        ["User", "Group"],
        [],
    ]


def test_a_kind_that_cannot_be_allowed_is_an_input_error(
    client: Client, devtenant: DevTenant, served: str, tmp_path: Path
) -> None:
    (tmp_path / "org.yaml").write_text(DESCRIPTOR + USER)
    token = writer_token(devtenant, ["write:catalog"])
    body = {"type": "url", "target": f"{served}/org.yaml", "allowKinds": ["User", "Template"]}

    response = post_location(client, body, token)

    assert response.status_code == 400
    assert response.json()["error"]["name"] == "InputError"
    assert response.json()["error"]["message"].startswith(
        "'Template' is not a kind a location can be allowed: only User and Group can be"
    )
    assert not Location.objects.exists() and not Entity.objects.exists()


def test_a_location_registered_through_the_api_may_be_allowed_gateway_routes(
    client: Client, devtenant: DevTenant, served: str, tmp_path: Path
) -> None:
    annotation = '{atrium.dev/gateway-routes: "GET pay.example/v1/*"}'
    routed = DESCRIPTOR.replace(
        "metadata: {name: payments-api}",
        f"metadata: {{name: payments-api, annotations: {annotation}}}",
    )
    assert routed != DESCRIPTOR
    (tmp_path / "routed.yaml").write_text(routed)
    token = writer_token(devtenant, ["read:catalog", "write:catalog"])
    body = {"type": "url", "target": f"{served}/routed.yaml", "allowRoutes": True}

    created = post_location(client, body, token)

    assert created.status_code == 201, created.content
    assert created.json()["location"]["allowRoutes"] is True
    assert created.json()["problems"] == []
    assert [str(route) for route in GatewayRoute.objects.all()] == ["GET pay.example/v1/*"]
    (event,) = AuditEvent.objects.filter(action="catalog.location_registered")
    assert event.detail["allow_routes"] is True
