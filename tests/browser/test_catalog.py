"""A person finds an entity in the catalog in Chromium: search, filter, open, see the roles."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import demo_seed
from tests.helpers import browser_sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_grace_finds_the_payments_api_by_typing_pay_and_sees_its_roles(
    page: Page, portal: Any
) -> None:
    demo_seed()
    browser_sign_in(page, portal.url, "ada@example.com")

    page.get_by_label("Search").fill("pay")

    # htmx swaps the results as she types, and the address bar follows.
    expect(page).to_have_url(f"{portal.url}/catalog/?q=pay")
    results = page.locator("#results")
    expect(results.get_by_role("link", name="Payments API", exact=True)).to_be_visible()
    expect(results.get_by_role("link", name="Payments API (OpenAPI)")).to_be_visible()
    expect(results.get_by_role("link", name="metrics-collector")).to_have_count(0)

    results.get_by_role("link", name="Component").first.click()
    expect(page).to_have_url(f"{portal.url}/catalog/?q=pay&kind=Component")
    table = results.locator("table")
    expect(table.get_by_role("link", name="Payments API", exact=True)).to_be_visible()
    expect(table.get_by_role("link", name="Payments API (OpenAPI)")).to_have_count(0)

    # An owner may be typed, as descriptors name one; Enter applies it and the URL follows,
    # and the chosen owner's link takes it off again.
    results.get_by_label("Owner").fill("team-checkout")
    results.get_by_label("Owner").press("Enter")
    expect(page).to_have_url(f"{portal.url}/catalog/?q=pay&kind=Component&owner=team-checkout")
    expect(table.get_by_role("link", name="Payments API", exact=True)).to_have_count(0)
    results.get_by_role("link", name="team-checkout").click()
    expect(page).to_have_url(f"{portal.url}/catalog/?q=pay&kind=Component")
    expect(table.get_by_role("link", name="Payments API", exact=True)).to_be_visible()

    results.get_by_role("link", name="Payments API", exact=True).click()

    expect(page.get_by_role("heading", name="Payments API Component")).to_be_visible()
    roles = page.get_by_role("region", name="Required roles")
    expect(roles).to_contain_text("payments.viewer")
    expect(roles).to_contain_text("You do not hold this role")
    expect(roles.get_by_role("link", name="Request access").first).to_have_attribute(
        "href",
        "/access/requests/new/?entity=component%3Adefault%2Fpayments-api&role=payments.admin",
    )
    expect(page.get_by_role("region", name="Restricted details")).to_be_visible()


def test_the_search_works_without_javascript(browser: Any, portal: Any) -> None:
    demo_seed()
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    browser_sign_in(page, portal.url, "grace@example.com")

    page.get_by_label("Search").fill("ledger")
    page.get_by_label("Search").press("Enter")

    expect(page).to_have_url(f"{portal.url}/catalog/?q=ledger")
    expect(page.get_by_role("link", name="ledger-service")).to_be_visible()
    page.get_by_role("link", name="ledger-service").click()
    # Grace's team owns it: the restricted details are hers to see.
    expect(page.get_by_role("region", name="Links")).to_have_count(0)
    expect(page.get_by_role("region", name="Annotations")).to_be_visible()
    context.close()
