"""The portal's own records: when each Celery worker last proved it was running."""

from django.db import models


class WorkerHeartbeat(models.Model):
    """One row per worker host, touched by a beat-scheduled task that a worker executes."""

    hostname = models.CharField(max_length=255, unique=True)
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self) -> str:
        return f"{self.hostname} at {self.last_seen_at:%Y-%m-%d %H:%M:%S}"
