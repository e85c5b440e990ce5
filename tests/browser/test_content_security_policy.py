"""In Chromium, under the portal's Content-Security-Policy: the htmx pages, an approval, the
Django admin and sign-out work with no violation, and a `javascript:` link runs nothing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from catalog.services import location_refresh, location_register
from tests.browser.conftest import demo_seed
from tests.helpers import browser_sign_in

pytestmark = pytest.mark.django_db(transaction=True)

# Every violation in every document of the page, told to the console where the test hears it.
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.effectiveDirective} blocked ${event.blockedURI}`);
});
"""

SCRIPTED_LINK = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: linked
  links:
    - {url: "javascript:document.title='ran'", title: Run me}
spec: {type: service, lifecycle: production, owner: team-payments}
"""


def watched(page: Page) -> list[str]:
    """The CSP violations `page` reports from now on."""
    violations: list[str] = []
    page.add_init_script(REPORT_VIOLATIONS)
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "CSP violation" in message.text else None
        ),
    )
    return violations


def test_the_catalog_an_approval_and_sign_out_run_under_the_policy(page: Page, portal: Any) -> None:
    demo_seed()
    violations = watched(page)
    browser_sign_in(page, portal.url, "ada@example.com")

    # htmx: results as she types, a facet, an owner typed in.
    page.get_by_label("Search").fill("pay")
    expect(page).to_have_url(f"{portal.url}/catalog/?q=pay")
    results = page.locator("#results")
    results.get_by_role("link", name="team-payments").click()
    expect(page).to_have_url(f"{portal.url}/catalog/?q=pay&owner=team-payments")
    results.get_by_role("link", name="Payments API", exact=True).click()
    page.locator('a[href*="role=payments.viewer"]').click()
    page.get_by_label("Why do you need it?").fill("On call this week")
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_text("Your request was sent")).to_be_visible()

    # Sign-out posts here and is redirected to the issuer, which form-action allows.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    assert page.url.rstrip("/") == portal.url

    # Grace approves inline, through htmx.
    browser_sign_in(page, portal.url, "grace@example.com")
    page.goto(f"{portal.url}/access/approvals/")
    page.locator("tr", has_text="On call this week").get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status")).to_contain_text("You approved the request")

    assert violations == []


def test_the_django_admin_works_under_the_policy(page: Page, portal: Any) -> None:
    demo_seed()
    violations = watched(page)
    browser_sign_in(page, portal.url, "linus@example.com")

    page.goto(f"{portal.url}/admin/")
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    page.goto(f"{portal.url}/admin/portal/user/")
    expect(page.get_by_role("link", name="Linus Torvalds")).to_be_visible()
    # The admin's own scripts run: its theme switch works.
    page.get_by_role("button", name="Toggle theme").first.click()
    expect(page.locator("html")).to_have_attribute("data-theme", re.compile("^(light|dark)$"))

    assert violations == []


def test_a_javascript_link_runs_nothing(page: Page, portal: Any, tmp_path: Path) -> None:
    demo_seed()
    (tmp_path / "linked.yaml").write_text(SCRIPTED_LINK)
    location_refresh(location=location_register(target=str(tmp_path / "linked.yaml")))
    violations = watched(page)
    browser_sign_in(page, portal.url, "ada@example.com")
    page.goto(f"{portal.url}/catalog/default/component/linked/")
    title = page.title()

    # Shown as text, not as a link: clicking it does nothing.
    expect(page.locator('a[href^="javascript:"]')).to_have_count(0)
    page.get_by_text("javascript:document.title='ran'").click()
    assert page.title() == title
    assert violations == []

    # And were it ever a link, the policy would stop it: the browser refuses to run it.
    page.evaluate(
        """() => {
          const link = document.createElement("a");
          link.href = "javascript:document.title='ran'";
          link.textContent = "planted";
          document.querySelector("main").append(link);
        }"""
    )
    page.get_by_role("link", name="planted").click()
    page.wait_for_timeout(300)
    assert page.title() == title
    assert violations and all("script-src" in text for text in violations), violations
