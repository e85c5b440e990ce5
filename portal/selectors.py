"""Reads of the portal app."""

from portal.models import WorkerHeartbeat


def worker_heartbeat_latest() -> WorkerHeartbeat | None:
    return WorkerHeartbeat.objects.order_by("-last_seen_at").first()
