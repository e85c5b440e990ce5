"""The portal's own records: people (keyed by their Auth0 `sub`) and worker heartbeats."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    def create_user(self, sub: str, email: str = "", name: str = "", **extra: Any) -> User:
        user = self.model(sub=sub, email=self.normalize_email(email), name=name, **extra)
        # People sign in through Auth0 only; the portal never holds a password.
        user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, sub: str, email: str = "", name: str = "", **extra: Any) -> User:
        return self.create_user(sub, email, name, is_staff=True, is_superuser=True, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signed in. `sub` is who they are; e-mail and name are refreshed each time."""

    class Auth0State(models.TextChoices):
        """What the roles sync last learned of the account from Auth0, when it refused it."""

        OK = "", "usable"
        BLOCKED = "blocked", "blocked in Auth0"
        DELETED = "deleted", "deleted in Auth0"

    sub = models.CharField(max_length=255, unique=True)
    email = models.EmailField(blank=True)
    # Whether the ID token of the last sign-in said Auth0 verified that e-mail: only a verified
    # e-mail matches a catalog User, so only then does the person have groups in the portal.
    email_verified = models.BooleanField(default=False)
    name = models.CharField(max_length=255, blank=True)
    is_active = models.BooleanField(default=True)
    # Set with is_active=False by the sync when Auth0 blocked or deleted the account, so that a
    # later sync lets back in only those it shut out (not someone an admin deactivated).
    auth0_state = models.CharField(
        max_length=16, choices=Auth0State.choices, default=Auth0State.OK, blank=True
    )
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "sub"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = ["email"]

    def __str__(self) -> str:
        return self.name or self.email or self.sub

    def get_full_name(self) -> str:
        return self.name

    def get_short_name(self) -> str:
        return self.name.split(" ", 1)[0] if self.name else self.email


class WorkerHeartbeat(models.Model):
    """One row per worker host, touched by a beat-scheduled task that a worker executes."""

    hostname = models.CharField(max_length=255, unique=True)
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self) -> str:
        return f"{self.hostname} at {self.last_seen_at:%Y-%m-%d %H:%M:%S}"
