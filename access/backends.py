"""`user.has_perm(...)` answered by the access policy, for code and admin that expect Django's
conventions. People sign in through Auth0 only, so this backend authenticates nobody."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import BaseBackend
from django.db import connections, router

from access import policy
from access.selectors import decision_scopes
from portal.models import User


class PolicyBackend(BaseBackend):
    """Portal admins hold every permission (the Django admin is theirs); the rest is asked of
    the policy with the object it concerns."""

    def authenticate(self, request: Any, **credentials: Any) -> None:
        return None

    def get_user(self, user_id: int) -> User | None:
        """The person a session names while the portal lets them in (active), read afresh at
        every request, so that a person made inactive is refused at their next one. On
        PostgreSQL by one SQL statement of its own: the ORM took longer to build this query
        than PostgreSQL took to answer it, and its columns need no conversion there."""
        alias = router.db_for_read(User)
        connection = connections[alias]
        if connection.vendor != "postgresql":
            return User.objects.filter(pk=user_id, is_active=True).first()
        fields = User._meta.concrete_fields
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {', '.join(quote(field.column) for field in fields)} "
                f"FROM {quote(User._meta.db_table)} WHERE {quote('id')} = %s AND "
                f"{quote('is_active')}",
                [User._meta.pk.get_db_prep_value(user_id, connection)],
            )
            row = cursor.fetchone()
        if row is None:
            return None
        user: User = User.from_db(alias, [field.attname for field in fields], row)
        return user

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        viewer = policy.viewer_for(user_obj)
        if perm == policy.REQUEST_ACCESS and obj is not None:
            # Asked of admins too: nobody requests a protected role or one without owners.
            roles = [row.role_name for row in obj.required_role_rows.all()]
            scopes = decision_scopes(pairs=[(obj.ref, role) for role in roles])
            return any(
                policy.request_refusal(viewer, obj, role, scopes[obj.ref, role]) is None
                for role in roles
            )
        if viewer.is_admin:
            return True
        if perm == policy.SEE_RESTRICTED and obj is not None:
            roles = [row.role_name for row in obj.required_role_rows.all()]
            return viewer.may_see_restricted(
                restricted=obj.restricted, required_roles=roles, owner_ref=obj.owner_ref
            )
        return False

    def has_module_perms(self, user_obj: Any, app_label: str) -> bool:
        return policy.viewer_for(user_obj).is_admin
