"""Admin registrations of the portal app."""

from django.contrib import admin

from portal.models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin[WorkerHeartbeat]):
    list_display = ["hostname", "last_seen_at"]
    readonly_fields = ["hostname", "last_seen_at"]
