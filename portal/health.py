"""Readiness checks: can this process reach the database, the broker and the cache right now;
and, for admins, how current the roles mirror is."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from access.selectors import mirror_state, sync_history
from portal.celery import app as celery_app

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    error: str = ""
    # The exception's message: for the log and for admins, never for the open probe.
    detail: str = ""


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _broker() -> None:
    with celery_app.connection_for_write() as broker:
        if broker.transport_cls == "filesystem":
            # The filesystem transport never "connects": its folder is what must be there.
            folder = (broker.transport_options or {}).get("data_folder_in", "")
            if not os.access(folder, os.W_OK):
                raise OSError(f"broker folder {folder} is not writable")
        broker.ensure_connection(max_retries=1, interval_start=0, timeout=3)


def _cache() -> None:
    cache.set("atrium:readyz", "ok", timeout=5)
    if cache.get("atrium:readyz") != "ok":
        raise RuntimeError("cache did not return what was just written")


def _checks() -> dict[str, Callable[[], None]]:
    # Only what leaves this process unable to serve: a stale roles mirror (wrong Management API
    # credentials, say) still serves every page, so restarting web would not help; it is on
    # /healthz/details instead.
    checks = {"database": _database, "broker": _broker}
    if settings.REDIS_URL:
        checks["cache"] = _cache
    return checks


def readiness() -> list[CheckResult]:
    results = []
    for name, check in _checks().items():
        try:
            check()
        except Exception as exc:
            # The full message goes to the log; the unauthenticated probe gets the kind only.
            logger.warning("readiness check %s failed: %s", name, exc)
            results.append(
                CheckResult(name=name, ok=False, error=type(exc).__name__, detail=str(exc))
            )
        else:
            results.append(CheckResult(name=name, ok=True))
    return results


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def details() -> dict[str, Any]:
    """The readiness checks with their messages, the roles mirror's age and the last sync."""

    results = readiness()
    mirror = mirror_state()
    last = next(iter(sync_history(limit=1)), None)
    degraded = mirror.stale or any(not result.ok for result in results)
    return {
        "status": "degraded" if degraded else "ok",
        "checks": {
            result.name: "ok" if result.ok else f"down: {result.error}: {result.detail}"
            for result in results
        },
        "roles_mirror": {
            "last_synced_at": _when(mirror.last_synced_at),
            "age_seconds": None if mirror.age_seconds is None else round(mirror.age_seconds),
            "stale": mirror.stale,
            "stale_reason": mirror.stale_reason,
            "stale_after_seconds": 3 * settings.ROLE_SYNC_INTERVAL,
        },
        "last_sync": None
        if last is None
        else {
            "outcome": last.outcome,
            "started_at": _when(last.started_at),
            "finished_at": _when(last.finished_at),
            "api_calls": last.api_calls,
            "message": last.message,
        },
    }
