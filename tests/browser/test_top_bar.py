"""The top bar on a phone and a laptop in Chromium: every section and Sign out in sight, nothing
wider than the screen, the signed-in person by name, and a focus ring on each control."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import demo_seed
from tests.browser.test_accessibility import ada_asks_for_payments_viewer
from tests.helpers import browser_sign_in

pytestmark = pytest.mark.django_db(transaction=True)

# Linus administers the portal: his bar is the fullest.
SECTIONS = ["Catalog", "My access", "Approvals", "Reviews", "Roles", "Audit"]


@pytest.mark.parametrize("width", [360, 390])
def test_on_a_phone_every_section_and_sign_out_are_in_sight(
    page: Page, browser: Any, portal: Any, axe: Callable[[Page], None], width: int
) -> None:
    demo_seed()
    ada_asks_for_payments_viewer(browser, portal.url)
    page.set_viewport_size({"width": width, "height": 800})
    browser_sign_in(page, portal.url, "grace@example.com")
    page.goto(f"{portal.url}/")
    grace_bar = page.get_by_role("banner")
    # Grace decides Ada's request: the count stands beside Approvals on a phone too.
    expect(grace_bar.get_by_role("link", name="Approvals")).to_contain_text("1")
    assert_in_sight(page, grace_bar.get_by_role("link", name="Approvals"))
    grace_bar.get_by_role("button", name="Sign out").click()

    browser_sign_in(page, portal.url, "linus@example.com")
    page.goto(f"{portal.url}/access/roles/")
    bar = page.get_by_role("banner")
    nav = bar.get_by_role("navigation", name="Sections")
    for section in SECTIONS:
        assert_in_sight(page, nav.get_by_role("link", name=section))
    assert_in_sight(page, bar.get_by_role("link", name="Linus Torvalds"))
    assert_in_sight(page, bar.get_by_role("button", name="Sign out"))
    assert bar.evaluate("bar => bar.scrollWidth <= bar.clientWidth")
    axe(page)

    bar.get_by_role("button", name="Sign out").click()
    assert_in_sight(page, page.get_by_role("banner").get_by_role("link", name="Sign in"))


def test_the_name_in_the_bar_leads_to_the_persons_catalog_page(page: Page, portal: Any) -> None:
    demo_seed()
    browser_sign_in(page, portal.url, "grace@example.com")

    page.get_by_role("banner").get_by_role("link", name="Grace Hopper").click()

    expect(page).to_have_url(f"{portal.url}/catalog/default/user/grace/")


def test_every_control_of_the_bar_shows_a_focus_ring(page: Page, portal: Any) -> None:
    demo_seed()
    browser_sign_in(page, portal.url, "linus@example.com")
    page.goto(f"{portal.url}/access/roles/")

    # The skip link first, then the brand, the sections, the name and Sign out, in that order.
    focused = []
    for _ in range(2 + len(SECTIONS) + 2):
        page.keyboard.press("Tab")
        focused.append(
            page.evaluate(
                "() => { const e = document.activeElement, s = getComputedStyle(e);"
                " return [e.textContent.trim().split(/\\s+/)[0], s.outlineStyle,"
                " parseFloat(s.outlineWidth)]; }"
            )
        )

    assert [label for label, _, _ in focused] == [
        "Skip", "Atrium", "Catalog", "My", "Approvals", "Reviews", "Roles", "Audit", "Linus",
        "Sign",
    ]  # fmt: skip
    assert all(style != "none" and width >= 2 for _, style, width in focused), focused


def assert_in_sight(page: Page, control: Any) -> None:
    """Visible and wholly inside the viewport's width, with no scrolling sideways."""
    expect(control).to_be_visible()
    assert page.evaluate("window.scrollX") == 0
    box = control.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= page.viewport_size["width"]  # type: ignore[index]
