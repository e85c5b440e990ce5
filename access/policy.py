"""The one place that decides who may do what. Pages, the API, templates and tasks ask here."""

from __future__ import annotations

from django.conf import settings

from access.models import RoleMembership
from portal.auth.bearer import Principal
from portal.models import User


def is_portal_admin(user: User | None) -> bool:
    """Holds PORTAL_ADMIN_ROLE in the roles mirror (and it has not expired)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return (
        RoleMembership.objects.active()
        .filter(user=user, role__name=settings.PORTAL_ADMIN_ROLE)
        .exists()
    )


def may_register_locations(principal: Principal, user: User | None) -> bool:
    """Machines with `write:catalog`; people who administer the portal."""
    if principal.is_machine:
        return "write:catalog" in principal.scopes
    return "write:catalog" in principal.scopes and is_portal_admin(user)


def may_see_restricted(
    *,
    user: User | None,
    required_roles: list[str],
    owner_ref: str,
    held_roles: list[str],
    group_refs: list[str],
) -> bool:
    """Links, annotations, spec details and definitions of an entity: for holders of a required
    role, its owners and portal admins. An entity that requires no role is open to everyone.
    """
    if not required_roles:
        return True
    if set(required_roles) & set(held_roles):
        return True
    if owner_ref and owner_ref in group_refs:
        return True
    return is_portal_admin(user)
