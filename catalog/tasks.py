"""Celery tasks of the catalog: every location is read again on an interval."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import transaction

from catalog.models import Location
from catalog.services import location_refresh
from portal.locks import lock_held

logger = logging.getLogger(__name__)

# A refresh holding its lock longer than this is taken to have died with its worker.
LOCK_SECONDS = 600


@shared_task
def catalog_locations_refresh_task() -> int:
    """Beat's entry point: one refresh task per location, so one slow location delays none."""
    location_ids = list(Location.objects.values_list("pk", flat=True))
    for location_id in location_ids:
        location_refresh_task.delay(location_id)
    return len(location_ids)


@shared_task
def location_refresh_task(location_id: int) -> str:
    # Two refreshes of one location never overlap; a lost worker's lock times out, and a
    # refresh that outlived its lock leaves the next one's alone.
    with lock_held(f"atrium:catalog:refresh:{location_id}", seconds=LOCK_SECONDS) as taken:
        if not taken:
            return "skipped: a refresh of this location is already running"
        location = Location.objects.filter(pk=location_id).first()
        if location is None:
            return "skipped: the location was removed"
        report = location_refresh(location=location)
        logger.info(
            "refreshed %s: %d added, %d updated, %d removed, %d problems",
            location.target,
            len(report.added),
            len(report.updated),
            len(report.removed),
            len(report.problems),
        )
        return report.location.last_outcome


def location_refresh_queue(*, location_id: int) -> None:
    """Have a worker read the location again, once the caller's transaction commits. The
    task's lock keeps two refreshes of one location from overlapping. It lives beside the task
    it queues: tasks call services, so services never import tasks."""
    transaction.on_commit(lambda: location_refresh_task.delay(location_id))
