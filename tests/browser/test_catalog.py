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
    # The count's region stays on the page while htmx replaces the results around it, so
    # that a screen reader hears the new count.
    count = page.locator("#result-count")
    expect(count).to_have_text("10 components")
    count.evaluate("region => { region.dataset.kept = 'yes'; }")

    page.get_by_label("Search").fill("pay")

    # htmx swaps the results as she types, and the address bar follows.
    expect(page).to_have_url(f"{portal.url}/catalog/?q=pay")
    expect(count).to_have_text("4 components")
    expect(count).to_have_attribute("data-kept", "yes")
    results = page.locator("#results")
    expect(results.get_by_role("link", name="Payments API", exact=True)).to_be_visible()
    expect(results.get_by_role("link", name="Payments API (OpenAPI)")).to_have_count(0)
    expect(results.get_by_role("link", name="metrics-collector")).to_have_count(0)

    # Every kind, then Components again, from the kind selector.
    page.get_by_label("Kind").select_option("All kinds")
    expect(page).to_have_url(f"{portal.url}/catalog/?kind=all&q=pay")
    expect(results.get_by_role("link", name="Payments API (OpenAPI)")).to_be_visible()
    page.get_by_label("Kind").select_option("Component")
    expect(page).to_have_url(f"{portal.url}/catalog/?q=pay")
    table = results.locator("table")
    expect(table.get_by_role("link", name="Payments API (OpenAPI)")).to_have_count(0)

    # An owner may be typed, as descriptors name one; Enter applies it and the URL follows,
    # and the chosen owner's link takes it off again.
    results.get_by_label("Owner").fill("team-checkout")
    results.get_by_label("Owner").press("Enter")
    expect(page).to_have_url(f"{portal.url}/catalog/?q=pay&owner=team-checkout")
    expect(table.get_by_role("link", name="Payments API", exact=True)).to_have_count(0)
    results.get_by_role("link", name="team-checkout").click()
    expect(page).to_have_url(f"{portal.url}/catalog/?q=pay")
    expect(table.get_by_role("link", name="Payments API", exact=True)).to_be_visible()

    # From the search box, a few Tab presses reach the first result (the facets come after).
    page.get_by_label("Search").focus()
    presses = 0
    while presses < 30 and not page.evaluate("document.activeElement.matches('#results tbody a')"):
        page.keyboard.press("Tab")
        presses += 1
    assert presses <= 10
    assert page.evaluate("document.activeElement === document.querySelector('#results tbody a')")

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


# The right edge of the page's widest part, the top bar aside (base.html's, folded on its own).
WIDEST_OUTSIDE_THE_TOP_BAR = """
Math.max(...[...document.querySelectorAll("main *")].map(e => e.getBoundingClientRect().right))
"""


def test_on_a_phone_the_facets_fold_away_and_payments_api_is_found(
    browser: Any, portal: Any
) -> None:
    demo_seed()
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    browser_sign_in(page, portal.url, "ada@example.com")

    # The facets are a closed panel after the list: the results come first.
    facets = page.locator("details.facets-panel")
    expect(facets).not_to_have_attribute("open", "")
    expect(page.get_by_role("link", name="team-payments")).to_be_hidden()
    page.get_by_label("Search").fill("payments")
    expect(page).to_have_url(f"{portal.url}/catalog/?q=payments")
    result = page.locator("#results tbody").get_by_role("link", name="Payments API", exact=True)
    expect(result).to_be_in_viewport()

    # The panel opens with a tap, and a facet narrows the list.
    page.get_by_text("Filters", exact=True).click()
    page.get_by_role("link", name="team-payments").click()
    expect(page).to_have_url(f"{portal.url}/catalog/?q=payments&owner=team-payments")
    expect(page.locator("#result-count")).to_have_text("3 components")

    # Each row a card: the name above its labelled details, nothing wider than the phone.
    row = page.locator("#results tbody tr", has=page.get_by_role("link", name="Payments API"))
    name_box = row.locator("td.name").bounding_box()
    owner_box = row.locator('td[data-label="Owner"]').bounding_box()
    assert name_box and owner_box and owner_box["y"] > name_box["y"]
    assert page.evaluate(WIDEST_OUTSIDE_THE_TOP_BAR) <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    result.click()
    expect(page).to_have_url(f"{portal.url}/catalog/default/component/payments-api/")
    context.close()
