"""Django's admin, branded as Atrium's, for reading what the portal holds.

Who reaches it is the access policy's answer (portal admins: see `portal/urls.py`). What it
shows is read-only: requests, grants, the mirror, the catalog and the audit log change only
through the portal's services, which write the audit event with each change; an edit here
would leave no trace in the log.
"""

from typing import Any

from django.contrib import admin
from django.contrib.auth.models import Group
from django.http import HttpRequest

from access.viewers import viewers_changed
from portal.models import User, WorkerHeartbeat

admin.site.site_header = "Atrium administration"
admin.site.site_title = "Atrium administration"
admin.site.site_url = "/"
# Permissions are the access policy's (access/backends.py): Django's groups would grant nothing.
admin.site.unregister(Group)


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """Lists, filters and searches rows; adds, changes and deletes none."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline[Any, Any]):
    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ["hostname", "last_seen_at"]


@admin.register(User)
class UserAdmin(admin.ModelAdmin[User]):
    """People come from sign-in, their name and e-mail from Auth0 at each one: only whether
    the account is active is the portal's to change (an inactive one's sessions end)."""

    list_display = ["name", "email", "sub", "is_active", "auth0_state", "last_login"]
    list_filter = ["is_active", "auth0_state"]
    search_fields = ["name", "email", "sub"]
    fields = [
        "name", "email", "email_verified", "sub", "is_active", "auth0_state", "last_login",
        "date_joined",
    ]  # fmt: skip
    readonly_fields = [
        "name", "email", "email_verified", "sub", "auth0_state", "last_login", "date_joined",
    ]  # fmt: skip

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        # The gateways keep whether a person is active with their roles (access.gateway).
        super().save_model(request, obj, form, change)
        viewers_changed()
