"""The one place that decides who may do what. Pages, the API, templates and tasks ask here.

Every answer starts from a `Viewer`: a person's roles (from the mirror), the catalog Users and
groups they are, and whether they administer the portal, read once per request. The Django
authentication backend in `access.backends` gives the same answers to `user.has_perm(...)`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Exists, OuterRef, Q

from portal.auth.bearer import Principal
from portal.models import User

# The permissions `user.has_perm` answers from this module (see access.backends).
ADMINISTER_PORTAL = "access.administer_portal"
SEE_RESTRICTED = "catalog.see_restricted"  # with the Entity
REQUEST_ACCESS = "access.request_access"  # with the Entity


# Who owns what is for everyone, as the owner field is; every other relation is a detail of
# the entity that declared it (its origin), wherever it is shown.
PUBLIC_RELATIONS = ("ownedBy", "ownerOf")


@dataclass(frozen=True)
class Viewer:
    """What the policy needs to know of whoever is looking, gathered once per request."""

    sub: str = ""
    held_roles: frozenset[str] = frozenset()
    user_refs: frozenset[str] = frozenset()
    group_refs: frozenset[str] = frozenset()
    is_admin: bool = False

    @property
    def owner_refs(self) -> frozenset[str]:
        """What an entity's `spec.owner` names when this person owns it: one of their groups,
        or the catalog User that is them (Backstage allows either as owner)."""
        return self.user_refs | self.group_refs

    def may_see_restricted(self, *, required_roles: Iterable[str], owner_ref: str) -> bool:
        """Links, annotations, spec details and definitions of an entity: for holders of a
        required role, its owners and portal admins. An entity that requires no role is open.
        """
        required = set(required_roles)
        if not required or required & self.held_roles or self.is_admin:
            return True
        return bool(owner_ref) and owner_ref in self.owner_refs

    def may_see_restricted_q(self) -> Q:
        """The same rule as a filter on catalog entities, for lists of them."""
        from catalog.models import EntityRequiredRole

        if self.is_admin:
            return Q()
        holds_a_required_role = EntityRequiredRole.objects.filter(
            role_name__in=self.held_roles
        ).values("entity_id")
        return (
            Q(restricted=False) | Q(pk__in=holds_a_required_role) | Q(owner_ref__in=self.owner_refs)
        )

    def may_see_relation_q(self) -> Q:
        """The relations (catalog.Relation) this person may see, on any page or in the API:
        ownership, and those declared by an entity whose details they may see, by the rule
        of `may_see_restricted_q` asked of the relation's origin. `kafka-cluster dependencyOf
        payments-api` comes from payments-api's `dependsOn`, a detail of payments-api."""
        from catalog.models import EntityRequiredRole

        if self.is_admin:
            return Q()
        visible = Q(type__in=PUBLIC_RELATIONS) | Q(origin__restricted=False)
        if self.held_roles:
            # Asked per relation through the index on (entity, role): a page's relations are
            # a few dozen, where the entities holding a role may be tens of thousands.
            holds = EntityRequiredRole.objects.filter(
                entity_id=OuterRef("origin_id"), role_name__in=self.held_roles
            )
            visible |= Q(Exists(holds))
        if self.owner_refs:
            visible |= Q(origin__owner_ref__in=self.owner_refs)
        return visible

    def may_request(self, *, role: str, required_roles: Iterable[str]) -> bool:
        """A signed-in person may ask for a role the entity declares and they do not hold."""
        return bool(self.sub) and role in set(required_roles) and role not in self.held_roles

    def is_decider(self, *, deciders: Iterable[str]) -> bool:
        """One of the catalog Users or groups named to decide (approvers, else the owner)."""
        named = set(deciders)
        return bool(named & self.user_refs or named & self.group_refs)

    def may_decide(
        self,
        *,
        requester_sub: str,
        deciders: Iterable[str],
        others_can_decide: bool,
        role_still_declared: bool,
        blocked: bool = False,
    ) -> bool:
        """May this person approve or deny a request?

        Never the requester, whatever roles they hold. Otherwise the people the entity names
        (`atrium.dev/approvers`, else its owner group), and portal admins when none of those
        can decide. Nobody decides a request for a role the entity no longer declares, or on
        an entity whose approval annotations are malformed (they fail closed).
        """
        if not self.sub or self.sub == requester_sub or blocked or not role_still_declared:
            return False
        if self.is_decider(deciders=deciders):
            return True
        return self.is_admin and not others_can_decide


def is_portal_admin(user: User | None) -> bool:
    """Holds PORTAL_ADMIN_ROLE in the roles mirror (and it has not expired)."""
    return viewer_for(user).is_admin


def may_register_locations(principal: Principal, user: User | None) -> bool:
    """Machines with `write:catalog`; people who administer the portal."""
    if principal.is_machine:
        return "write:catalog" in principal.scopes
    return "write:catalog" in principal.scopes and is_portal_admin(user)


# Kept on the user object for the rest of the request (as Django's ModelBackend keeps its
# permission cache), so a page asks for a person's roles and groups once however much it shows.
_VIEWER_ATTRIBUTE = "_atrium_viewer"
ANONYMOUS = Viewer()


def viewer_for(user: User | None) -> Viewer:
    """A person's roles, groups and admin standing; a machine client (None) has none of them."""
    from access.selectors import role_names_held
    from catalog.selectors import person_refs

    if user is None or not user.is_authenticated or not user.is_active:
        return ANONYMOUS
    cached: Viewer | None = getattr(user, _VIEWER_ATTRIBUTE, None)
    if cached is not None:
        return cached
    held = frozenset(role_names_held(user=user))
    user_refs, group_refs = person_refs(user=user)
    viewer = Viewer(
        sub=user.sub,
        held_roles=held,
        user_refs=frozenset(user_refs),
        group_refs=frozenset(group_refs),
        is_admin=settings.PORTAL_ADMIN_ROLE in held,
    )
    setattr(user, _VIEWER_ATTRIBUTE, viewer)
    return viewer


def viewer_forget(user: User) -> None:
    """Drop the remembered answers, after this person's roles changed within the request."""
    if hasattr(user, _VIEWER_ATTRIBUTE):
        delattr(user, _VIEWER_ATTRIBUTE)
