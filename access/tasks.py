"""Celery tasks of the access app: the roles mirror is kept in step with Auth0."""

from __future__ import annotations

import logging

from celery import shared_task

from access.services import SyncBusy, roles_sync

logger = logging.getLogger(__name__)


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
