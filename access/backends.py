"""`user.has_perm(...)` answered by the access policy, for code and admin that expect Django's
conventions. People sign in through Auth0 only, so this backend authenticates nobody."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import BaseBackend

from access import policy
from access.selectors import decision_scopes
from portal.models import User


class PolicyBackend(BaseBackend):
    """Portal admins hold every permission (the Django admin is theirs); the rest is asked of
    the policy with the object it concerns."""

    def authenticate(self, request: Any, **credentials: Any) -> None:
        return None

    def get_user(self, user_id: int) -> User | None:
        return User.objects.filter(pk=user_id, is_active=True).first()

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
