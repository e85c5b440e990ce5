"""Admin registrations of the portal app."""

from django.contrib import admin

from portal.models import User, WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin[WorkerHeartbeat]):
    list_display = ["hostname", "last_seen_at"]
    readonly_fields = ["hostname", "last_seen_at"]


@admin.register(User)
class UserAdmin(admin.ModelAdmin[User]):
    list_display = ["name", "email", "sub", "is_staff", "last_login"]
    search_fields = ["name", "email", "sub"]
    readonly_fields = ["sub", "last_login", "date_joined"]
    exclude = ["password"]
