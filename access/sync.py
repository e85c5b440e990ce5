"""The portal's mirror of Auth0's roles: the sync of everyone, one person's refresh, the roles a
sign-in token names, and the accounts Auth0 blocked or deleted."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from access.audit import SYNC, Actor, membership_events
from access.auth0 import (
    Auth0Error,
    Directory,
    DirectoryAccount,
    DirectoryRole,
    DirectoryUser,
)
from access.models import (
    AccessRequest,
    AccessReviewItem,
    AuditEvent,
    Role,
    RoleMembership,
    RoleSyncRun,
)
from access.selectors import accounts_to_check, conflicts_held, portal_admin_emails
from access.viewers import viewers_changed, viewers_changed_once
from portal.locks import lock_held
from portal.logs import correlate
from portal.models import User

# How far back an end the portal recorded counts as "while Auth0 was read": the portal's machines
# (web, workers) keep their own clocks, and a revocation one of them stamps a little early must
# not come back. Erring early only leaves a re-grant made in Auth0 meanwhile to the next sync.
ENDED_CLOCKS_MARGIN = timedelta(minutes=1)


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
    seen = [
        RoleMembership(user=user, role=role, source=RoleMembership.Source.SIGN_IN)
        for role in roles
        if role.name not in held
    ]
    if seen:
        RoleMembership.objects.bulk_create(seen, ignore_conflicts=True)
        viewers_changed()  # bulk_create sends no signal (access.viewers)
    with viewers_changed_once():
        user.role_memberships.filter(source=RoleMembership.Source.SIGN_IN).exclude(
            role__name__in=names
        ).delete()
    return names


# --- mirroring Auth0's roles -----------------------------------------------------------------

SYNC_LOCK_KEY = "atrium:role-sync:lock"


class SyncBusy(Exception):
    """Another sync holds the lock."""


@dataclass
class SyncReport:
    run: RoleSyncRun
    roles: int = 0
    added: list[tuple[str, str]] = field(default_factory=list)  # (user sub, role name)
    removed: list[tuple[str, str]] = field(default_factory=list)
    gone_roles: list[str] = field(default_factory=list)
    # Accounts Auth0 blocked or deleted, (sub, User.Auth0State), and those it unblocked.
    deactivated: list[tuple[str, str]] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    accounts_checked: int = 0
    api_calls: int = 0
    seconds: float = 0.0

    @property
    def outcome(self) -> str:
        return self.run.outcome


def _breaker_trips(*, removals: int, memberships: int) -> bool:
    """More than the allowed share of all memberships, and at least the minimum count."""
    share = settings.ROLE_SYNC_BREAKER_SHARE
    return removals >= settings.ROLE_SYNC_BREAKER_MINIMUM and removals > share * memberships


def roles_sync(
    *, dry_run: bool = False, force: bool = False, directory: Directory | None = None
) -> SyncReport:
    """Make the portal's mirror of who holds which Auth0 role match Auth0.

    Reads every role and its members first; a read that fails after its retries changes
    nothing. A run that would remove more than the breaker allows applies nothing unless
    forced. The difference is applied in one transaction with bulk writes, each change with
    an audit record. Portal grants keep their end (they never become standing); one that Auth0
    no longer has ends as "removed in Auth0". The accounts of people who may hold a live
    session are read too: those Auth0 blocked or deleted are made inactive, so their next
    request finds them signed out, and those it unblocked are let back in.
    """
    with lock_held(SYNC_LOCK_KEY, seconds=settings.ROLE_SYNC_LOCK_SECONDS) as taken:
        if not taken:
            raise SyncBusy("another role sync is running; this one did not start")
        return _roles_sync(dry_run=dry_run, force=force, directory=directory)


def _roles_sync(*, dry_run: bool, force: bool, directory: Directory | None) -> SyncReport:
    started = time.monotonic()
    run = RoleSyncRun.objects.create(forced=force)
    correlate(f"sync-{run.pk}")
    report = SyncReport(run=run)
    owned = directory is None
    directory = directory or Directory()
    read_from = timezone.now()
    try:
        try:
            roles = directory.roles()
            members = {role.id: directory.role_members(role.id) for role in roles}
            accounts = [directory.account(user.sub) for user in accounts_to_check()]
        except Auth0Error as error:
            outcome, message = RoleSyncRun.Outcome.FAILED, str(error)
        else:
            outcome, message = _plan_and_apply(report, roles, members, dry_run=dry_run,
                                               force=force, read_from=read_from)  # fmt: skip
            stopped = _accounts_plan_and_apply(report, accounts, dry_run=dry_run, force=force)
            if stopped and outcome == RoleSyncRun.Outcome.OK:
                outcome = RoleSyncRun.Outcome.BLOCKED
            message = " ".join(part for part in (message, stopped, _conflicts_flagged()) if part)
        _finish(report, directory, started, outcome, message)
        return report
    finally:
        if owned:
            directory.close()


def _conflicts_flagged() -> str:
    """What the mirror now holds against separation of duties, for the run's notes (the Roles
    page lists the people)."""
    held = conflicts_held()
    if not held:
        return ""
    pairs = sorted({" and ".join(conflict.roles) for conflict in held})
    people = len({conflict.user.pk for conflict in held})
    return (
        f"Separation of duties: {people} {'person holds' if people == 1 else 'people hold'} "
        f"conflicting roles ({'; '.join(pairs)})."
    )


def _finish(
    report: SyncReport, directory: Directory, started: float, outcome: str, message: str
) -> None:
    report.api_calls = directory.calls + directory.token_calls
    report.seconds = time.monotonic() - started
    run = report.run
    run.outcome, run.message = outcome, message
    run.finished_at = timezone.now()
    run.roles, run.added, run.removed = report.roles, len(report.added), len(report.removed)
    run.api_calls = report.api_calls
    run.save()


def _plan_and_apply(
    report: SyncReport,
    roles: list[DirectoryRole],
    members: dict[str, list[DirectoryUser]],
    *,
    dry_run: bool,
    force: bool,
    read_from: datetime,
) -> tuple[RoleSyncRun.Outcome, str]:
    """Work out the difference and apply it; the run's outcome and, if it stopped, why.

    What the portal changed itself since Auth0 began to be read (`read_from`) is left for the
    next run, which reads Auth0 after it: a grant revoked, ended or removed by a review meanwhile
    is not brought back from a read older than its removal, nor is a membership made meanwhile
    (a grant that became active, a sign-in) taken away."""
    report.roles = len(roles)
    wanted = {(user.user_id, role.name) for role in roles for user in members[role.id]}
    people = {user.user_id: user for role in roles for user in members[role.id]}
    # Every membership, ended or not: a portal grant past its end but still in Auth0 is the
    # expiry job's to remove, never something to import as a standing membership.
    current = {
        (m.user.sub, m.role.name): m for m in RoleMembership.objects.select_related("user", "role")
    }
    ended = ended_by_the_portal_since(read_from)
    report.added = sorted(pair for pair in wanted if pair not in current and pair not in ended)
    report.removed = sorted(
        pair for pair in current if pair not in wanted and current[pair].created_at < read_from
    )
    known_names = {role.name for role in roles}
    report.gone_roles = sorted(
        Role.objects.filter(gone_at__isnull=True)
        .exclude(name__in=known_names)
        .values_list("name", flat=True)
    )
    if not force and _breaker_trips(removals=len(report.removed), memberships=len(current)):
        message = (
            f"the sync would remove {len(report.removed)} of {len(current)} memberships, more "
            f"than the breaker allows ({settings.ROLE_SYNC_BREAKER_SHARE:.0%}, at least "
            f"{settings.ROLE_SYNC_BREAKER_MINIMUM}); nothing was applied. If Auth0 is right, "
            "run `python manage.py sync_roles --force`."
        )
        _tell_admins_of_blocked_sync(report, message)
        return RoleSyncRun.Outcome.BLOCKED, message
    if dry_run:
        return RoleSyncRun.Outcome.DRY_RUN, ""
    _apply(report, roles, people, current)
    return RoleSyncRun.Outcome.OK, ""


def ended_by_the_portal_since(
    moment: datetime, *, user: User | None = None
) -> set[tuple[str, str]]:
    """(sub, role) of the holdings the portal itself ended since `moment`: grants revoked or
    expired, and removals carried out after an access review. Each told Auth0 before it was
    recorded, so a read of Auth0 begun before `moment` may still show them (a minute earlier,
    for the clocks of other machines)."""
    since = moment - ENDED_CLOCKS_MARGIN
    grants = AccessRequest.objects.filter(ended_at__gte=since)
    removals = AccessReviewItem.objects.filter(removed_at__gte=since)
    if user is not None:
        grants, removals = grants.filter(requester=user), removals.filter(user=user)
    return set(grants.values_list("requester__sub", "role_name")) | set(
        removals.values_list("user__sub", "review__role__name")
    )


@transaction.atomic
def _apply(
    report: SyncReport,
    roles: list[DirectoryRole],
    people: dict[str, DirectoryUser],
    current: dict[tuple[str, str], RoleMembership],
) -> None:
    now = timezone.now()
    correlation = f"sync-{report.run.pk}"
    # Roles: new ones created, descriptions and ids kept up to date, vanished ones marked gone.
    by_name = {role.name: role for role in Role.objects.all()}
    Role.objects.bulk_create(
        [Role(name=r.name, auth0_id=r.id, description=r.description) for r in roles
         if r.name not in by_name]
    )  # fmt: skip
    changed_roles = []
    for r in roles:
        role = by_name.get(r.name)
        if role and (role.auth0_id, role.description, role.gone_at) != (r.id, r.description, None):
            role.auth0_id, role.description, role.gone_at = r.id, r.description, None
            changed_roles.append(role)
    Role.objects.bulk_update(changed_roles, ["auth0_id", "description", "gone_at"])
    Role.objects.filter(name__in=report.gone_roles).update(gone_at=now)
    by_name = {role.name: role for role in Role.objects.all()}

    # People Auth0 names who never signed in yet get an account, so they can be found.
    subs = {sub for sub, _ in report.added}
    known_users = {u.sub: u for u in User.objects.filter(sub__in=subs)}
    User.objects.bulk_create(
        [User(sub=sub, email=people[sub].email, name=people[sub].name) for sub in subs
         if sub not in known_users],
        ignore_conflicts=True,
    )  # fmt: skip
    users = {u.sub: u for u in User.objects.filter(sub__in=subs)}

    RoleMembership.objects.bulk_create(
        [RoleMembership(user=users[sub], role=by_name[name], source=RoleMembership.Source.AUTH0)
         for sub, name in report.added],
        ignore_conflicts=True,
    )  # fmt: skip
    if report.added:
        viewers_changed()  # bulk_create sends no signal (access.viewers)
    with viewers_changed_once():
        RoleMembership.objects.filter(pk__in=[current[p].pk for p in report.removed]).delete()
    # A portal grant Auth0 no longer has is over: its request ends too, not at its old end.
    ended = Q()
    for sub, name in report.removed:
        if current[(sub, name)].source == RoleMembership.Source.PORTAL_GRANT:
            ended |= Q(requester__sub=sub, role_name=name)
    if ended:
        AccessRequest.objects.filter(ended, state=AccessRequest.State.ACTIVE).update(
            state=AccessRequest.State.REVOKED, ended_at=now, note="removed in Auth0",
            updated_at=now,
        )  # fmt: skip

    events = membership_events(
        added=report.added,
        removed=[current[pair] for pair in report.removed],
        actor=SYNC,
        correlation_id=correlation,
    )
    events += [
        SYNC.event("role.gone", name, correlation, reason="deleted in Auth0")
        for name in report.gone_roles
    ]
    AuditEvent.objects.bulk_create(events)


def _accounts_plan_and_apply(
    report: SyncReport, accounts: list[DirectoryAccount], *, dry_run: bool, force: bool
) -> str:
    """Shut out the people Auth0 blocked or deleted, let back in those it unblocked; why it
    stopped, if it did. Like the roles, a run that would shut out more than the breaker's
    share of the people checked applies none of it unless forced: an Auth0 answering wrongly
    must not sign everyone out."""
    report.accounts_checked = len(accounts)
    users = {user.sub: user for user in accounts_to_check()}
    for account in accounts:
        user = users.get(account.user_id)
        if user is None:
            continue
        state = (
            User.Auth0State.DELETED if not account.exists
            else User.Auth0State.BLOCKED if account.blocked
            else User.Auth0State.OK
        )  # fmt: skip
        if state != User.Auth0State.OK and (user.is_active or user.auth0_state != state):
            report.deactivated.append((user.sub, state))
        elif state == User.Auth0State.OK and not user.is_active:
            report.reactivated.append(user.sub)
    if not force and _breaker_trips(removals=len(report.deactivated), memberships=len(accounts)):
        message = (
            f"Auth0 says {len(report.deactivated)} of the {len(accounts)} people who signed in "
            "lately are blocked or deleted, more than the breaker allows; nobody was signed "
            "out. If Auth0 is right, run `python manage.py sync_roles --force`."
        )
        _tell_admins_of_blocked_sync(report, message)
        report.deactivated, report.reactivated = [], []
        return message
    if not dry_run:
        _accounts_apply(report)
    return ""


@transaction.atomic
def _accounts_apply(report: SyncReport) -> None:
    correlation = f"sync-{report.run.pk}"
    reasons: dict[str, str] = {
        User.Auth0State.BLOCKED: "blocked in Auth0",
        User.Auth0State.DELETED: "deleted in Auth0",
    }
    events = []
    for sub, state in report.deactivated:
        User.objects.filter(sub=sub).update(is_active=False, auth0_state=state)
        events.append(SYNC.event("user.deactivated", sub, correlation, reason=reasons[state]))
    User.objects.filter(sub__in=report.reactivated).update(
        is_active=True, auth0_state=User.Auth0State.OK
    )
    events += [
        SYNC.event("user.reactivated", sub, correlation, reason="unblocked in Auth0")
        for sub in report.reactivated
    ]
    AuditEvent.objects.bulk_create(events)
    if events:
        viewers_changed()  # the gateways refuse a person shut out at once (access.gateway)


def _tell_admins_of_blocked_sync(report: SyncReport, message: str) -> None:

    recipients = portal_admin_emails()
    SYNC.record("sync.blocked", "roles mirror", f"sync-{report.run.pk}",
                removals=len(report.removed), message=message)  # fmt: skip
    if recipients:
        send_mail(
            subject="[Atrium] The roles sync was stopped by its breaker",
            message=f"{message}\n\n{settings.PORTAL_BASE_URL}\n",
            from_email=None,
            recipient_list=recipients,
            fail_silently=True,
        )


@dataclass(frozen=True)
class RefreshOutcome:
    added: list[str]
    removed: list[str]


@transaction.atomic
def role_memberships_refresh_from_auth0(
    *, user: User, actor: Actor, directory: Directory | None = None
) -> RefreshOutcome:
    """Make one person's memberships match what Auth0 says they hold now.

    Raises Auth0Error, changing nothing, when Auth0 cannot be asked. Roles Auth0 has that the
    portal did not are imported as granted outside the portal; memberships Auth0 no longer has
    are removed (a portal grant so ended is recorded as "removed in Auth0"). Portal grants Auth0
    still has keep their end.
    """
    owned = directory is None
    directory = directory or Directory()
    read_from = timezone.now()
    try:
        in_auth0 = directory.user_roles(user.sub)
    finally:
        if owned:
            directory.close()
    # As the sync: what the portal changed since the read began is the next read's to judge.
    ended = {role for _, role in ended_by_the_portal_since(read_from, user=user)}
    wanted = {role.name: role for role in in_auth0}
    # The row lock keeps a concurrent refresh or sync from adding the same rows twice.
    current = {
        m.role.name: m
        for m in RoleMembership.objects.select_for_update(of=("self",))
        .filter(user=user)
        .select_related("user", "role")
    }
    added = sorted(name for name in wanted if name not in current and name not in ended)
    removed = [current[name] for name in sorted(current)
               if name not in wanted and current[name].created_at < read_from]  # fmt: skip

    known = {role.name: role for role in Role.objects.filter(name__in=wanted)}
    Role.objects.bulk_create(
        [Role(name=r.name, auth0_id=r.id, description=r.description)
         for r in in_auth0 if r.name not in known],
        ignore_conflicts=True,
    )  # fmt: skip
    roles = {role.name: role for role in Role.objects.filter(name__in=added)}
    RoleMembership.objects.bulk_create(
        [RoleMembership(user=user, role=roles[name], source=RoleMembership.Source.AUTH0)
         for name in added],
        ignore_conflicts=True,
    )  # fmt: skip
    if added:
        viewers_changed()  # bulk_create sends no signal (access.viewers)
    with viewers_changed_once():
        RoleMembership.objects.filter(pk__in=[m.pk for m in removed]).delete()
    AuditEvent.objects.bulk_create(
        membership_events(
            added=[(user.sub, name) for name in added],
            removed=removed,
            actor=actor,
            correlation_id=f"refresh-{uuid.uuid4().hex[:12]}",
        )
    )
    return RefreshOutcome(added=added, removed=[m.role.name for m in removed])
