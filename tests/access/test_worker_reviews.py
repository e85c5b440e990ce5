"""Access reviews with the real parts: two beats on Redis send the opening task, a real Celery
worker opens the review once, and carries an owner's removals into the devtenant."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from access.audit import Actor
from access.models import AccessReview, AccessReviewItem, AuditEvent, RoleMembership
from access.reviews import ItemDecision, review_decide
from access.sync import roles_sync
from tests.helpers import (
    DevTenant,
    management,
    own_role,
    person_of_tenant,
    tenant_ids,
    tenant_roles_of,
)
from tests.worker import ROOT, StartWorker, access_tasks_on, auth0_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
ROLE = "payments.viewer"


def wait_until(condition: Callable[[], Any], what: str, output: Callable[[], str],
               timeout: float = 60) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}:\n{output()}")


def beat(*, queue: str, var_dir: Path, log: Path, entry: str) -> subprocess.Popen[bytes]:
    """A beat sending beat's review task every second to the worker's queue."""
    var_dir.mkdir()
    environment = {
        **os.environ, "DEBUG": "true", "ATRIUM_VAR_DIR": str(var_dir),
        "CELERY_TASK_DEFAULT_QUEUE": queue, "ATRIUM_TEST_BEAT_ENTRY": entry,
        "ATRIUM_TEST_BEAT_EVERY": "1", "ATRIUM_TEST_BEAT_TASK": "access.tasks.open_reviews_task",
    }  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tests.portal.beat_test_app", "beat",
         "--loglevel=INFO", "--max-interval=1"],
        cwd=ROOT, env=environment, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def test_beat_opens_a_review_that_falls_due_once_and_the_worker_carries_its_removals(
    devtenant: DevTenant, payments: None, start_worker: StartWorker, settings: Any,
    tmp_path: Path,
) -> None:  # fmt: skip
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        pytest.skip("set REDIS_URL to run the worker and beats against Redis (CI does)")
    grace, _ = person_of_tenant(devtenant, "grace@example.com")
    users, roles = tenant_ids(devtenant)
    for email in ("ada@example.com", "linus@example.com"):  # granted in Auth0 directly
        management(devtenant, "POST", f"users/{users[email]}/roles", {"roles": [roles[ROLE]]})
    roles_sync()
    # Due in five days: within the two weeks before, so the next beat opens it.
    day = timezone.now().date()
    own_role(ROLE, "team-payments", reviewEvery="P6M", reviewDay=str(day + timedelta(days=5)))
    worker = start_worker(broker_url=redis_url, env=auth0_env(settings))
    entry = f"itest-reviews-{uuid.uuid4().hex[:8]}"
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    beats = [
        beat(queue=worker.queue, var_dir=tmp_path / log.stem, log=log, entry=entry) for log in logs
    ]

    def output() -> str:
        return worker.output() + "".join(log.read_text() for log in logs)

    try:
        wait_until(lambda: AccessReview.objects.exists(), "the review to open", output)
        # Both beats keep sending for a few more slots: the review opened once.
        time.sleep(4)
    finally:
        for process in beats:
            process.terminate()
        for process in beats:
            process.wait(timeout=20)
    assert AccessReview.objects.count() == 1
    assert AuditEvent.objects.filter(action="review.opened").count() == 1
    assert "Sending due task" in output()
    review = AccessReview.objects.get()
    assert review.due_at.date() == day + timedelta(days=5)
    ada = review.items.get(email="ada@example.com")
    assert ada.source == "auth0" and ada.flags == ["never", "outside"]

    with access_tasks_on(worker.queue):
        review_decide(
            review_id=review.pk, reviewer=grace, actor=Actor(grace.sub, name="Grace"),
            decisions=[ItemDecision(ada.pk, "remove", "moved to checkout")],
        )  # fmt: skip
        wait_until(
            lambda: AccessReviewItem.objects.get(pk=ada.pk).removal == "done",
            "the worker to carry the removal out", worker.output,
        )  # fmt: skip

    assert ROLE not in tenant_roles_of(devtenant, "ada@example.com")
    assert ROLE in tenant_roles_of(devtenant, "linus@example.com")
    assert not RoleMembership.objects.filter(user__email="ada@example.com", role__name=ROLE)
    done = AuditEvent.objects.get(action="review.removal_done")
    # The worker's record names the reviewer who set it going, through a task.
    assert (done.actor, done.via, done.correlation_id) == (grace.sub, "task", f"review-{review.pk}")
