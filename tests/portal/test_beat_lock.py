"""Two real beats on one Redis send each scheduled run once (portal/beat.py's lock)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings

from portal.beat import entry_slot
from portal.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]
EVERY = 2
EXPIRES = 600
pytestmark = pytest.mark.integration


def beat(*, entry: str, queue: str, var_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    """A beat as the containers start it, with its own schedule file (as on its own machine)."""
    var_dir.mkdir()
    environment = {
        **os.environ,
        "DEBUG": "true",
        "ATRIUM_VAR_DIR": str(var_dir),
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "ATRIUM_TEST_BEAT_ENTRY": entry,
        "ATRIUM_TEST_BEAT_EVERY": str(EVERY),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.portal.beat_test_app", "beat",
         "--loglevel=INFO", "--max-interval=1"],
        cwd=ROOT, env=environment, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def test_two_beats_send_each_run_once(tmp_path: Path) -> None:
    # Procfile, docker-compose.yml and the Kubernetes beat run plain `celery beat`: the
    # scheduler comes from the settings.
    assert celery_app.conf.beat_scheduler == "portal.beat:LockedScheduler"
    if not settings.REDIS_URL:
        pytest.skip("set REDIS_URL to run beats against Redis (CI does)")
    entry = f"itest-beat-{uuid.uuid4().hex[:8]}"
    queue = f"itest-beat-{uuid.uuid4().hex}"
    broker = redis.Redis.from_url(settings.REDIS_URL)
    beats = [
        beat(entry=entry, queue=queue, var_dir=tmp_path / name, log=tmp_path / f"{name}.log")
        for name in ("first", "second")
    ]
    logs = [tmp_path / f"{name}.log" for name in ("first", "second")]
    try:
        # Both schedule from their start; then eight slots' worth of runs.
        deadline = time.monotonic() + 60
        while not all("beat: Starting..." in log.read_text() for log in logs):
            assert time.monotonic() < deadline, "\n".join(log.read_text() for log in logs)
            assert all(process.poll() is None for process in beats), "a beat exited:\n" + "\n".join(
                log.read_text() for log in logs
            )
            time.sleep(0.2)
        time.sleep(8 * EVERY)
    finally:
        for process in beats:
            process.terminate()
        for process in beats:
            process.wait(timeout=20)
    outputs = [log.read_text() for log in logs]
    keys = list(broker.keys(f"{queue}*"))
    messages = [json.loads(raw) for key in keys for raw in broker.lrange(key, 0, -1)]
    if keys:
        broker.delete(*keys)

    # When each message was sent, from the expiry beat stamped on it, and so its slot.
    sent = [
        datetime.fromisoformat(message["headers"]["expires"]) - timedelta(seconds=EXPIRES)
        for message in messages
    ]
    slots = [int(moment.timestamp() // EVERY) for moment in sent]
    assert len(messages) >= 4, "\n".join(outputs)
    assert len(slots) == len(set(slots)), f"a run was sent twice: slots {sorted(slots)}"
    # Both beats were due every slot; the one that came second in a slot sent nothing.
    assert sum(out.count("another beat sent this run") for out in outputs) >= 3, "\n".join(outputs)
    assert sum(out.count("Sending due task") for out in outputs) == len(messages)


def test_a_beats_runs_never_share_a_slot_and_crontabs_have_a_minute_each() -> None:
    from celery.beat import ScheduleEntry
    from celery.schedules import crontab, schedule

    every = ScheduleEntry(name="e", schedule=schedule(timedelta(seconds=300)), app=celery_app)
    # A beat's runs are at least the interval apart, late or not: each has a slot of its own.
    runs = [1_000_000.0 + 299.5, 1_000_000.0 + 299.5 + 300, 1_000_000.0 + 299.5 + 601.7]
    slots = [entry_slot(entry=every, now=moment)[0] for moment in runs]
    assert len(set(slots)) == 3
    assert entry_slot(entry=every, now=0)[1] == 300

    minutely = ScheduleEntry(name="c", schedule=crontab(), app=celery_app)
    assert entry_slot(entry=minutely, now=119.9) == (1, 60)
