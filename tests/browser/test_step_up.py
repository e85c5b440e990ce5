"""Step-up in Chromium against the devtenant: Grace's approval of a sensitive role's request
waits for the devtenant's second-factor page and proceeds after it; a sign-in that comes back
without "mfa" in `amr`, or with a stale `auth_time`, decides nothing."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from access.models import AccessRequest
from devtenant.app import MFA_DEMO_CODE
from tests.browser.conftest import demo_seed
from tests.factories import AccessRequestFactory, UserFactory
from tests.helpers import browser_sign_in

pytestmark = pytest.mark.django_db(transaction=True)
WORKER = "component:default/payments-worker"  # requires payments.admin, sensitive in the demo


def ada_waits_for_payments_admin() -> AccessRequest:
    demo_seed()
    request: AccessRequest = AccessRequestFactory.create(
        requester=UserFactory.create(email="ada@example.com", name="Ada Lovelace"),
        entity_ref=WORKER, role_name="payments.admin", reason="Replaying settlements",
    )  # fmt: skip
    return request


def approve_on_the_dashboard(page: Page, portal: Any) -> None:
    browser_sign_in(page, portal.url, "grace@example.com")
    page.goto(f"{portal.url}/access/approvals/")
    row = page.locator("tr", has_text="Replaying settlements")
    expect(row.get_by_text("confirm with MFA")).to_be_visible()
    row.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("heading", name="Verify your identity")).to_be_visible()


def test_grace_approves_a_sensitive_request_only_after_the_second_factor_page(
    page: Page, portal: Any
) -> None:
    request = ada_waits_for_payments_admin()

    approve_on_the_dashboard(page, portal)
    request.refresh_from_db()
    assert request.state == "pending"  # nothing is decided on the way to the issuer
    page.get_by_label("One-time code").fill(MFA_DEMO_CODE)
    page.get_by_role("button", name="Verify").click()

    expect(page.get_by_text("Approved 1 request.")).to_be_visible()
    expect(page).to_have_url(f"{portal.url}/access/approvals/")
    request.refresh_from_db()
    assert request.state == "approved"  # and queued for the worker to grant
    assert request.decisions.get().approver.email == "grace@example.com"


@pytest.mark.parametrize(
    ("forgery", "said"),
    [
        ("no_mfa", "Nothing was decided: the sign-in did not use a second factor."),
        ("stale_auth_time", "Nothing was decided: the multi-factor sign-in is too old."),
    ],
)
def test_a_sign_in_without_mfa_or_with_a_stale_auth_time_decides_nothing(
    page: Page, portal: Any, devtenant_process: Any, forgery: str, said: str
) -> None:
    request = ada_waits_for_payments_admin()

    approve_on_the_dashboard(page, portal)
    devtenant_process.admin("forge", {"id_token": forgery})
    page.get_by_label("One-time code").fill(MFA_DEMO_CODE)
    page.get_by_role("button", name="Verify").click()

    expect(page.get_by_text(said)).to_be_visible()
    request.refresh_from_db()
    assert request.state == "pending" and not request.decisions.exists()
