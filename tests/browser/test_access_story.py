"""The whole story in Chromium, with a real Celery worker and the devtenant: Ada asks for
payments.viewer, Grace approves, the worker grants it in Auth0, Ada sees the details, and
the grant ends on time."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from access.models import AccessRequest, AuditEvent
from portal.celery import app as celery_app
from tests.browser.conftest import demo_seed
from tests.helpers import browser_sign_in
from tests.worker import StartWorker, Worker, access_tasks_on, auth0_env

pytestmark = pytest.mark.django_db(transaction=True)
PAYMENTS_API = "/catalog/default/component/payments-api/"


@pytest.fixture
def worker(start_worker: StartWorker, portal: Any, settings: Any) -> Iterator[Worker]:
    """A worker as `make run` starts one, on a queue of its own that the portal's access
    tasks are routed to for this test."""
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        pytest.skip("set REDIS_URL to run the worker against Redis (CI does)")
    started = start_worker(broker_url=redis_url, env=auth0_env(settings))
    with access_tasks_on(started.queue):
        yield started


def wait_for(state: str, worker: Worker, timeout: float = 60) -> AccessRequest:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request = AccessRequest.objects.get()
        if request.state == state:
            return request
        time.sleep(0.3)
    pytest.fail(f"the request stayed {request.state}, not {state}:\n{worker.output()}")


def tenant_roles(issuer: str, email: str) -> set[str]:
    state = requests.get(f"{issuer}__admin/state", timeout=10).json()
    user_id = next(u["user_id"] for u in state["users"] if u["email"] == email)
    names = {r["id"]: r["name"] for r in state["roles"]}
    return {names[a["role_id"]] for a in state["assignments"] if a["user_id"] == user_id}


def test_ada_asks_grace_approves_the_worker_grants_and_the_grant_ends(
    page: Page, browser: Browser, portal: Any, worker: Worker, settings: Any
) -> None:
    demo_seed()

    # Ada finds the payments API and asks for payments.viewer.
    browser_sign_in(page, portal.url, "ada@example.com")
    page.get_by_label("Search").fill("pay")
    page.locator("#results").get_by_role("link", name="Payments API", exact=True).click()
    expect(page.get_by_role("region", name="Restricted details")).to_be_visible()
    page.locator('a[href*="role=payments.viewer"]').click()
    expect(
        page.get_by_text("Decided by Payments team, the owners of payments.viewer")
    ).to_be_visible()
    page.get_by_label("Why do you need it?").fill("On call for payments this week")
    page.get_by_label("For how long").select_option(label="7 days")
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_text("Your request was sent")).to_be_visible()
    expect(page.get_by_text("waiting for a decision")).to_be_visible()

    # Ada cannot approve it herself: nothing waits on her dashboard.
    page.goto(f"{portal.url}/access/approvals/")
    expect(page.get_by_text("Nothing is waiting for you.")).to_be_visible()

    # Grace sees it waiting, with a count in the bar, and approves it inline.
    grace = browser.new_context().new_page()
    browser_sign_in(grace, portal.url, "grace@example.com")
    expect(grace.get_by_role("navigation", name="Sections")).to_contain_text("Approvals 1")
    grace.get_by_role("link", name="Approvals").click()
    other_tab = grace.context.new_page()  # the dashboard left open in a second tab
    other_tab.goto(f"{portal.url}/access/approvals/")
    row = grace.locator("tr", has_text="On call for payments this week")
    expect(row).to_contain_text("payments.viewer")
    row.get_by_role("button", name="Approve").click()
    expect(grace.get_by_role("status")).to_contain_text("You approved the request")
    # The stale tab is told, in the row, that it was decided already (a 409 swapped in).
    other_tab.locator("tr", has_text="On call for payments").get_by_role(
        "button", name="Deny"
    ).click()
    expect(other_tab.get_by_role("status")).to_contain_text(
        "This request was already approved by Grace"
    )

    # The worker carries it into Auth0 (the devtenant) and the grant is active.
    granted = wait_for("active", worker)
    assert "payments.viewer" in tenant_roles(settings.AUTH0_ISSUER, "ada@example.com")
    page.goto(f"{portal.url}{PAYMENTS_API}")
    expect(page.get_by_role("link", name="Runbook")).to_be_visible()
    actions = AuditEvent.objects.filter(correlation_id=granted.correlation_id)
    activated = actions.get(action="grant.activated")
    approver = granted.decisions.get().approver
    # A real worker's record names the approver who set it going, by name too.
    assert (activated.actor, activated.actor_name, activated.via) == (
        approver.sub,
        approver.name,
        "task",
    )
    assert approver.name and activated.actor_email == "grace@example.com"

    # Time is up: the expiry job, run by the worker, ends it in Auth0 and in the portal.
    AccessRequest.objects.filter(pk=granted.pk).update(expires_at=granted.starts_at)
    celery_app.send_task("access.tasks.expire_grants_task", queue=worker.queue)
    wait_for("expired", worker)
    assert "payments.viewer" not in tenant_roles(settings.AUTH0_ISSUER, "ada@example.com")
    page.goto(f"{portal.url}{PAYMENTS_API}")
    expect(page.get_by_role("link", name="Runbook")).to_have_count(0)
    page.goto(f"{portal.url}/access/")
    expect(page.get_by_role("region", name="My requests")).to_contain_text("ended on time")
