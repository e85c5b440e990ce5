"""Writes of the portal app."""

from django.db import transaction
from django.utils import timezone

from portal.models import WorkerHeartbeat


@transaction.atomic
def worker_heartbeat_record(*, hostname: str) -> WorkerHeartbeat:
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"last_seen_at": timezone.now()}
    )
    return heartbeat
