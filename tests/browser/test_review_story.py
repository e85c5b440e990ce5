"""An access review from start to completion in Chromium, with a real Celery worker and the
devtenant: Linus sets a 3-month review on payments.viewer, `open_reviews --now` opens it, Grace
removes Ada and keeps Linus, the worker takes Ada's role away in Auth0, Grace completes the
review and the evidence page shows all of it. A stale tab of Grace's is told it came late."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from playwright.sync_api import Browser, Page, expect

from access.models import AccessReview, AccessReviewItem, RoleMembership
from access.sync import roles_sync
from tests.browser.conftest import demo_seed
from tests.browser.test_content_security_policy import watched
from tests.helpers import DevTenant, browser_sign_in, management, tenant_ids, tenant_roles_of
from tests.worker import StartWorker, Worker, access_tasks_on, auth0_env

pytestmark = pytest.mark.django_db(transaction=True)
ROLE = "payments.viewer"


@pytest.fixture
def worker(start_worker: StartWorker, portal: Any, settings: Any) -> Iterator[Worker]:
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        pytest.skip("set REDIS_URL to run the worker against Redis (CI does)")
    started = start_worker(broker_url=redis_url, env=auth0_env(settings))
    with access_tasks_on(started.queue):
        yield started


def test_linus_schedules_a_review_grace_removes_ada_and_the_evidence_shows_it(
    page: Page, browser: Browser, portal: Any, worker: Worker, devtenant_process: DevTenant
) -> None:
    demo_seed()
    users, roles = tenant_ids(devtenant_process)
    # Ada and Linus were given payments.viewer in Auth0 directly; the sync mirrors it.
    for email in ("ada@example.com", "linus@example.com"):
        management(devtenant_process, "POST", f"users/{users[email]}/roles",
                   {"roles": [roles[ROLE]]})  # fmt: skip
    roles_sync()

    # Linus sets a review every three months on the role's page.
    browser_sign_in(page, portal.url, "linus@example.com")
    page.goto(f"{portal.url}/access/roles/{ROLE}/")
    page.get_by_label("Owners review who holds it").select_option(label="every 3 months")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text(f"{ROLE}: changed reviewEvery.")).to_be_visible()

    # Forced due for the walk-through, as `make run`'s README says.
    out = StringIO()
    call_command("open_reviews", "--now", stdout=out)
    assert "1 review opened." in out.getvalue()
    review = AccessReview.objects.get()

    # Grace finds it under Reviews, waiting for her.
    grace = browser.new_context().new_page()
    violations = watched(grace)  # the Content-Security-Policy holds throughout
    browser_sign_in(grace, portal.url, "grace@example.com")
    grace.get_by_role("navigation", name="Sections").get_by_role("link", name="Reviews").click()
    waiting = grace.get_by_role("region", name="Waiting for you")
    expect(waiting).to_contain_text(ROLE)
    expect(waiting).to_contain_text("0 of 2 decided")
    stale = grace.context.new_page()  # the same review left open in a second tab
    stale.goto(f"{portal.url}/access/reviews/{review.pk}/")
    waiting.get_by_role("link", name="Review").click()
    expect(grace.get_by_role("heading", name=f"Who holds {ROLE}")).to_be_visible()
    ada_row = grace.locator("tr", has_text="ada@example.com")
    expect(ada_row).to_contain_text("Granted in Auth0 directly")
    expect(ada_row).to_contain_text("granted outside the portal")  # flagged
    ada_row.get_by_label("Note on").fill("Moved to checkout in March")
    ada_row.get_by_role("button", name="Remove").click()
    expect(grace.locator("tr", has_text="ada@example.com")).to_contain_text(
        "removed by Grace Hopper"
    )
    linus_row = grace.locator("tr", has_text="linus@example.com")
    linus_row.get_by_role("button", name="Keep").click()
    expect(grace.locator("tr", has_text="linus@example.com")).to_contain_text("kept by Grace")

    # The stale tab's Keep on Ada comes too late: told so in the row (a 409 swapped in).
    stale.locator("tr", has_text="ada@example.com").get_by_role("button", name="Keep").click()
    expect(stale.locator("tr", has_text="ada@example.com")).to_contain_text(
        "was already removed by you"
    )

    # The worker takes the role away in Auth0 and in the mirror.
    deadline = time.monotonic() + 60
    ada_item = AccessReviewItem.objects.get(review=review, email="ada@example.com")
    while AccessReviewItem.objects.get(pk=ada_item.pk).removal != "done":
        assert time.monotonic() < deadline, worker.output()
        time.sleep(0.3)
    assert ROLE not in tenant_roles_of(devtenant_process, "ada@example.com")
    assert ROLE in tenant_roles_of(devtenant_process, "linus@example.com")
    assert not RoleMembership.objects.filter(user__email="ada@example.com", role__name=ROLE)

    grace.reload()
    expect(grace.get_by_text("Removals in Auth0: 1 done.")).to_be_visible()
    grace.get_by_role("button", name="Complete the review").click()
    expect(grace.get_by_text("The review is complete")).to_be_visible()
    expect(grace.locator(".review-summary")).to_contain_text("Completed")

    # The evidence: the snapshot, both decisions with who and when, the removal's outcome,
    # and the review's audit records.
    grace.get_by_role("link", name="Evidence (printable)").click()
    evidence = grace.locator(".evidence")
    expect(evidence).to_contain_text(f"Review {review.pk}: who holds {ROLE}")
    ada_line = evidence.locator("tr", has_text="ada@example.com")
    expect(ada_line).to_contain_text("removed")
    expect(ada_line).to_contain_text("Grace Hopper (grace@example.com)")
    expect(ada_line).to_contain_text("Moved to checkout in March")
    expect(ada_line).to_contain_text(re.compile(r"removed \w{3} \d+ \w{3} \d{4}"))  # in Auth0
    expect(evidence.locator("tr", has_text="linus@example.com")).to_contain_text("kept")
    for words in ("Access review opened", "Removed in an access review",
                  "Access removed after a review", "Access review completed"):  # fmt: skip
        expect(evidence).to_contain_text(words)
    assert violations == []
