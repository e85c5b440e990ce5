"""Reads of the access app."""

from __future__ import annotations

from access.models import RoleMembership
from portal.models import User


def role_memberships_of(*, user: User) -> list[RoleMembership]:
    return list(user.role_memberships.select_related("role").order_by("role__name"))
