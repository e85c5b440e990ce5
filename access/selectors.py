"""Reads of the access app."""

from __future__ import annotations

from access.models import RoleMembership
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
