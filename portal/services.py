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
def user_sign_in_record(*, sub: str, email: str, name: str, email_verified: bool) -> User:
    """The person this `sub` names, created on first sign-in; e-mail, whether Auth0 verified
    it, and name kept as the latest ID token says."""
    current = {"email": email, "name": name, "email_verified": email_verified}
    user, created = User.objects.get_or_create(
        sub=sub,
        # People sign in through Auth0 only; the portal never holds a password.
        defaults={**current, "password": make_password(None)},
    )
    if not created and (user.email, user.name, user.email_verified) != (
        email,
        name,
        email_verified,
    ):
        user.email, user.name, user.email_verified = email, name, email_verified
        user.save(update_fields=["email", "name", "email_verified"])
    return user
