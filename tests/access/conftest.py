"""Access fixtures: tasks run in-process, and the payments catalog with its owned roles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog.services import location_refresh, location_register
from portal.celery import app as celery_app
from tests.helpers import ALAN, PAYMENTS, own_role


@pytest.fixture
def eager_tasks() -> Iterator[None]:
    """Tasks run in-process when queued, so a test sees their whole effect (the worker test
    runs them in a real worker)."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def payments(tmp_path: Path) -> None:
    """The payments entities and people, with team-payments owning the payments roles."""
    own_role("payments.viewer", "team-payments")
    own_role("payments.admin", "team-payments")
    (tmp_path / "payments.yaml").write_text(PAYMENTS + "---\n" + ALAN)
    location_refresh(
        location=location_register(
            target=str(tmp_path / "payments.yaml"), allow_kinds=["User", "Group"]
        )
    )
