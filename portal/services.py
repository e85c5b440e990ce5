"""Writes of the portal app."""

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from portal.models import User, WorkerHeartbeat


@transaction.atomic
def worker_heartbeat_record(*, hostname: str) -> WorkerHeartbeat:
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"last_seen_at": timezone.now()}
    )
    return heartbeat


@transaction.atomic
def user_sign_in_record(*, sub: str, email: str, name: str) -> User:
    """The person this `sub` names, created on first sign-in, e-mail and name kept current."""
    user, created = User.objects.get_or_create(
        sub=sub,
        # People sign in through Auth0 only; the portal never holds a password.
        defaults={"email": email, "name": name, "password": make_password(None)},
    )
    if not created and (user.email, user.name) != (email, name):
        user.email, user.name = email, name
        user.save(update_fields=["email", "name"])
    return user
