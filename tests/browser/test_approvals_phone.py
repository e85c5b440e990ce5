"""On a phone (390×844, Chromium): Grace approves from the approvals page, whose counts follow
each decision, and an Approve sent after her session ended brings her back to the page; Ada's
typed reason survives a session that ended under the request form."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from playwright.sync_api import Locator, Page, ViewportSize, expect

from access.models import AccessRequest
from tests.browser.conftest import demo_seed
from tests.factories import AccessRequestFactory, UserFactory
from tests.helpers import browser_sign_in

pytestmark = pytest.mark.django_db(transaction=True)
PHONE: ViewportSize = {"width": 390, "height": 844}
ENTITY = "component:default/payments-api"


def within_the_screen(element: Locator) -> None:
    """The element is on screen without scrolling sideways, and big enough for a thumb."""
    box = element.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    assert box["height"] >= 40, box


def no_sideways_scroll(page: Page) -> None:
    """Nothing the page's content shows reaches past the screen's right edge (the top bar is
    base.html's own affair; what is there for screen readers only is clipped to a pixel)."""
    beyond = page.evaluate(
        "[...document.querySelectorAll('main *')]"
        ".filter((e) => !e.closest('thead, .visually-hidden'))"
        f".filter((e) => e.getBoundingClientRect().right > {PHONE['width']})"
        ".map((e) => e.outerHTML.slice(0, 80))"
    )
    assert beyond == []


def test_grace_approves_from_her_phone_and_the_counts_follow(page: Page, portal: Any) -> None:
    demo_seed()
    for email, name, reason in [
        ("ada@example.com", "Ada Lovelace", "On call for payments this week"),
        ("alan@example.com", "Alan Turing", "Reconciling card refunds"),
    ]:
        AccessRequestFactory.create(
            requester=UserFactory.create(email=email, name=name), entity_ref=ENTITY,
            role_name="payments.viewer", reason=reason,
        )  # fmt: skip
    page.set_viewport_size(PHONE)
    browser_sign_in(page, portal.url, "grace@example.com")
    page.goto(f"{portal.url}/access/approvals/")
    nav_count = page.locator('header a[href="/access/approvals/"]')
    tab = page.get_by_role("navigation", name="Approvals").get_by_role("link", name="Waiting")
    expect(nav_count).to_have_text(re.compile(r"Approvals\s*2"))
    expect(tab).to_have_text(re.compile(r"Waiting\s*\(2\)"))
    no_sideways_scroll(page)

    # The bulk bar follows the selection.
    bar = page.locator("[data-bulk-bar]")
    approve_selected = bar.get_by_role("button", name="Approve selected")
    expect(approve_selected).to_be_disabled()
    ada = page.locator("tr", has_text="On call for payments this week")
    ada.get_by_role("checkbox").check()
    expect(bar).to_contain_text("1 selected")
    expect(approve_selected).to_be_enabled()
    ada.get_by_role("checkbox").uncheck()
    expect(approve_selected).to_be_disabled()
    bar.get_by_role("button", name="Select all on this page").click()
    expect(bar).to_contain_text("2 selected")
    bar.get_by_role("button", name="Clear the selection").click()
    expect(approve_selected).to_be_disabled()

    # Each request is a card saying who asks for what; Approve is a thumb's reach away.
    expect(ada).to_contain_text("Payments API")
    expect(ada).to_contain_text("Ada Lovelace")
    approve = ada.get_by_role("button", name="Approve")
    approve.scroll_into_view_if_needed()
    within_the_screen(approve)
    within_the_screen(ada.get_by_role("button", name="Deny"))
    approve.click()
    expect(page.locator("tr.decided").first).to_contain_text(
        "You approved the request", timeout=10_000
    )
    expect(nav_count).to_have_text(re.compile(r"Approvals\s*1\s*$"))
    expect(tab).to_have_text(re.compile(r"Waiting\s*\(1\)"))
    expect(page.locator("#approvals-total")).to_have_text("1 waiting for you, oldest first.")

    # Her session ends before the last one: htmx takes the page to sign in (Auth0 still knows
    # her) and back, saying the Approve was not carried out.
    Session.objects.all().delete()
    alan = page.locator("tr", has_text="Reconciling card refunds")
    alan.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("What you sent was not carried out")).to_be_visible()
    expect(page).to_have_url(f"{portal.url}/access/approvals/")
    expect(tab).to_have_text(re.compile(r"Waiting\s*\(1\)"))

    # The last one: the counts go to nothing, and so does the bulk bar.
    alan.get_by_role("button", name="Approve").click()
    expect(page.locator("tr.decided")).to_have_count(1)
    expect(nav_count).to_have_text(re.compile(r"^\s*Approvals\s*$"))
    expect(tab).to_have_text(re.compile(r"Waiting\s*\(0\)"))
    expect(bar).to_be_hidden()
    expect(page.locator("#approvals-total")).to_have_text("")
    no_sideways_scroll(page)
    assert set(AccessRequest.objects.values_list("state", flat=True)) <= {
        "approved", "provisioning", "active", "failed",
    }  # fmt: skip


def test_a_reason_typed_on_a_phone_survives_a_session_that_ended(page: Page, portal: Any) -> None:
    demo_seed()
    page.set_viewport_size(PHONE)
    browser_sign_in(page, portal.url, "ada@example.com")
    page.goto(f"{portal.url}/access/requests/new/?entity={ENTITY}&role=payments.viewer")
    page.get_by_label("Why do you need it?").fill("Debugging a stuck payout")
    no_sideways_scroll(page)

    Session.objects.all().delete()  # the session ends while the form is open
    page.get_by_role("button", name="Send request").click()

    # Auth0 still knows her, so signing in again goes straight through, back to the form.
    expect(page.get_by_text("What you typed is back in the form")).to_be_visible()
    expect(page.get_by_text("What you sent was not carried out")).to_be_visible()
    expect(page.get_by_label("Why do you need it?")).to_have_value("Debugging a stuck payout")
    assert not AccessRequest.objects.exists()
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_text("Your request was sent")).to_be_visible()
    assert AccessRequest.objects.get().reason == "Debugging a stuck payout"
