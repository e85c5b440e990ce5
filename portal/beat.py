"""Celery beat's scheduler: each scheduled run is sent once, however many beats are running."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from celery.beat import PersistentScheduler, ScheduleEntry
from django.core.cache import cache

logger = logging.getLogger(__name__)

# Crontab schedules are at most once a minute; their slot is the minute.
CRONTAB_SLOT_SECONDS = 60


def entry_slot(*, entry: ScheduleEntry, now: float) -> tuple[int, int]:
    """The entry's slot at `now` (wall-clock seconds) and how long the slot lasts: an entry due
    every N seconds has one slot per N seconds since the epoch, the same on every machine whose
    clock is right. One beat's runs are at least N seconds apart, so each lands in a slot of its
    own; a second beat's run lands in a slot the first has already used."""
    run_every = getattr(entry.schedule, "run_every", None)
    seconds = run_every.total_seconds() if run_every is not None else CRONTAB_SLOT_SECONDS
    length = max(1, math.floor(seconds))
    return math.floor(now // length), length


def slot_claim(*, entry: ScheduleEntry, now: float) -> bool:
    """Take the entry's current slot in the shared cache (Redis in production); False when
    another beat took it first."""
    slot, length = entry_slot(entry=entry, now=now)
    # The key names its slot, so it only has to outlive the slot; it then expires by itself.
    return bool(cache.add(f"atrium:beat:{entry.name}:{slot}", "sent", timeout=length))


class LockedScheduler(PersistentScheduler):
    """The default scheduler (its state in CELERY_BEAT_SCHEDULE_FILENAME), except that a due
    entry is sent only by the beat that claims its slot in Redis. A second beat, during a
    rolling deploy or by mistake, then sends nothing twice; each beat still keeps its own
    timetable, so whichever is ahead sends."""

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        try:
            claimed = slot_claim(entry=entry, now=time.time())
        except Exception:
            # Without Redis the broker (the same Redis) is down too: the run is skipped rather
            # than risked twice, and the next slot tries again.
            logger.exception("beat: %s not sent: its lock could not be taken", entry.name)
            return
        if not claimed:
            logger.info("beat: %s not sent: another beat sent this run", entry.name)
            return
        super().apply_entry(entry, producer=producer)
