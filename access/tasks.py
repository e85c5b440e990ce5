"""Celery tasks of the access app: the roles mirror kept in step with Auth0, grants carried
into Auth0 and ended on time, and the mail that tells people. Tasks take primary keys; the
person who caused a task travels in its message headers (`atrium_actor`, with their name and
e-mail), so the audit record the worker writes names them (through "task")."""

from __future__ import annotations

import logging

import httpx
from celery import Task, shared_task

from access.audit import SYSTEM_ACTOR, Actor
from access.auth0 import Auth0Error
from access.models import AccessRequest, AuditEvent
from access.notifications import request_event_notify, review_event_notify
from access.reviews import (
    review_removals_stuck,
    reviews_enforce,
    reviews_open_due,
    reviews_remind_claim,
)
from access.selectors import grants_stuck
from access.services import (
    grant_fail,
    grant_provision,
    grants_expire,
    grants_remind_claim,
    requests_lapse,
    review_removal_carry_out,
    review_removal_failing,
)
from access.sync import SyncBusy, roles_sync

logger = logging.getLogger(__name__)

PROVISION_RETRIES = 6


def actor_of(task: Task) -> Actor:
    """Who caused this task, from its headers; the portal itself when nobody did. The record
    says it came through a task, whatever the cause came through. A worker has custom headers
    on the request itself; a task applied in-process keeps them apart."""
    headers = task.request.headers or {}

    def header(name: str) -> str:
        return str(task.request.get(name) or headers.get(name) or "")

    who = header("atrium_actor") or SYSTEM_ACTOR
    return Actor(who, via=AuditEvent.Via.TASK, name=header("atrium_actor_name"),
                 email=header("atrium_actor_email"))  # fmt: skip


@shared_task
def roles_sync_task() -> str:
    """Beat's entry point, every ROLE_SYNC_INTERVAL seconds."""
    try:
        report = roles_sync()
    except SyncBusy as busy:
        return f"skipped: {busy}"
    logger.info(
        "roles sync %s: %d roles, %d added, %d removed, %d API calls, %.1f s%s",
        report.outcome, report.roles, len(report.added), len(report.removed),
        report.api_calls, report.seconds, f" ({report.run.message})" if report.run.message else "",
    )  # fmt: skip
    return report.outcome


@shared_task(bind=True, max_retries=PROVISION_RETRIES)
def provision_grant_task(self: Task, request_id: int) -> str:
    """Assign an approved request's role in Auth0. Retried with growing waits when Auth0 fails
    (the directory client has waited out rate limits already); failed, for an admin to retry,
    after the last."""
    actor = actor_of(self)
    try:
        return grant_provision(request_id=request_id, actor=actor)
    except Auth0Error as error:
        if self.request.retries >= PROVISION_RETRIES:
            grant_fail(request_id=request_id, message=str(error), actor=actor)
            return AccessRequest.State.FAILED
        raise self.retry(exc=error, countdown=min(300, 5 * 2**self.request.retries)) from error


@shared_task
def reconcile_grants_task() -> list[int]:
    """Grants stuck in approved or provisioning (a worker died, a message was lost) go round
    again; provisioning is idempotent, so a grant that was nearly done is finished once. So do
    the removals of access reviews left pending, which are idempotent too."""
    stuck = grants_stuck()
    for request_id in stuck:
        provision_grant_task.apply_async(args=(request_id,), headers={"atrium_actor": "system"})
    for item_id in review_removals_stuck():
        review_removal_task.apply_async(args=(item_id,), headers={"atrium_actor": "system"})
    return stuck


@shared_task
def expire_grants_task() -> list[int]:
    return grants_expire()


@shared_task
def lapse_requests_task() -> int:
    return requests_lapse()


@shared_task
def remind_grants_task() -> int:
    """Tell holders a set time before their grant ends, once, with a link to ask again."""
    due = grants_remind_claim()
    for request_id in due:
        notify_task.delay(request_id, "reminder")
    return len(due)


# --- telling people --------------------------------------------------------------------------


@shared_task(bind=True, max_retries=5, default_retry_delay=60)
def notify_task(self: Task, request_id: int, event: str) -> int:
    """Tell the people an event concerns (access/notifications.py). Retried when the mail
    server or Slack fails; the request itself never waits for it."""
    try:
        return request_event_notify(request_id=request_id, event=event)
    except (OSError, httpx.HTTPError) as error:
        raise self.retry(exc=error) from error


# --- access reviews --------------------------------------------------------------------------

REMOVAL_RETRIES = 6


@shared_task(bind=True, max_retries=REMOVAL_RETRIES)
def review_removal_task(self: Task, item_id: int) -> str:
    """Carry a review's Remove into Auth0 and the mirror. Retried with growing waits when Auth0
    fails, the error shown with the holder meanwhile; failed, for a reviewer to retry, after
    the last (access.reviews.REMOVAL_LONGEST_WAIT is the longest wait)."""
    actor = actor_of(self)
    try:
        return review_removal_carry_out(item_id=item_id, actor=actor)
    except Auth0Error as error:
        last = self.request.retries >= REMOVAL_RETRIES
        review_removal_failing(item_id=item_id, message=str(error), actor=actor, last=last)
        if last:
            return "failed"
        raise self.retry(exc=error, countdown=min(300, 5 * 2**self.request.retries)) from error


@shared_task
def open_reviews_task() -> list[int]:
    """Beat's: open the reviews falling due, then apply the removal policies past their time."""
    opened = reviews_open_due()
    reviews_enforce()
    return opened


@shared_task
def remind_reviews_task() -> int:
    """Beat's: remind the reviewers of open reviews, once a reminder slot."""
    claimed = reviews_remind_claim()
    for review_id, slot in claimed:
        review_notify_task.delay(review_id, "reminder", slot)
    return len(claimed)


@shared_task(bind=True, max_retries=5, default_retry_delay=60)
def review_notify_task(self: Task, review_id: int, event: str, slot: str = "") -> int:
    """Tell a review's reviewers (access/notifications.py); retried when mail or Slack fails."""
    try:
        return review_event_notify(review_id=review_id, event=event, slot=slot)
    except (OSError, httpx.HTTPError) as error:
        raise self.retry(exc=error) from error
