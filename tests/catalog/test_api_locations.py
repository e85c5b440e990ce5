"""Registering locations and validating entities through the API, as Backstage's API does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from access.models import AuditEvent
from catalog.models import Entity, Location
from devtenant.demo import PORTAL_AUDIENCE
from tests.conftest import DevTenant
from tests.portal.auth_helpers import sign_in

pytestmark = pytest.mark.django_db

DESCRIPTOR = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: payments-api}
spec: {type: service, lifecycle: production, owner: team-payments}
"""


def writer_token(devtenant: DevTenant, scopes: list[str]) -> str:
    devtenant.admin(
        "seed",
        {
            "clients": [
                {
                    "client_id": "catalog-writer",
                    "client_secret": "s3cret",
                    "name": "Catalog writer",
                    "app_type": "non_interactive",
                    "grant_types": ["client_credentials"],
                    "client_grants": {PORTAL_AUDIENCE: scopes},
                }
            ]
        },
    )
    return devtenant.token(
        grant_type="client_credentials",
        client_id="catalog-writer",
        client_secret="s3cret",
        audience=PORTAL_AUDIENCE,
    )


def post_location(client: Client, body: dict[str, Any], token: str = "", **query: str) -> Any:
    path = "/api/catalog/locations" + ("?" + "&".join(f"{k}={v}" for k, v in query.items()))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(path, body, content_type="application/json", headers=headers)


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
