"""Grants carried out by a real Celery worker: one killed mid-provisioning is finished by the
reconciler on another, once."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from typing import Any

import pytest
import requests

from access.audit import Actor
from access.models import AccessRequest, AuditEvent
from access.services import access_request_decide
from portal.celery import app as celery_app
from tests.helpers import DevTenant, ask, person_of_tenant, tenant_roles_of
from tests.worker import StartWorker, access_tasks_on, auth0_env

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def wait_until(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def test_a_worker_killed_while_provisioning_leaves_a_grant_the_reconciler_finishes_once(
    devtenant: DevTenant,
    payments: None,
    start_worker: StartWorker,
    settings: Any,
) -> None:
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        pytest.skip("set REDIS_URL to run the worker against Redis (CI does)")
    _, as_ada = person_of_tenant(devtenant, "ada@example.com")
    grace, _ = person_of_tenant(devtenant, "grace@example.com")
    # Auth0 is slow to answer the assignment: the worker is killed while it waits.
    devtenant.admin("faults", {"method": "POST", "path": "/api/v2/users/*/roles",
                               "delay": 6, "times": 1})  # fmt: skip
    env = {**auth0_env(settings), "ACCESS_RECONCILE_AFTER": "1"}
    doomed = start_worker(broker_url=redis_url, env=env)

    # Every task this test sets going goes to its own workers, the request's mail too.
    with access_tasks_on(doomed.queue):
        ask(as_ada)
        request = AccessRequest.objects.get()
        access_request_decide(request_id=request.pk, approver=grace, outcome="approved",
                              comment="", actor=Actor(grace.sub))  # fmt: skip
        wait_until(lambda: AccessRequest.objects.get().state == "provisioning", "provisioning")
        time.sleep(0.5)
        doomed.process.kill()
        doomed.process.wait()
    time.sleep(1.5)
    assert AccessRequest.objects.get().state == "provisioning"  # left half done

    rescuer = start_worker(broker_url=redis_url, env=env)
    with access_tasks_on(rescuer.queue):
        for _ in range(2):  # the reconciler runs again before and after the grant is done
            celery_app.send_task("access.tasks.reconcile_grants_task", queue=rescuer.queue)
            wait_until(lambda: AccessRequest.objects.get().state == "active", "active")

    time.sleep(1)
    request.refresh_from_db()
    assert request.expires_at == request.starts_at + timedelta(days=7)  # type: ignore[operator]
    assert AuditEvent.objects.filter(action="grant.activated").count() == 1
    assert "payments.viewer" in tenant_roles_of(devtenant, "ada@example.com")
    log = requests.get(devtenant.url("__admin/requests"), timeout=10).json()
    assigned = [r for r in log if r["method"] == "POST" and r["path"].endswith("/roles")]
    assert (
        1 <= len(assigned) <= 2
    )  # the killed worker's call may have landed; assigning is idempotent
