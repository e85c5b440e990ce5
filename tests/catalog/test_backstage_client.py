"""Backstage's own `@backstage/catalog-client`, from npm, reads Atrium's catalog over HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from catalog.services import location_refresh, location_register
from devtenant.demo import AUTOMATION_CLIENT_ID, AUTOMATION_CLIENT_SECRET, PORTAL_AUDIENCE
from portal.management.commands.seed_demo import DEMO_CATALOG
from tests.helpers import DevTenant

CLIENT_DIR = Path(__file__).resolve().parents[1] / "backstage_client"
pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def read_with_backstage_client(base_url: str, token: str) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None or not (CLIENT_DIR / "node_modules" / "@backstage" / "catalog-client").exists():
        pytest.fail("run `npm ci` in tests/backstage_client (make test does) and install Node.js")
    finished = subprocess.run(
        [node, "read_catalog.mjs", base_url, token],
        cwd=CLIENT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stderr
    result: dict[str, Any] = json.loads(finished.stdout)
    return result


def read_demo_catalog(live_server: Any, devtenant: DevTenant) -> dict[str, Any]:
    """The demo catalog, read by the client with an automation client's token."""
    location_refresh(
        location=location_register(target=str(DEMO_CATALOG), allow_kinds=["User", "Group"])
    )
    token = devtenant.token(
        grant_type="client_credentials",
        client_id=AUTOMATION_CLIENT_ID,
        client_secret=AUTOMATION_CLIENT_SECRET,
        audience=PORTAL_AUDIENCE,
    )
    return read_with_backstage_client(live_server.url, token)


def test_backstages_catalog_client_reads_the_catalog(
    live_server: Any, devtenant: DevTenant
) -> None:
    read = read_demo_catalog(live_server, devtenant)

    assert read["experimental"] == ["log-pipeline", "payouts-service"]
    assert read["experimentalKeys"] == ["kind", "metadata"]
    assert read["payments"]["name"] == "payments-api"
    assert read["payments"]["uid"]
    assert read["payments"]["owner"] == "team-payments"
    # A machine holds no role: it sees what everyone sees of a restricted entity.
    assert read["payments"]["relations"] == ["ownedBy group:default/team-payments"]
    assert read["missing"] is None
    assert read["totalItems"] == 10
    assert read["firstPage"] == [
        "cart-service",
        "checkout-web",
        "identity-gateway",
        "ledger-service",
    ]
    assert read["secondPage"] == [
        "log-pipeline",
        "metrics-collector",
        "payments-api",
        "payments-worker",
    ]
    assert read["byRefs"] == ["events", None, "team-data"]
    assert {f["value"]: f["count"] for f in read["facets"]["kind"]} == {
        "Component": 4, "API": 1, "Resource": 1, "System": 1,
    }  # fmt: skip
    assert "payments-api" in read["search"] and "metrics-collector" not in read["search"]


def test_backstages_catalog_client_uses_the_newer_query_features(
    live_server: Any, devtenant: DevTenant
) -> None:
    """Offsets, predicate queries and their cursors, facets by predicate, by-refs filters,
    full-text fields, ordering by any field, locations, ancestry, and errors it can name."""
    read = read_demo_catalog(live_server, devtenant)

    assert read["offsetPage"] == ["identity-gateway", "ledger-service"]
    # The machine may see no restricted entity's details: to it they have no lifecycle.
    assert read["predicate"] == {
        "first": ["payouts-service"],
        "next": ["log-pipeline"],
        "totalItems": 2,
    }
    assert {f["value"]: f["count"] for f in read["predicateFacets"]["kind"]} == {
        "Component": 5, "API": 2, "Resource": 3, "System": 2,
    }  # fmt: skip
    assert read["filteredRefs"] == ["events", None, None]
    assert read["ownerSearch"] == ["kafka-cluster", "warehouse-bucket"]
    assert read["byDisplayName"] == ["acme", "ada", "alan", "barbara"]
    # The automation client reads the catalog only: where its files lie is not for it.
    assert read["location"] == {
        "type": "file",
        "target": "(a path on the Atrium server, shown to portal admins)",
    }
    assert read["ancestry"] == {
        "root": "api:default/events",
        "items": [["events", ["location:default/acme-demo"]], ["acme-demo", []]],
    }
    assert read["arrayFields"] == {
        "status": 400,
        "name": "InputError",
        "message": "invalid fields, array type fields are not supported",
    }
    assert read["removal"]["status"] == 403
    assert read["removal"]["name"] == "NotAllowedError"
