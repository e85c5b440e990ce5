"""Access requests, grants, the roles mirror and the audit log in Django's admin: for reading.
Decisions, grants and the sync go through access/services.py and access/sync.py, which write
the audit log with each change; the audit log itself is append-only."""

from typing import Any

from django.contrib import admin
from django.urls import reverse

from access.models import (
    AccessRequest,
    AccessReview,
    AuditEvent,
    Decision,
    Role,
    RoleMembership,
    RoleSyncRun,
)
from portal.admin import ReadOnlyAdmin, ReadOnlyInline


@admin.register(Role)
class RoleAdmin(ReadOnlyAdmin):
    list_display = ["name", "description", "requestable", "min_approvals", "auth0_id", "gone_at"]
    list_filter = ["requestable"]
    search_fields = ["name", "description"]

    def view_on_site(self, obj: Any) -> str:
        return reverse("access:role_detail", args=[obj.name])


@admin.register(RoleMembership)
class RoleMembershipAdmin(ReadOnlyAdmin):
    """Who holds which role: from sign-in tokens, Auth0 itself, or a grant of the portal."""

    list_display = ["role", "user", "source", "expires_at", "created_at"]
    list_filter = ["source", "role"]
    search_fields = ["user__name", "user__email", "user__sub", "role__name"]
    list_select_related = ["role", "user"]


class DecisionInline(ReadOnlyInline):
    model = Decision
    fields = ["approver", "outcome", "comment", "at"]


@admin.register(AccessRequest)
class AccessRequestAdmin(ReadOnlyAdmin):
    """Requests and the grants they became, with each approver's decision."""

    list_display = [
        "id", "role_name", "entity_ref", "requester", "state", "created_at", "decided_at",
        "expires_at",
    ]  # fmt: skip
    list_display_links = ["id", "role_name"]
    list_filter = ["state", "role_name"]
    search_fields = ["role_name", "entity_ref", "requester__name", "requester__email", "reason"]
    list_select_related = ["requester"]
    date_hierarchy = "created_at"
    inlines = [DecisionInline]

    def view_on_site(self, obj: Any) -> str:
        return reverse("access:request_detail", args=[obj.pk])


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
    list_display = ["at", "actor_name", "actor_email", "actor", "via", "action", "target"]
    list_filter = ["via", "action"]
    search_fields = ["actor", "actor_name", "actor_email", "target", "correlation_id"]


@admin.register(AccessReview)
class AccessReviewAdmin(ReadOnlyAdmin):
    """Access reviews; their holders and decisions are on the review's own page and evidence."""

    list_display = ["id", "role", "kind", "reason", "opened_at", "due_at", "completed_at"]
    list_filter = ["kind", "role"]
    list_select_related = ["role"]
    date_hierarchy = "opened_at"

    def view_on_site(self, obj: Any) -> str:
        return reverse("access:review_detail", args=[obj.pk])
