"""`seed_demo` writes the demo people into the devtenant's state, or says why it did not."""

import json
from io import StringIO
from pathlib import Path
from typing import Any

from django.core.management import call_command


def test_seed_demo_writes_the_three_demo_people(tmp_path: Path, settings: Any) -> None:
    settings.VAR_DIR = tmp_path
    out = StringIO()

    call_command("seed_demo", stdout=out)

    state = json.loads((tmp_path / "devtenant.json").read_text())
    emails = {user["email"] for user in state["users"].values()}
    assert emails == {"ada@example.com", "grace@example.com", "linus@example.com"}
    assert "linus@example.com" in out.getvalue()
    assert "atrium-demo" in out.getvalue()


def test_seed_demo_leaves_a_real_tenant_alone(tmp_path: Path, settings: Any) -> None:
    settings.VAR_DIR = tmp_path
    settings.USING_DEVTENANT = False
    out = StringIO()

    call_command("seed_demo", stdout=out)

    assert not (tmp_path / "devtenant.json").exists()
    assert "no people or roles were written" in out.getvalue()
