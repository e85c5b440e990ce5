"""Access requests and grants, from asking to ending, and the role registry's entries."""

# Over 400 lines because a request's life is one state machine (created, decided, provisioned,
# ended, lapsed): its steps share the row lock, the audit target and the after-commit queueing.

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from celery import Task
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from access.audit import SYSTEM, Actor, request_target
from access.auth0 import Auth0Error, Directory, shared_directory
from access.models import (
    AccessRequest,
    AccessReview,
    AccessReviewItem,
    Decision,
    Role,
    RoleMembership,
)
from access.policy import (
    DecisionScope,
    Viewer,
    auto_approval,
    break_glass_longest,
    break_glass_refusal,
    conflict_refusal,
    distinct_people,
    grant_refusal,
    longest_grant,
    registry_refusal,
    request_refusal,
    step_up_needed,
    viewer_for,
    viewer_fresh,
)
from access.registry import RegistryEntry, RegistryError, registry_entry_json
from access.reviews import REVIEW_SCHEDULE_FIELDS, review_open, review_schedule_apply
from access.selectors import (
    access_request_longest,
    already_decided_message,
    decision_scope,
    holdings_of,
    may_decide,
    role_conflicts,
    role_registry_changes,
    role_rules,
)
from access.viewers import viewers_changed_once
from access.words import rule_words
from catalog.models import Entity
from portal.durations import duration_iso, duration_words
from portal.logs import correlate
from portal.models import User

logger = logging.getLogger(__name__)


# --- the role registry -----------------------------------------------------------------------


REGISTRY_COLUMNS = [
    "owners", "requestable", "max_duration", "min_approvals", "sensitive", "conflicts_with",
    "auto_approve", "break_glass",
]  # fmt: skip


def role_registry_check(*, name: str, entry: RegistryEntry) -> None:
    """RegistryError when the policy refuses this entry for this role (break-glass on a
    protected role, a conflict with a role the mirror lacks)."""
    known = Role.objects.filter(name__in=entry.conflicts_with).values_list("name", flat=True)
    refusal = registry_refusal(name=name, entry=entry, known=known)
    if refusal:
        raise RegistryError(refusal)


def role_registry_set(*, role: Role, entry: RegistryEntry, actor: Actor) -> dict[str, Any]:
    """Set a role's registry entry; the changes, each recorded in the audit log.

    A conflict holds both ways: a role this entry adds to `conflictsWith` gets this role in
    its own, and one it drops loses it, each change recorded on that role too."""
    role_registry_check(name=role.name, entry=entry)
    with transaction.atomic():
        # Read under the lock: an import setting both roles of a conflict has changed this
        # one's conflicts since the caller read it.
        role = Role.objects.select_for_update().get(pk=role.pk)
        changes = role_registry_changes(role=role, entry=entry)
        if not changes:
            return changes
        before = set(role.conflicts_with)
        _role_entry_write(role, entry)
        actor.record("role.registry_changed", role.name, changes=changes)
        after = set(entry.conflicts_with)
        for other in Role.objects.select_for_update().filter(name__in=before ^ after):
            theirs = set(other.conflicts_with)
            theirs = theirs | {role.name} if other.name in after else theirs - {role.name}
            changed = sorted(theirs)
            if changed != sorted(other.conflicts_with):
                was = list(other.conflicts_with)
                other.conflicts_with = changed
                other.save(update_fields=["conflicts_with"])
                actor.record("role.registry_changed", other.name, because=role.name,
                             changes={"conflictsWith": {"from": was, "to": changed}})  # fmt: skip
    return changes


def _role_entry_write(role: Role, entry: RegistryEntry) -> None:
    stored = registry_entry_json(entry)
    role.owners, role.requestable = list(entry.owners), entry.requestable
    role.max_duration, role.min_approvals = entry.max_duration, entry.min_approvals
    role.sensitive, role.conflicts_with = entry.sensitive, list(entry.conflicts_with)
    role.auto_approve, role.break_glass = stored["autoApprove"], stored["breakGlass"]
    review_schedule_apply(role=role, entry=entry)
    role.save(update_fields=[*REGISTRY_COLUMNS, *REVIEW_SCHEDULE_FIELDS])


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
    for name, entry in entries:
        try:
            role_registry_check(name=name, entry=entry)
        except RegistryError as error:
            raise RequestRefused(f"{name}: {error}") from error
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


class RequestRefused(Exception):
    """The request cannot be made or changed as asked; the message says why, to the person."""


class AlreadyDecided(Exception):
    """Someone decided first (or the request moved on); the message says who and how."""


class NotAllowed(Exception):
    """The person may not do this; the message says why."""


class StepUpRequired(Exception):
    """Deciding this request needs a fresh multi-factor sign-in, which the decider lacks: the
    page sends them through one and the decision proceeds; the API answers as RFC 9470 says."""


def _person_locked(user: User) -> None:
    """Lock the person's row until the transaction ends. Every path that may give someone a
    role (asking, approving, auto-approval, break-glass) takes it before judging what they
    hold, so two at once for conflicting roles are judged one after the other."""
    User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()


def _grant_conflict(request: AccessRequest) -> str | None:
    """Why giving the request's role to its requester now would make a conflict the registry
    forbids (None when it would not), judged with the requester's row locked."""
    _person_locked(request.requester)
    return conflict_refusal(
        role=request.role_name, conflicts=role_conflicts(name=request.role_name),
        holdings=holdings_of(user=request.requester), asking=False,
        whose=request.requester.name or request.requester.email or "The requester",
    )  # fmt: skip


# Queuing after commit. The tasks call these services (a worker provisions a grant through
# `grant_provision`), and these services queue the tasks, by reference, once their transaction
# commits: a real two-way dependency between this module and access.tasks. The direction kept
# at import time is tasks -> services; the two functions below take the task objects from
# access.tasks when they run, the only imports in a function that the access app needs.


def _after_commit(task: Task, request: AccessRequest, actor: Actor, *args: Any) -> None:
    """Queue a task once the transaction commits, carrying who caused it in its headers."""
    # Who, not how: the worker's records say they came through a task (access.tasks.actor_of).
    headers = {"atrium_actor": actor.id, "atrium_actor_name": actor.name,
               "atrium_actor_email": actor.email}  # fmt: skip
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
            f"The duration must be longer than zero and at most {duration_words(longest)}."
        )
    open_request = AccessRequest.objects.open().filter(requester=requester, role_name=role)
    rules = role_rules(names=[role])[role]
    conflicts = role_conflicts(name=role)
    with transaction.atomic():
        _person_locked(requester)
        existing = open_request.first()
        if existing:
            return existing, False
        refusal = conflict_refusal(
            role=role, conflicts=conflicts, holdings=holdings_of(user=requester), asking=True
        )
        if refusal:
            raise RequestRefused(refusal)
        # Granted at once when one of the role's rules says so, the person's groups read now.
        rule = auto_approval(
            viewer_fresh(requester), rules=rules, duration=duration, reason=reason.strip()
        )
        try:
            with transaction.atomic():
                request = AccessRequest.objects.create(
                    requester=requester, entity_ref=entity.ref, role_name=role,
                    reason=reason.strip(), duration=duration,
                    approvals_required=scope.approvals_required,
                )  # fmt: skip
        except IntegrityError:  # the same person asked twice at once: one request stands
            return open_request.get(), False
        actor.record("request.created", request_target(request), request.correlation_id,
                     reason=request.reason, duration=duration_iso(duration))  # fmt: skip
        if rule is None:
            _notify_after_commit(request, actor, "requested")
            return request, True
        stored = registry_entry_json(RegistryEntry(auto_approve=(rule,)))["autoApprove"][0]
        request.state, request.decided_at = AccessRequest.State.APPROVED, timezone.now()
        request.kind, request.rule = AccessRequest.Kind.AUTO_APPROVED, stored
        request.save()
        logger.info("request %s: approved by rule %s", request.pk, stored)
        actor.record("request.auto_approved", request_target(request), request.correlation_id,
                     rule=stored, words=rule_words(rule))  # fmt: skip
        _notify_after_commit(request, actor, "auto_approved")
        _notify_after_commit(request, actor, "approved")
        _provision_after_commit(request, actor)
    return request, True


def access_break_glass(
    *,
    requester: User,
    entity: Entity,
    role: str,
    reason: str,
    duration: timedelta | None,
    actor: Actor,
) -> AccessRequest:
    """Break glass: grant oneself a role at once, for a short time, saying why.

    Only for a role an admin opened to it, only to members of its group (as the catalog says
    now), never a protected role; nothing that conflicts. The grant takes the usual way into
    Auth0 (and ends on time); every owner and portal admin is told at once, and a review of
    the use opens for the owners once it is granted (`_grant_activate`). A request of theirs
    for the role still waiting is withdrawn: the break-glass grant replaces it."""
    rules = role_rules(names=[role])[role]
    rule = rules.entry.break_glass
    longest = break_glass_longest(rule=rule, rules=rules) if rule else timedelta(0)
    duration = duration or longest
    conflicts = role_conflicts(name=role)
    with transaction.atomic():
        _person_locked(requester)
        viewer = viewer_fresh(requester)
        refusal = break_glass_refusal(
            viewer, entity=entity, rules=rules, duration=duration, reason=reason
        ) or conflict_refusal(
            role=role, conflicts=conflicts, holdings=holdings_of(user=requester), asking=True
        )
        if refusal or rule is None:
            raise RequestRefused(refusal or f"{role} is not open to break-glass.")
        for standing in (
            AccessRequest.objects.open().locked().filter(requester=requester, role_name=role)
        ):
            if standing.state != AccessRequest.State.PENDING:
                raise RequestRefused(
                    f"Your request {standing.pk} for {role} is {standing.get_state_display()}"
                    " already."
                )
            standing.state, standing.decided_at = AccessRequest.State.CANCELLED, timezone.now()
            standing.note = "withdrawn: replaced by a break-glass grant"
            standing.save()
            actor.record("request.cancelled", request_target(standing),
                         standing.correlation_id, reason="replaced by break-glass")  # fmt: skip
        stored = registry_entry_json(RegistryEntry(break_glass=rule))["breakGlass"]
        request = AccessRequest.objects.create(
            requester=requester, entity_ref=entity.ref, role_name=role, reason=reason.strip(),
            duration=duration, state=AccessRequest.State.APPROVED, decided_at=timezone.now(),
            kind=AccessRequest.Kind.BREAK_GLASS, rule=stored,
        )  # fmt: skip
        logger.warning("request %s: break-glass into %s by %s", request.pk, role, actor.id)
        actor.record("request.break_glass", request_target(request), request.correlation_id,
                     reason=request.reason, duration=duration_iso(duration),
                     rule=stored)  # fmt: skip
        _notify_after_commit(request, actor, "break_glass")
        _provision_after_commit(request, actor)
    return request


def access_request_decide(
    *,
    request_id: int,
    approver: User,
    outcome: str,
    comment: str,
    actor: Actor,
    scopes: dict[tuple[str, str], DecisionScope] | None = None,
    mfa_at: float | None = None,
) -> AccessRequest:
    """Approve or deny. The row is locked and state and eligibility are checked again under the
    lock, so of two decisions at the same moment one wins and the other is told who decided.

    An approval that would give the requester two conflicting roles is refused (they may have
    gained the other since asking), judged under the lock on them. Deciding a sensitive role's
    request needs a multi-factor sign-in at `mfa_at` (Unix time) fresh enough
    (StepUpRequired otherwise).

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
        if viewer.has_decided((d.approver.sub, d.approver.email) for d in earlier):
            raise AlreadyDecided("You decided this request already, from another account.")
        if not may_decide(viewer=viewer, request=request, scope=scope):
            raise NotAllowed(_why_not_decider(viewer, request, scope))
        if outcome == Decision.Outcome.APPROVED:
            refusal = _grant_conflict(request)
            if refusal:
                raise NotAllowed(f"This approval is refused: {refusal}")
        rules = role_rules(names=[request.role_name])[request.role_name]
        if step_up_needed(rules=rules, mfa_at=mfa_at, now=time.time()):
            raise StepUpRequired(
                f"{request.role_name} is sensitive: deciding a request for it needs a "
                "multi-factor sign-in within the last "
                f"{duration_words(settings.ACCESS_STEP_UP_MAX_AGE)}."
            )
        Decision.objects.create(
            request=request, approver=approver, outcome=outcome, comment=comment.strip()
        )
        verb = "approved" if outcome == Decision.Outcome.APPROVED else "denied"
        logger.info("request %s: %s by %s", request.pk, verb, actor.id)
        actor.record(f"request.{verb}", request_target(request), request.correlation_id,
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
        actor.record("request.cancelled", request_target(request), request.correlation_id)
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
        if not refusal:
            # The worker asks too: nothing granted may make a conflict, however it was approved.
            refusal = _grant_conflict(request)
        if refusal:
            request.state, request.note = AccessRequest.State.FAILED, refusal
            request.save()
            actor.record("grant.refused", request_target(request), request.correlation_id,
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
            actor.record("grant.extended", request_target(earlier), earlier.correlation_id,
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
        actor.record("grant.activated", request_target(request), request.correlation_id,
                     **detail)  # fmt: skip
        if request.kind == AccessRequest.Kind.BREAK_GLASS and not request.reviews.exists():
            # The owners confirm the use, or revoke it, in a review of it opened as it begins
            # (its snapshot holds the grant; a Remove ends it in Auth0 as a revocation does).
            review = review_open(
                role=request.role_name, kind=AccessReview.Kind.USE, holders=[request.requester],
                reason="break-glass use", request=request, actor=actor,
            )  # fmt: skip
            actor.record("request.review_opened", request_target(request),
                         request.correlation_id, review=review.pk)  # fmt: skip
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
        actor.record("grant.failed", request_target(request), request.correlation_id,
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
        _grant_ended(request, actor, revoke=revoke)
    return True


def _grant_ended(request: AccessRequest, actor: Actor, *, revoke: bool, **detail: Any) -> None:
    """In the caller's transaction, with the grant locked and Auth0 told already: the grant
    ends (expired on time, or revoked), its membership leaves the mirror (and so every kept
    viewer), the audit log says so and its holder is told once it commits."""
    request.state = AccessRequest.State.REVOKED if revoke else AccessRequest.State.EXPIRED
    request.ended_at = timezone.now()
    request.save()
    RoleMembership.objects.filter(
        user=request.requester, role__name=request.role_name,
        source=RoleMembership.Source.PORTAL_GRANT,
    ).delete()  # fmt: skip
    action = "grant.revoked" if revoke else "grant.expired"
    actor.record(action, request_target(request), request.correlation_id, **detail)
    _notify_after_commit(request, actor, "revoked" if revoke else "expired")


def review_removal_carry_out(
    *, item_id: int, actor: Actor, directory: Directory | None = None
) -> str:
    """Carry a review's Remove into Auth0 and the portal; the removal's state.

    The path of a revocation (`grant_end`): Auth0 first, then, in one transaction with the
    holder's row locked, the portal grant behind the holding revoked (with its audit record
    and mail) and the membership gone from the mirror and from every kept viewer, whatever
    its source: granted by the portal, outside it in Auth0, or seen only in a sign-in token.

    Idempotent: a removal done is left alone, and Auth0 removes a role not held without
    complaint, so a retry, a redelivered message or the reconciler may run it again. An
    Auth0Error leaves it pending for the task's retry (and failed after the last), never done.
    """
    item = AccessReviewItem.objects.select_related("user", "review__role").get(pk=item_id)
    review = item.review
    correlate(review.correlation_id)
    if item.decision != AccessReviewItem.Decision.REMOVE or item.removal in (
        AccessReviewItem.Removal.DONE, AccessReviewItem.Removal.SUPERSEDED,
    ):  # fmt: skip
        return item.removal
    role_name = review.role.name
    if later := _approved_after(item, role_name=role_name):
        return _removal_superseded(item_id=item.pk, later=later, actor=actor)
    AccessReviewItem.objects.filter(pk=item.pk).update(
        removal_attempts=item.removal_attempts + 1, updated_at=timezone.now()
    )
    directory = directory or shared_directory()
    directory.unassign(
        item.user.sub, [_role_id(role_name, directory)], correlation_id=review.correlation_id
    )
    with transaction.atomic():
        item = AccessReviewItem.objects.select_for_update().select_related("user").get(pk=item_id)
        if item.removal == AccessReviewItem.Removal.DONE:
            return item.removal
        held = RoleMembership.objects.filter(user=item.user, role__name=role_name).exists()
        grants = AccessRequest.objects.locked().filter(
            requester=item.user, role_name=role_name, state=AccessRequest.State.ACTIVE
        )
        revoked = []
        for grant in grants:
            _grant_ended(grant, actor, revoke=True, reason=f"removed in access review {review.pk}")
            revoked.append(grant.pk)
        with viewers_changed_once():
            RoleMembership.objects.filter(user=item.user, role__name=role_name).delete()
        item.removal, item.removal_error = AccessReviewItem.Removal.DONE, ""
        item.removed_at = timezone.now()
        item.save(update_fields=["removal", "removal_error", "removed_at", "updated_at"])
        actor.record("review.removal_done", f"{role_name} review {review.pk} → {item.user.sub}",
                     review.correlation_id, holder=item.user.sub, source=item.source,
                     grants_revoked=revoked, in_the_mirror=held)  # fmt: skip
    logger.info("review %s: %s removed from %s", review.pk, role_name, item.user.sub)
    return AccessReviewItem.Removal.DONE


_GRANTED_OR_GRANTING = (
    AccessRequest.State.APPROVED,
    AccessRequest.State.PROVISIONING,
    AccessRequest.State.ACTIVE,
)


def _approved_after(item: AccessReviewItem, *, role_name: str) -> int | None:
    """A grant of the role to this holder that an owner approved after the Remove was decided:
    after the reviewer's decision (the holder asked again while the removal waited for Auth0),
    or, for the removal policy, which decides for nobody, after the snapshot was taken (an
    owner who approved the holder since has looked at them more lately than the review). Its
    request's id, else None: that later decision stands; the Remove was about the holding the
    snapshot saw."""
    since = item.decided_at if item.decided_by_id is not None else item.review.opened_at
    if since is None:
        return None
    return (
        AccessRequest.objects.filter(
            requester_id=item.user_id, role_name=role_name, decided_at__gt=since
        )
        .filter(state__in=_GRANTED_OR_GRANTING)
        .values_list("pk", flat=True)
        .first()
    )


def _removal_superseded(*, item_id: int, later: int, actor: Actor) -> str:
    with transaction.atomic():
        item = (
            AccessReviewItem.objects.select_for_update()
            .select_related("review__role")
            .get(pk=item_id)
        )
        if item.removal != AccessReviewItem.Removal.PENDING:
            return item.removal
        item.removal, item.removal_error = AccessReviewItem.Removal.SUPERSEDED, ""
        item.save(update_fields=["removal", "removal_error", "updated_at"])
        review = item.review
        actor.record("review.removal_superseded",
                     f"{review.role.name} review {review.pk} → {item.sub}",
                     review.correlation_id, holder=item.sub, later_request=later)  # fmt: skip
    return AccessReviewItem.Removal.SUPERSEDED


def review_removal_failing(*, item_id: int, message: str, actor: Actor, last: bool) -> None:
    """Auth0 refused a removal: the error is shown with the holder while the task tries again,
    and after its last try the removal is failed (recorded, for a reviewer to retry)."""
    with transaction.atomic():
        item = (
            AccessReviewItem.objects.select_for_update()
            .select_related("review__role")
            .get(pk=item_id)
        )
        if item.removal != AccessReviewItem.Removal.PENDING:
            return
        item.removal_error = message[:2000]
        if last:
            item.removal = AccessReviewItem.Removal.FAILED
        item.save(update_fields=["removal", "removal_error", "updated_at"])
        if last:
            review = item.review
            actor.record("review.removal_failed",
                         f"{review.role.name} review {review.pk} → {item.sub}",
                         review.correlation_id, holder=item.sub, error=message)  # fmt: skip


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
            actor.record("request.lapsed", request_target(request), request.correlation_id)
            _notify_after_commit(request, actor, "lapsed")
            lapsed += 1
    return lapsed


def grants_remind_claim() -> list[int]:
    """Grants ending within ACCESS_REMINDER_BEFORE whose holder was not reminded yet, marked
    reminded now; their ids. Each is claimed by one conditional update, so two runs at once
    remind nobody twice."""
    soon = timezone.now() + settings.ACCESS_REMINDER_BEFORE
    due = AccessRequest.objects.filter(
        state=AccessRequest.State.ACTIVE, expires_at__lte=soon, reminded_at__isnull=True
    )
    return [
        request_id
        for request_id in list(due.values_list("pk", flat=True))
        if AccessRequest.objects.filter(pk=request_id, reminded_at__isnull=True).update(
            reminded_at=timezone.now()
        )
    ]
