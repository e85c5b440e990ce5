"""Writes of the access app."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery import Task
from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from access.auth0 import (
    Auth0Error,
    Directory,
    DirectoryAccount,
    DirectoryRole,
    DirectoryUser,
    shared_directory,
)
from access.models import (
    AccessRequest,
    AuditEvent,
    Decision,
    Role,
    RoleMembership,
    RoleSyncRun,
)
from access.policy import (
    DecisionScope,
    Viewer,
    distinct_people,
    grant_refusal,
    longest_grant,
    request_refusal,
    viewer_for,
)
from access.registry import RegistryEntry, registry_entry_json, registry_entry_of
from access.selectors import (
    access_request_longest,
    decision_scope,
    may_decide,
    portal_admin_emails,
    role_rules,
)
from catalog.models import Entity
from portal.durations import duration_iso
from portal.logs import correlate
from portal.models import User
from portal.ratelimits import request_address

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Actor:
    """Who caused a change, through what, from where: what the audit log records of it."""

    name: str  # a person's `sub`, `client:<id>` for a machine, `system` for the portal's jobs
    via: str = AuditEvent.Via.WEB
    ip: str | None = None
    user_agent: str = ""

    @classmethod
    def of_request(cls, request: HttpRequest, name: str, via: str) -> Actor:
        """The caller of a page or the API, with the address and client they came from."""
        return cls(name, via=via, ip=request_address(request),
                   user_agent=request.headers.get("User-Agent", ""))  # fmt: skip

    def event(
        self, action: str, target: str, correlation_id: str = "", **detail: Any
    ) -> AuditEvent:
        """An audit record by this actor, not yet written (for bulk writes)."""
        return AuditEvent(
            actor=self.name, via=self.via, action=action, target=target[:500],
            correlation_id=correlation_id, detail=detail, ip=self.ip,
            user_agent=self.user_agent[:500],
        )  # fmt: skip

    def record(self, action: str, target: str, correlation_id: str = "", **detail: Any) -> None:
        self.event(action, target, correlation_id, **detail).save()


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


# --- mirroring Auth0's roles -----------------------------------------------------------------

SYNC_LOCK_KEY = "atrium:role-sync:lock"
SYSTEM_ACTOR = "system"
SYNC = Actor(SYSTEM_ACTOR, via=AuditEvent.Via.SYNC)


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
    token = uuid.uuid4().hex
    if not cache.add(SYNC_LOCK_KEY, token, timeout=settings.ROLE_SYNC_LOCK_SECONDS):
        raise SyncBusy("another role sync is running; this one did not start")
    started = time.monotonic()
    run = RoleSyncRun.objects.create(forced=force)
    correlate(f"sync-{run.pk}")
    report = SyncReport(run=run)
    owned = directory is None
    directory = directory or Directory()
    try:
        try:
            roles = directory.roles()
            members = {role.id: directory.role_members(role.id) for role in roles}
            accounts = [directory.account(user.sub) for user in accounts_to_check()]
        except Auth0Error as error:
            outcome, message = RoleSyncRun.Outcome.FAILED, str(error)
        else:
            outcome, message = _plan_and_apply(report, roles, members, dry_run=dry_run, force=force)
            stopped = _accounts_plan_and_apply(report, accounts, dry_run=dry_run, force=force)
            if stopped and outcome == RoleSyncRun.Outcome.OK:
                outcome = RoleSyncRun.Outcome.BLOCKED
            message = " ".join(part for part in (message, stopped) if part)
        _finish(report, directory, started, outcome, message)
        return report
    finally:
        if owned:
            directory.close()
        if cache.get(SYNC_LOCK_KEY) == token:
            cache.delete(SYNC_LOCK_KEY)


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
) -> tuple[RoleSyncRun.Outcome, str]:
    """Work out the difference and apply it; the run's outcome and, if it stopped, why."""
    report.roles = len(roles)
    wanted = {(user.user_id, role.name) for role in roles for user in members[role.id]}
    people = {user.user_id: user for role in roles for user in members[role.id]}
    # Every membership, ended or not: a portal grant past its end but still in Auth0 is the
    # expiry job's to remove, never something to import as a standing membership.
    current = {
        (m.user.sub, m.role.name): m for m in RoleMembership.objects.select_related("user", "role")
    }
    report.added = sorted(pair for pair in wanted if pair not in current)
    report.removed = sorted(pair for pair in current if pair not in wanted)
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
    RoleMembership.objects.filter(pk__in=[current[pair].pk for pair in report.removed]).delete()
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

    events = _membership_events(
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


def accounts_to_check() -> QuerySet[User]:
    """People who may still hold a live session (signed in within SESSION_LIFETIME), and those
    the sync shut out as blocked, who come back in when Auth0 unblocks them. Bounded by how
    many people signed in lately, not by the tenant's size."""
    since = timezone.now() - settings.SESSION_LIFETIME
    return User.objects.filter(
        Q(is_active=True, last_login__gte=since) | Q(auth0_state=User.Auth0State.BLOCKED)
    ).only("sub", "is_active", "auth0_state")


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


def _membership_events(
    *,
    added: Iterable[tuple[str, str]],
    removed: Iterable[RoleMembership],
    actor: Actor,
    correlation_id: str,
) -> list[AuditEvent]:
    """The audit records of memberships found in Auth0 and of memberships Auth0 no longer has:
    a portal grant so ended is "grant.ended", anything else "role.removed"."""
    events = [
        actor.event("role.imported", f"{name} → {sub}", correlation_id, role=name, user=sub,
                    source="granted outside the portal")
        for sub, name in added
    ]  # fmt: skip
    for membership in removed:
        sub, name = membership.user.sub, membership.role.name
        ended_grant = membership.source == RoleMembership.Source.PORTAL_GRANT
        events.append(
            actor.event(
                "grant.ended" if ended_grant else "role.removed",
                f"{name} → {sub}",
                correlation_id,
                role=name,
                user=sub,
                reason="removed in Auth0",
                source=membership.source,
            )  # fmt: skip
        )
    return events


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
    try:
        in_auth0 = directory.user_roles(user.sub)
    finally:
        if owned:
            directory.close()
    wanted = {role.name: role for role in in_auth0}
    # The row lock keeps a concurrent refresh or sync from adding the same rows twice.
    current = {
        m.role.name: m
        for m in RoleMembership.objects.select_for_update(of=("self",))
        .filter(user=user)
        .select_related("user", "role")
    }
    added = sorted(name for name in wanted if name not in current)
    removed = [current[name] for name in sorted(current) if name not in wanted]

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
    RoleMembership.objects.filter(pk__in=[m.pk for m in removed]).delete()
    AuditEvent.objects.bulk_create(
        _membership_events(
            added=[(user.sub, name) for name in added],
            removed=removed,
            actor=actor,
            correlation_id=f"refresh-{uuid.uuid4().hex[:12]}",
        )
    )
    return RefreshOutcome(added=added, removed=[m.role.name for m in removed])


# --- the role registry -----------------------------------------------------------------------


def role_registry_changes(*, role: Role, entry: RegistryEntry) -> dict[str, dict[str, Any]]:
    """What setting this entry would change on the role: {field: {"from": …, "to": …}}."""
    before, after = registry_entry_json(registry_entry_of(role)), registry_entry_json(entry)
    return {
        name: {"from": before[name], "to": after[name]}
        for name in after
        if before[name] != after[name]
    }


def role_registry_set(*, role: Role, entry: RegistryEntry, actor: Actor) -> dict[str, Any]:
    """Set a role's registry entry; the changes, each recorded in the audit log."""
    changes = role_registry_changes(role=role, entry=entry)
    if not changes:
        return changes
    with transaction.atomic():
        role = Role.objects.select_for_update().get(pk=role.pk)
        role.owners, role.requestable = list(entry.owners), entry.requestable
        role.max_duration, role.min_approvals = entry.max_duration, entry.min_approvals
        role.save(update_fields=["owners", "requestable", "max_duration", "min_approvals"])
        actor.record("role.registry_changed", role.name, changes=changes)
    return changes


@transaction.atomic
def roles_registry_import(
    *, entries: list[tuple[str, RegistryEntry]], actor: Actor, dry_run: bool = False
) -> list[tuple[str, dict[str, Any]]]:
    """Set many roles' entries at once (`import_roles`), all or nothing; (role, changes) of
    each entry that changes something. Every role must be in the mirror already."""
    roles = {role.name: role for role in Role.objects.filter(name__in=[n for n, _ in entries])}
    missing = [name for name, _ in entries if name not in roles]
    if missing:
        raise RequestRefused(
            "no such role in the portal's mirror: "
            + ", ".join(missing)
            + " (run `python manage.py sync_roles` first)"
        )
    changed = []
    for name, entry in entries:
        if dry_run:
            changes = role_registry_changes(role=roles[name], entry=entry)
        else:
            changes = role_registry_set(role=roles[name], entry=entry, actor=actor)
        if changes:
            changed.append((name, changes))
    return changed


# --- access requests and grants --------------------------------------------------------------


SYSTEM = Actor(SYSTEM_ACTOR, via=AuditEvent.Via.TASK)


class RequestRefused(Exception):
    """The request cannot be made or changed as asked; the message says why, to the person."""


class AlreadyDecided(Exception):
    """Someone decided first (or the request moved on); the message says who and how."""


class NotAllowed(Exception):
    """The person may not do this; the message says why."""


def _request_target(request: AccessRequest) -> str:
    return f"{request.role_name} on {request.entity_ref} for {request.requester.sub}"


# Queuing after commit. The tasks call these services (a worker provisions a grant through
# `grant_provision`), and these services queue the tasks, by reference, once their transaction
# commits: a real two-way dependency between this module and access.tasks. The direction kept
# at import time is tasks -> services; the two functions below take the task objects from
# access.tasks when they run, the only imports in a function that the access app needs.


def _after_commit(task: Task, request: AccessRequest, actor: Actor, *args: Any) -> None:
    """Queue a task once the transaction commits, carrying who caused it in its headers."""
    headers = {"atrium_actor": actor.name, "atrium_via": actor.via}
    transaction.on_commit(lambda: task.apply_async(args=(request.pk, *args), headers=headers))


def _notify_after_commit(request: AccessRequest, actor: Actor, event: str) -> None:
    from access.tasks import notify_task  # access.tasks imports this module (see above)

    _after_commit(notify_task, request, actor, event)


def _provision_after_commit(request: AccessRequest, actor: Actor) -> None:
    from access.tasks import provision_grant_task  # access.tasks imports this module

    _after_commit(provision_grant_task, request, actor)


def access_request_create(
    *,
    requester: User,
    entity: Entity,
    role: str,
    reason: str,
    duration: timedelta | None,
    actor: Actor,
) -> tuple[AccessRequest, bool]:
    """Ask for a role the entity requires; (the request, whether it is new).

    The policy says whether this person may ask; the role's registry entry and the entity
    bound the duration and set how many approvals it needs. Asking again while a request for
    the same role is open gives back the open one.
    """

    scope = decision_scope(entity_ref=entity.ref, role=role)
    refusal = request_refusal(viewer_for(requester), entity, role, scope)
    if refusal:
        raise RequestRefused(refusal)
    if not reason.strip():
        raise RequestRefused("Say why you need this role: the reason is required.")
    longest = access_request_longest(entity=entity, role=role)
    duration = duration or min(settings.ACCESS_DEFAULT_DURATION, longest)
    if duration <= timedelta(0) or duration > longest:
        raise RequestRefused(
            f"The duration must be longer than zero and at most {humanize_duration(longest)}."
        )
    open_request = AccessRequest.objects.open().filter(requester=requester, role_name=role)
    with transaction.atomic():
        existing = open_request.first()
        if existing:
            return existing, False
        try:
            with transaction.atomic():
                request = AccessRequest.objects.create(
                    requester=requester, entity_ref=entity.ref, role_name=role,
                    reason=reason.strip(), duration=duration,
                    approvals_required=scope.approvals_required,
                )  # fmt: skip
        except IntegrityError:  # the same person asked twice at once: one request stands
            return open_request.get(), False
        actor.record("request.created", _request_target(request), request.correlation_id,
                     reason=request.reason, duration=duration_iso(duration))  # fmt: skip
        _notify_after_commit(request, actor, "requested")
    return request, True


def access_request_decide(
    *,
    request_id: int,
    approver: User,
    outcome: str,
    comment: str,
    actor: Actor,
    scopes: dict[tuple[str, str], DecisionScope] | None = None,
) -> AccessRequest:
    """Approve or deny. The row is locked and state and eligibility are checked again under the
    lock, so of two decisions at the same moment one wins and the other is told who decided.

    `scopes`: who decides each (entity, role), read once for a bulk decision of many requests.
    """

    with transaction.atomic():
        request = AccessRequest.objects.locked().get(pk=request_id)
        correlate(request.correlation_id)
        viewer = viewer_for(approver)
        key = (request.entity_ref, request.role_name)
        scope = (scopes or {}).get(key) or decision_scope(entity_ref=key[0], role=key[1])
        # Someone who may not see the request learns nothing of it, not even its state.
        if not viewer.may_see_request(requester_sub=request.requester.sub, scope=scope):
            raise AccessRequest.DoesNotExist(f"No access request {request_id}")
        if request.state != AccessRequest.State.PENDING:
            raise AlreadyDecided(already_decided_message(request))
        earlier = list(request.decisions.select_related("approver"))
        if any(d.approver_id == approver.pk for d in earlier):
            raise AlreadyDecided("You decided this request already.")
        if any(viewer.is_person(sub=d.approver.sub, email=d.approver.email) for d in earlier):
            raise AlreadyDecided("You decided this request already, from another account.")
        if not may_decide(viewer=viewer, request=request, scope=scope):
            raise NotAllowed(_why_not_decider(viewer, request, scope))
        Decision.objects.create(
            request=request, approver=approver, outcome=outcome, comment=comment.strip()
        )
        verb = "approved" if outcome == Decision.Outcome.APPROVED else "denied"
        logger.info("request %s: %s by %s", request.pk, verb, actor.name)
        actor.record(f"request.{verb}", _request_target(request), request.correlation_id,
                     comment=comment.strip())  # fmt: skip
        now = timezone.now()
        if outcome == Decision.Outcome.DENIED:
            request.state, request.decided_at = AccessRequest.State.DENIED, now
            _notify_after_commit(request, actor, "denied")
        elif distinct_people(
            request.decisions.filter(outcome=Decision.Outcome.APPROVED).values_list(
                "approver__sub", "approver__email"
            )
        ) >= max(request.approvals_required, scope.approvals_required):
            request.state, request.decided_at = AccessRequest.State.APPROVED, now
            _notify_after_commit(request, actor, "approved")
            _provision_after_commit(request, actor)
        request.save()
    return request


def _why_not_decider(viewer: Viewer, request: AccessRequest, scope: DecisionScope) -> str:
    """The rule that stopped a decision, said to the person who tried."""
    if viewer.is_person(sub=request.requester.sub, email=request.requester.email):
        return "Nobody decides their own request, from this or another account."
    if scope.refusal:
        return f"Nobody may decide this request: {scope.refusal}"
    owners = ", ".join(scope.owners)
    return f"You may not decide this request: requests for {scope.role} are decided by {owners}."


def already_decided_message(request: AccessRequest) -> str:
    last = request.decisions.select_related("approver").last()
    if last is not None:
        return f"This request was already {last.outcome} by {last.approver}."
    return f"This request is {request.get_state_display()} already."


def access_request_cancel(*, request_id: int, person: User, actor: Actor) -> AccessRequest:
    """The requester withdraws a request nobody decided yet."""
    with transaction.atomic():
        request = AccessRequest.objects.locked().get(pk=request_id)
        if request.requester_id != person.pk:
            raise NotAllowed("Only the person who asked may cancel a request.")
        if request.state != AccessRequest.State.PENDING:
            raise AlreadyDecided(already_decided_message(request))
        request.state, request.decided_at = AccessRequest.State.CANCELLED, timezone.now()
        request.save()
        actor.record("request.cancelled", _request_target(request), request.correlation_id)
    return request


def _role_id(name: str, directory: Directory) -> str:
    role = Role.objects.filter(name=name).exclude(auth0_id="").first()
    if role is not None:
        return role.auth0_id
    for found in directory.roles():
        if found.name == name:
            Role.objects.update_or_create(name=name, defaults={"auth0_id": found.id})
            return found.id
    raise Auth0Error(f"Auth0 has no role named {name!r}")


def grant_provision(*, request_id: int, actor: Actor, directory: Directory | None = None) -> str:
    """Carry an approved request into Auth0 and make it an active grant; the resulting state.

    The end is known before Auth0 is called: the approved duration, cut to the role's and the
    portal's longest grant as they stand now. A protected role is never assigned. If the grant
    cannot be recorded once Auth0 has assigned the role, the role is taken back in Auth0 (unless
    the person held it already), so nothing stands without an end.

    Idempotent: a grant already active (or ended) is left alone, and assigning a role Auth0
    already gives is harmless, so a retry, a redelivered message or the reconciler can run
    it again. An Auth0Error leaves the grant in provisioning for the retry.
    """

    with transaction.atomic():
        request = AccessRequest.objects.locked().get(pk=request_id)
        correlate(request.correlation_id)
        if request.state not in (AccessRequest.State.APPROVED, AccessRequest.State.PROVISIONING):
            return request.state
        refusal = grant_refusal(role_name=request.role_name)
        if refusal:
            request.state, request.note = AccessRequest.State.FAILED, refusal
            request.save()
            actor.record("grant.refused", _request_target(request), request.correlation_id,
                         reason=refusal)  # fmt: skip
            return request.state
        rules = role_rules(names=[request.role_name])[request.role_name]
        duration = min(request.duration, longest_grant(rules=rules, entity_max=None))
        held_before = (
            RoleMembership.objects.active()
            .filter(user=request.requester, role__name=request.role_name)
            .exists()
        )
        request.state = AccessRequest.State.PROVISIONING
        request.provision_attempts += 1
        request.save()
    directory = directory or shared_directory()
    role_id = _role_id(request.role_name, directory)
    directory.assign(request.requester.sub, [role_id], correlation_id=request.correlation_id)
    logger.info("grant %s: %s assigned in Auth0", request_id, request.role_name)
    try:
        return _grant_activate(request_id=request_id, duration=duration, actor=actor)
    except Exception as error:
        logger.exception("grant %s assigned in Auth0 but not recorded", request_id)
        message = f"the grant could not be recorded after Auth0 assigned the role: {error}"
        if not held_before:
            try:
                directory.unassign(
                    request.requester.sub, [role_id], correlation_id=request.correlation_id
                )
                message += "; the role was removed in Auth0 again"
            except Auth0Error as unassign_error:
                message += f"; removing it in Auth0 again failed too: {unassign_error}"
        grant_fail(request_id=request_id, message=message, actor=actor)
        return AccessRequest.State.FAILED


def _grant_activate(*, request_id: int, duration: timedelta, actor: Actor) -> str:
    """Auth0 has assigned the role: the grant is active until its end, in the mirror too."""
    with transaction.atomic():
        request = AccessRequest.objects.locked().get(pk=request_id)
        if request.state != AccessRequest.State.PROVISIONING:
            return request.state
        now = timezone.now()
        request.state, request.starts_at = AccessRequest.State.ACTIVE, now
        request.expires_at = now + duration
        request.note = ""
        request.save()
        # An earlier grant of the same role ends here, replaced rather than expired: the expiry
        # job must not take away in Auth0 the role this grant has just given.
        for earlier in AccessRequest.objects.locked().filter(
            requester=request.requester, role_name=request.role_name,
            state=AccessRequest.State.ACTIVE,
        ).exclude(pk=request.pk):  # fmt: skip
            earlier.state, earlier.ended_at = AccessRequest.State.EXPIRED, now
            earlier.note = f"extended by request {request.pk}"
            earlier.save()
            actor.record("grant.extended", _request_target(earlier), earlier.correlation_id,
                         by_request=request.pk)  # fmt: skip
        role, _ = Role.objects.get_or_create(name=request.role_name)
        RoleMembership.objects.update_or_create(
            user=request.requester, role=role,
            defaults={"source": RoleMembership.Source.PORTAL_GRANT,
                      "expires_at": request.expires_at},
        )  # fmt: skip
        detail = {"expires_at": request.expires_at.isoformat()}
        if duration < request.duration:
            detail["shortened_to"] = duration_iso(duration)
        logger.info("grant %s active until %s", request.pk, request.expires_at)
        actor.record("grant.activated", _request_target(request), request.correlation_id,
                     **detail)  # fmt: skip
        _notify_after_commit(request, actor, "active")
    return request.state


def grant_fail(*, request_id: int, message: str, actor: Actor) -> None:
    """Provisioning gave up after its retries: the grant is failed, for an admin to retry."""
    with transaction.atomic():
        request = AccessRequest.objects.locked().get(pk=request_id)
        if request.state != AccessRequest.State.PROVISIONING:
            return
        request.state, request.note = AccessRequest.State.FAILED, message
        request.save()
        actor.record("grant.failed", _request_target(request), request.correlation_id,
                     error=message)  # fmt: skip


def grant_retry(*, request_id: int, actor: Actor) -> None:
    """An admin sends a failed grant round again."""
    with transaction.atomic():
        request = AccessRequest.objects.locked().get(pk=request_id)
        if request.state != AccessRequest.State.FAILED:
            raise AlreadyDecided(f"This grant is {request.get_state_display()}, not failed.")
        request.state = AccessRequest.State.APPROVED
        request.save()
        actor.record("grant.retried", f"request {request.pk}", request.correlation_id)
        _provision_after_commit(request, actor)


def grant_end(
    *, request_id: int, actor: Actor, revoke: bool = False, directory: Directory | None = None
) -> bool:
    """End an active grant in Auth0 and in the portal: on time (expired) or early (revoked).

    Auth0 first: if it cannot be told, the grant stays active and the next run tries again,
    so nobody keeps a role the portal shows as ended.
    """
    request = AccessRequest.objects.select_related("requester").get(pk=request_id)
    correlate(request.correlation_id)
    if request.state != AccessRequest.State.ACTIVE:
        return False
    directory = directory or shared_directory()
    role_id = _role_id(request.role_name, directory)
    directory.unassign(request.requester.sub, [role_id], correlation_id=request.correlation_id)
    with transaction.atomic():
        request = AccessRequest.objects.locked().get(pk=request_id)
        if request.state != AccessRequest.State.ACTIVE:
            return False
        request.state = AccessRequest.State.REVOKED if revoke else AccessRequest.State.EXPIRED
        request.ended_at = timezone.now()
        request.save()
        RoleMembership.objects.filter(
            user=request.requester, role__name=request.role_name,
            source=RoleMembership.Source.PORTAL_GRANT,
        ).delete()  # fmt: skip
        action = "grant.revoked" if revoke else "grant.expired"
        actor.record(action, _request_target(request), request.correlation_id)
        _notify_after_commit(request, actor, "revoked" if revoke else "expired")
    return True


def grants_expire(*, actor: Actor = SYSTEM, directory: Directory | None = None) -> list[int]:
    """End every grant whose time is up; the ids ended. One that Auth0 refuses is left active
    for the next run, and the rest go on."""
    due = AccessRequest.objects.filter(
        state=AccessRequest.State.ACTIVE, expires_at__lte=timezone.now()
    ).values_list("pk", flat=True)
    ended = []
    for request_id in list(due):
        try:
            if grant_end(request_id=request_id, actor=actor, directory=directory):
                ended.append(request_id)
        except Auth0Error as error:
            logger.warning("grant %s could not be ended in Auth0: %s", request_id, error)
    return ended


def requests_lapse(*, actor: Actor = SYSTEM) -> int:
    """Pending requests nobody decided within ACCESS_REQUEST_LAPSE lapse."""
    cutoff = timezone.now() - settings.ACCESS_REQUEST_LAPSE
    lapsed = 0
    for request_id in AccessRequest.objects.filter(
        state=AccessRequest.State.PENDING, created_at__lt=cutoff
    ).values_list("pk", flat=True):
        with transaction.atomic():
            request = AccessRequest.objects.locked().get(pk=request_id)
            if request.state != AccessRequest.State.PENDING:
                continue
            request.state, request.decided_at = AccessRequest.State.LAPSED, timezone.now()
            request.save()
            actor.record("request.lapsed", _request_target(request), request.correlation_id)
            _notify_after_commit(request, actor, "lapsed")
            lapsed += 1
    return lapsed


def grants_stuck() -> list[int]:
    """Grants left approved or provisioning longer than ACCESS_RECONCILE_AFTER: a worker died
    or a message was lost. The reconciler queues them again."""
    cutoff = timezone.now() - settings.ACCESS_RECONCILE_AFTER
    return list(
        AccessRequest.objects.filter(
            state__in=[AccessRequest.State.APPROVED, AccessRequest.State.PROVISIONING],
            updated_at__lt=cutoff,
        ).values_list("pk", flat=True)
    )


def humanize_duration(duration: timedelta) -> str:
    days, hours = duration.days, duration.seconds // 3600
    parts = [f"{days} day{'s' if days != 1 else ''}"] if days else []
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    return ", ".join(parts) or f"{int(duration.total_seconds() // 60)} minutes"
