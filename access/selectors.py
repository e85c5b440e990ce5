"""Reads of the access app."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from access.models import Role, RoleMembership, RoleSyncRun, in_force
from portal.models import User


def role_memberships_of(*, user: User) -> list[RoleMembership]:
    """The roles this person holds now, with where each came from and when it ends."""
    return list(user.role_memberships.active().select_related("role").order_by("role__name"))


def role_names_held(*, user: User) -> list[str]:
    """Names of the roles this person holds now."""
    if not user.is_authenticated:
        return []
    return sorted(
        RoleMembership.objects.active().filter(user=user).values_list("role__name", flat=True)
    )


def roles_with_member_counts() -> QuerySet[Role]:
    """Every mirrored role with `member_count`: the memberships in force now."""
    counted = Count("memberships", filter=in_force("memberships__"))
    return Role.objects.annotate(member_count=counted).order_by("name")


def role_members(*, role: Role) -> QuerySet[RoleMembership]:
    """Who holds the role now, by e-mail."""
    return (
        RoleMembership.objects.active()
        .filter(role=role)
        .select_related("user")
        .order_by("user__email", "pk")
    )


def roles_page() -> QuerySet[Role]:
    """Every mirrored role with `member_count` and `declared_by`: the catalog entities that
    require it (for a role deleted in Auth0, the entities to fix)."""
    from catalog.models import EntityRequiredRole

    declared = (
        EntityRequiredRole.objects.filter(role_name=OuterRef("name"))
        .order_by()
        .values("role_name")
        .annotate(n=Count("*"))
        .values("n")
    )
    return roles_with_member_counts().annotate(
        declared_by=Coalesce(Subquery(declared, output_field=IntegerField()), 0)
    )


def entities_declaring(*, role_name: str) -> list[tuple[str, str]]:
    """(ref, display name) of the catalog entities that require this role."""
    from catalog.models import Entity

    return list(
        Entity.objects.filter(required_role_rows__role_name=role_name)
        .order_by("ref")
        .values_list("ref", "name")
    )


@dataclass(frozen=True)
class MirrorState:
    """How current the roles mirror is, for admins' pages and `/readyz`."""

    last_synced_at: datetime | None
    age_seconds: float | None
    stale: bool
    stale_reason: str
    # The latest finished run, when the breaker stopped it: admins are told until a run applies.
    blocked_run: RoleSyncRun | None


def mirror_state() -> MirrorState:
    """Stale when the last sync that applied is older than three intervals, or, never having
    synced, when syncs have been failing for that long."""
    limit = 3 * settings.ROLE_SYNC_INTERVAL
    now = timezone.now()
    last_ok = (
        RoleSyncRun.objects.filter(outcome=RoleSyncRun.Outcome.OK)
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)
        .first()
    )
    blocked = blocked_sync()
    if last_ok is not None:
        age = (now - last_ok).total_seconds()
        stale = age > limit
        reason = f"the roles mirror was last synced {age:.0f} s ago" if stale else ""
        return MirrorState(last_ok, age, stale, reason, blocked)
    first = RoleSyncRun.objects.order_by("started_at").values_list("started_at", flat=True).first()
    stale = first is not None and (now - first).total_seconds() > limit
    reason = "the roles mirror has never been synced successfully" if stale else ""
    return MirrorState(None, None, stale, reason, blocked)


def blocked_sync() -> RoleSyncRun | None:
    """The latest finished sync, if the breaker stopped it: admins are told until one applies."""
    latest = RoleSyncRun.objects.exclude(outcome=RoleSyncRun.Outcome.RUNNING).first()
    return latest if latest and latest.outcome == RoleSyncRun.Outcome.BLOCKED else None


def sync_history(*, limit: int = 20) -> list[RoleSyncRun]:
    return list(RoleSyncRun.objects.order_by("-started_at")[:limit])
