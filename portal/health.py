"""Readiness checks: can this process reach the database, the broker and the cache right now."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from portal.celery import app as celery_app

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    error: str = ""


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


class StaleMirror(Exception):
    """The roles mirror has not been synced with Auth0 for three intervals."""


def _roles_mirror() -> None:
    from access.selectors import mirror_state

    state = mirror_state()
    if state.stale:
        raise StaleMirror(state.stale_reason)


def _checks() -> dict[str, Callable[[], None]]:
    checks = {"database": _database, "broker": _broker, "roles mirror": _roles_mirror}
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
            results.append(CheckResult(name=name, ok=False, error=type(exc).__name__))
        else:
            results.append(CheckResult(name=name, ok=True))
    return results
