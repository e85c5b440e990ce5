"""The one place that decides who may do what. Pages, the API, templates and tasks ask here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q

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


@dataclass(frozen=True)
class Viewer:
    """What the policy needs to know of whoever is looking, gathered once per request."""

    held_roles: frozenset[str] = frozenset()
    group_refs: frozenset[str] = frozenset()
    is_admin: bool = False

    def may_see_restricted(self, *, required_roles: Iterable[str], owner_ref: str) -> bool:
        """Links, annotations, spec details and definitions of an entity: for holders of a
        required role, its owners and portal admins. An entity that requires no role is open.
        """
        required = set(required_roles)
        if not required or required & self.held_roles or self.is_admin:
            return True
        return bool(owner_ref) and owner_ref in self.group_refs

    def may_see_restricted_q(self) -> Q:
        """The same rule as a filter on catalog entities, for lists of them."""
        from catalog.models import EntityRequiredRole

        if self.is_admin:
            return Q()
        holds_a_required_role = EntityRequiredRole.objects.filter(
            role_name__in=self.held_roles
        ).values("entity_id")
        return (
            Q(restricted=False) | Q(pk__in=holds_a_required_role) | Q(owner_ref__in=self.group_refs)
        )


def viewer_for(user: User | None) -> Viewer:
    """A person's roles, groups and admin standing; a machine client (None) has none of them."""
    from access.selectors import role_names_held
    from catalog.selectors import person_group_refs

    if user is None or not user.is_authenticated:
        return Viewer()
    held = frozenset(role_names_held(user=user))
    return Viewer(
        held_roles=held,
        group_refs=frozenset(person_group_refs(user=user)),
        is_admin=settings.PORTAL_ADMIN_ROLE in held,
    )
