"""`seed_demo` writes the demo people into the devtenant's state, or says why it did not."""

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from catalog.models import Entity

pytestmark = pytest.mark.django_db


def test_seed_demo_writes_the_three_demo_people(tmp_path: Path, settings: Any) -> None:
    settings.VAR_DIR = tmp_path
    out = StringIO()

    call_command("seed_demo", stdout=out)

    state = json.loads((tmp_path / "devtenant.json").read_text())
    emails = {user["email"] for user in state["users"].values()}
    assert emails == {"ada@example.com", "grace@example.com", "linus@example.com"}
    assert "linus@example.com" in out.getvalue()
    assert "atrium-demo" in out.getvalue()


def test_seed_demo_registers_the_demo_catalog(tmp_path: Path, settings: Any) -> None:
    settings.VAR_DIR = tmp_path

    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())  # twice changes nothing

    payments = Entity.objects.get(ref="component:default/payments-api")
    assert payments.owner_ref == "group:default/team-payments"
    assert [r.role_name for r in payments.required_role_rows.all()] == [
        "payments.admin",
        "payments.viewer",
    ]
    assert Entity.objects.count() >= 30
    assert set(Entity.objects.values_list("kind", flat=True)) >= {
        "Component", "API", "Resource", "System", "Domain", "Group", "User", "Location",
    }  # fmt: skip
    assert (
        Entity.objects.get(ref="api:default/payments")
        .descriptor["spec"]["definition"]
        .startswith("openapi: 3.0.0")
    )


def test_seed_demo_leaves_a_real_tenant_alone(tmp_path: Path, settings: Any) -> None:
    settings.VAR_DIR = tmp_path
    settings.USING_DEVTENANT = False
    out = StringIO()

    call_command("seed_demo", stdout=out)

    assert not (tmp_path / "devtenant.json").exists()
    assert "no people or roles were written" in out.getvalue()
