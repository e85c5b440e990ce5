"""Reads of the access app."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from access.models import Role, RoleMembership, in_force
from portal.models import User


def role_memberships_of(*, user: User) -> list[RoleMembership]:
    return list(user.role_memberships.select_related("role").order_by("role__name"))


def role_names_held(*, user: User) -> list[str]:
    """Names of the roles this person holds now."""
    if not user.is_authenticated:
        return []
    return sorted(
        RoleMembership.objects.active().filter(user=user).values_list("role__name", flat=True)
    )


def roles_with_member_counts() -> QuerySet[Role]:
    """Every mirrored role with `member_count`: the memberships in force now."""
    counted = Count("memberships", filter=in_force("memberships__"))
    return Role.objects.annotate(member_count=counted).order_by("name")


def role_members(*, role: Role) -> list[RoleMembership]:
    return list(
        RoleMembership.objects.active()
        .filter(role=role)
        .select_related("user")
        .order_by("user__email")
    )
