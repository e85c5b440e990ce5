"""The OPA bundle: routes and holders for gateways that decide locally, with ETag and 304."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from access.models import RoleMembership
from tests.factories import RoleFactory, RoleMembershipFactory
from tests.helpers import DevTenant, payments_with_routes, person_of_tenant, signed_in
from tests.portal.auth_helpers import client_token, machine_token

pytestmark = pytest.mark.django_db

BUNDLE = "/api/authz/bundle.tar.gz"


@pytest.fixture
def routes(tmp_path: Path, devtenant: DevTenant) -> None:
    payments_with_routes(tmp_path)


def files_of(content: bytes) -> dict[str, Any]:
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as archive:
        return {
            member.name: json.load(archive.extractfile(member))  # type: ignore[arg-type]
            for member in archive.getmembers()
        }


def test_a_machine_gets_routes_and_holders_and_a_304_while_nothing_changed(
    routes: None, devtenant: DevTenant
) -> None:
    ada, _ = person_of_tenant(devtenant, "ada@example.com")
    grant = RoleMembershipFactory.create(
        user=ada, role=RoleFactory.create(name="payments.viewer"),
        source=RoleMembership.Source.PORTAL_GRANT,
    )  # fmt: skip
    RoleMembershipFactory.create(user=ada, role=RoleFactory.create(name="checkout.viewer"))
    token = machine_token(devtenant)

    response = Client().get(BUNDLE, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/gzip"
    files = files_of(response.content)
    assert set(files) == {".manifest", "atrium/routes/data.json", "atrium/holders/data.json"}
    assert files[".manifest"] == {"revision": response["ETag"].strip('"'), "roots": ["atrium"]}
    assert files["atrium/routes/data.json"][0] == {
        "host": "payments.internal.example", "path": "/admin/*", "prefix": "/admin/",
        "methods": [], "entity": "component:default/payments-api",
        "audience": "https://payments.internal.example/api",
        "roles": ["payments.admin", "payments.viewer"], "restricted": True,
    }  # fmt: skip
    # Only the roles some route requires: Ada's checkout.viewer is none of the gateways' business.
    assert files["atrium/holders/data.json"] == {ada.sub: {"payments.viewer": None}}

    again = Client().get(BUNDLE, HTTP_AUTHORIZATION=f"Bearer {token}",
                         HTTP_IF_NONE_MATCH=response["ETag"])  # fmt: skip
    assert again.status_code == 304
    assert again["ETag"] == response["ETag"]

    grant.delete()
    changed = Client().get(BUNDLE, HTTP_AUTHORIZATION=f"Bearer {token}",
                           HTTP_IF_NONE_MATCH=response["ETag"])  # fmt: skip
    assert changed.status_code == 200
    assert changed["ETag"] != response["ETag"]
    assert files_of(changed.content)["atrium/holders/data.json"] == {}


def test_people_other_than_portal_admins_may_not_download_everyone_s_roles(
    routes: None, devtenant: DevTenant
) -> None:
    refused = signed_in("ada@example.com").get(BUNDLE)
    assert refused.status_code == 403
    assert "for machines and portal admins" in refused.json()["error"]["message"]

    assert signed_in("linus@example.com", "portal-admin").get(BUNDLE).status_code == 200


def test_a_machine_needs_read_catalog_and_read_access(routes: None, devtenant: DevTenant) -> None:
    token = client_token(devtenant, ["read:catalog"])

    response = Client().get(BUNDLE, HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == 403
    assert response.json()["error"]["message"] == "this request needs the scope read:access"
