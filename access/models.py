"""The roles mirror: which Auth0 roles exist and who holds them, with where each came from."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Role(models.Model):
    """An Auth0 role, known from a sign-in token or (later) from the Management API."""

    name = models.CharField(max_length=255, unique=True)
    auth0_id = models.CharField(max_length=64, blank=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RoleMembershipQuerySet(models.QuerySet["RoleMembership"]):
    def active(self) -> RoleMembershipQuerySet:
        """Memberships in force now: without an end, or ending in the future."""
        return self.filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=timezone.now())
        )


class RoleMembership(models.Model):
    """A person holds a role. `source` says how the portal learned it."""

    class Source(models.TextChoices):
        SIGN_IN = "sign_in", "seen in a sign-in token"
        AUTH0 = "auth0", "imported from Auth0"
        PORTAL_GRANT = "portal_grant", "granted by the portal"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="role_memberships"
    )
    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="memberships")
    source = models.CharField(max_length=20, choices=Source.choices)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RoleMembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "role"], name="one_membership_per_role"),
        ]
        ordering = ["role__name"]

    def __str__(self) -> str:
        return f"{self.user} holds {self.role} ({self.get_source_display()})"
