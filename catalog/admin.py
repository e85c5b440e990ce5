"""Locations and entities in Django's admin: for reading. Registration and refreshes go through
catalog/services.py, which writes the audit log; an entity changes only when its descriptor does."""

from typing import Any

from django.contrib import admin

from catalog.models import Entity, EntityRequiredRole, GatewayRoute, Location
from catalog.refs import parse_entity_ref
from portal.admin import ReadOnlyAdmin, ReadOnlyInline


@admin.register(Location)
class LocationAdmin(ReadOnlyAdmin):
    list_display = [
        "target", "last_outcome", "last_refreshed_at", "allows_users", "allows_groups",
        "allows_routes", "created_at",
    ]  # fmt: skip
    list_filter = ["last_outcome", "allows_users", "allows_groups", "allows_routes"]
    search_fields = ["target"]


class GatewayRouteInline(ReadOnlyInline):
    model = GatewayRoute
    fields = ["methods", "host", "path", "audience", "claimed_at"]


class RequiredRoleInline(ReadOnlyInline):
    model = EntityRequiredRole
    fields = ["role_name"]
    verbose_name = "required role"


@admin.register(Entity)
class EntityAdmin(ReadOnlyAdmin):
    list_display = ["ref", "title", "kind", "spec_type", "lifecycle", "owner_ref", "restricted"]
    list_filter = ["kind", "lifecycle", "restricted", "spec_type"]
    search_fields = ["ref", "title", "description", "owner_ref"]
    list_select_related = ["location"]
    exclude = ["search_vector"]
    inlines = [RequiredRoleInline, GatewayRouteInline]

    def view_on_site(self, obj: Any) -> str:
        return parse_entity_ref(obj.ref).url
