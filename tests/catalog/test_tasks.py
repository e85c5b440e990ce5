"""Locations are read again on an interval, one task per location, never two at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.cache import cache

from catalog.models import Entity, Location
from catalog.services import location_refresh, location_register
from catalog.tasks import catalog_locations_refresh_task, location_refresh_task
from portal.celery import app as celery_app

pytestmark = pytest.mark.django_db

DESCRIPTOR = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {{name: {name}}}
spec: {{type: service, lifecycle: production, owner: team-a}}
"""


def test_beat_refreshes_every_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "catalog.tasks.catalog_locations_refresh_task" in {
        entry["task"] for entry in celery_app.conf.beat_schedule.values()
    }
    descriptor = tmp_path / "catalog-info.yaml"
    descriptor.write_text(DESCRIPTOR.format(name="payments-api"))
    location = location_register(target=str(descriptor))
    location_refresh(location=location)
    descriptor.write_text(DESCRIPTOR.format(name="ledger-api"))
    # Dispatch is recorded rather than sent, so no worker elsewhere picks the message up.
    sent: list[int] = []
    monkeypatch.setattr(location_refresh_task, "delay", sent.append)

    queued = catalog_locations_refresh_task.apply().get()
    outcome = location_refresh_task.apply(args=(location.pk,)).get()

    assert queued == 1
    assert sent == [location.pk]
    assert outcome == Location.Outcome.OK
    assert list(Entity.objects.values_list("name", flat=True)) == ["ledger-api"]
    location.refresh_from_db()
    assert location.last_refreshed_at is not None


def test_a_refresh_already_running_is_not_started_twice(tmp_path: Path) -> None:
    location = location_register(target=str(tmp_path))
    cache.add(f"atrium:catalog:refresh:{location.pk}", "held", 60)
    try:
        outcome = location_refresh_task.apply(args=(location.pk,)).get()
    finally:
        cache.delete(f"atrium:catalog:refresh:{location.pk}")

    assert outcome.startswith("skipped")
    location.refresh_from_db()
    assert location.last_refreshed_at is None
