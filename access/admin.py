"""The mirror and the audit log in Django's admin: for reading. The sync and the grant jobs own
the rows, so nobody edits them here, and the audit log is append-only."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from access.models import AuditEvent, Role, RoleMembership, RoleSyncRun


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Role)
class RoleAdmin(ReadOnlyAdmin):
    list_display = ["name", "description", "auth0_id", "gone_at"]
    search_fields = ["name", "description"]


@admin.register(RoleMembership)
class RoleMembershipAdmin(ReadOnlyAdmin):
    list_display = ["role", "user", "source", "expires_at", "created_at"]
    list_filter = ["source", "role"]
    search_fields = ["user__email", "user__sub", "role__name"]
    list_select_related = ["role", "user"]


@admin.register(RoleSyncRun)
class RoleSyncRunAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "finished_at",
        "outcome",
        "roles",
        "added",
        "removed",
        "api_calls",
    ]
    list_filter = ["outcome"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor", "via", "action", "target", "correlation_id"]
    list_filter = ["via", "action"]
    search_fields = ["actor", "target", "correlation_id"]
