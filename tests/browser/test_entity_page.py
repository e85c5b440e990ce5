"""An entity's page on a phone, in Chromium: its tabs, its relations graph, asking for access."""

from __future__ import annotations

import os
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.browser.conftest import demo_seed
from tests.helpers import browser_sign_in

pytestmark = pytest.mark.django_db(transaction=True)
PAYMENTS_API = "/catalog/default/component/payments-api/"
PHONE: ViewportSize = {"width": 390, "height": 844}


def scroll_width(page: Page) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


# The innermost elements reaching past the right edge, to name what scrolls sideways.
PAST_THE_EDGE = """() => [...document.querySelectorAll("body *")]
  .filter(e => e.getBoundingClientRect().right > 390.5)
  .filter(e => ![...e.children].some(c => c.getBoundingClientRect().right > 390.5))
  .map(e => e.tagName.toLowerCase() + (e.className ? "." + e.className : "")
            + " " + (e.textContent || "").trim().slice(0, 30))"""


def assert_no_sideways_scroll(page: Page) -> None:
    width = scroll_width(page)
    assert width <= PHONE["width"], (width, page.evaluate(PAST_THE_EDGE))


def shot(page: Page, name: str) -> None:
    """A screenshot for whoever reads the run, when ATRIUM_SCREENSHOTS names a folder."""
    folder = os.environ.get("ATRIUM_SCREENSHOTS")
    if folder:
        page.screenshot(path=os.path.join(folder, f"{name}.png"), full_page=True)


def test_on_a_phone_the_tabs_work_nothing_scrolls_sideways_and_ada_can_ask(
    browser: Browser, portal: Any
) -> None:
    demo_seed()
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    browser_sign_in(page, portal.url, "ada@example.com")

    page.goto(f"{portal.url}{PAYMENTS_API}")
    tabs = page.get_by_role("navigation", name="Sections of this entity")
    expect(tabs.get_by_role("link", name="Overview")).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("heading", name="Payments API")).to_contain_text(
        "Component · payments-api"
    )
    assert_no_sideways_scroll(page)
    shot(page, "entity-overview-390")

    tabs.get_by_role("link", name="Relations").click()
    expect(page).to_have_url(f"{portal.url}{PAYMENTS_API}?tab=relations")
    expect(tabs.get_by_role("link", name="Relations")).to_have_attribute("aria-current", "page")
    graph = page.locator("figure.relations-graph svg")
    expect(graph).to_be_visible()
    # Each box of the graph is a link to its entity's page, by title.
    owner = graph.get_by_role("link", name="Payments (team)")
    expect(owner).to_have_attribute("href", "/catalog/default/group/team-payments/")
    # The words stay readable: drawn at 11 px or more, however the viewBox scales them.
    drawn = graph.locator("text.graph-title").first.evaluate(
        "t => t.getScreenCTM().a * parseFloat(getComputedStyle(t).fontSize)"
    )
    assert drawn >= 11, drawn
    assert_no_sideways_scroll(page)
    shot(page, "entity-relations-390")
    owner.click()
    expect(page.get_by_role("heading", name="Payments")).to_contain_text("Group · team-payments")
    page.go_back()

    page.get_by_role("navigation", name="Sections of this entity").get_by_role(
        "link", name="Access"
    ).click()
    expect(page).to_have_url(f"{portal.url}{PAYMENTS_API}?tab=access")
    viewer = page.get_by_role("region", name="payments.viewer")
    expect(viewer).to_contain_text("You do not hold this role")
    assert_no_sideways_scroll(page)
    shot(page, "entity-access-390")

    # Request access is within reach of a thumb, and opens the form for that role.
    ask = viewer.get_by_role("link", name="Request access")
    ask.scroll_into_view_if_needed()
    expect(ask).to_be_in_viewport()
    found = ask.bounding_box()
    assert found is not None and found["x"] >= 0 and found["x"] + found["width"] <= 390
    ask.tap()
    expect(page.get_by_role("heading", name="Request access to Payments API")).to_be_visible()
    expect(page.get_by_label("Role")).to_have_value("payments.viewer")
    context.close()


def test_the_tabs_are_links_that_work_without_javascript(browser: Browser, portal: Any) -> None:
    demo_seed()
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    page = context.new_page()
    browser_sign_in(page, portal.url, "grace@example.com")

    page.goto(f"{portal.url}/catalog/default/api/payments/")
    page.get_by_role("link", name="Definition").click()

    expect(page).to_have_url(f"{portal.url}/catalog/default/api/payments/?tab=definition")
    expect(page.get_by_role("region", name="API definition")).to_contain_text("openapi")
    assert_no_sideways_scroll(page)
    context.close()
