"""Celery tasks of the portal app."""

from typing import Any

from celery import shared_task

from portal.services import worker_heartbeat_record


@shared_task(bind=True)
def worker_heartbeat_record_task(self: Any) -> None:
    # The worker that runs the task records itself, so the row says which workers are alive.
    worker_heartbeat_record(hostname=self.request.hostname or "unknown")
