"""Writes of the access app."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from access.models import Role, RoleMembership
from portal.models import User


@transaction.atomic
def role_memberships_record_from_token(*, user: User, role_names: Iterable[str]) -> list[str]:
    """Record the roles a sign-in token says this person holds now; return them sorted.

    The token is Auth0's latest word on this person: roles it names are added (as seen at
    sign-in), and roles the portal had seen only in earlier tokens are dropped. Memberships
    the portal granted or imported are left to the grant and sync jobs that own them.
    """
    names = sorted({name.strip() for name in role_names if name and name.strip()})
    existing_roles = {role.name: role for role in Role.objects.filter(name__in=names)}
    missing = [Role(name=name) for name in names if name not in existing_roles]
    Role.objects.bulk_create(missing, ignore_conflicts=True)
    roles = Role.objects.filter(name__in=names)
    held = set(user.role_memberships.values_list("role__name", flat=True))
    RoleMembership.objects.bulk_create(
        [
            RoleMembership(user=user, role=role, source=RoleMembership.Source.SIGN_IN)
            for role in roles
            if role.name not in held
        ],
        ignore_conflicts=True,
    )
    user.role_memberships.filter(source=RoleMembership.Source.SIGN_IN).exclude(
        role__name__in=names
    ).delete()
    return names
