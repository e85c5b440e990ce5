"""Each demo person signs in and out of Atrium in Chromium, through the devtenant."""

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from devtenant.demo import DEMO_PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("email", "name", "roles"),
    [
        ("ada@example.com", "Ada Lovelace", ["checkout.viewer", "engineer"]),
        ("grace@example.com", "Grace Hopper", ["engineer", "payments.admin"]),
        ("linus@example.com", "Linus Torvalds", ["engineer", "portal-admin"]),
    ],
)
def test_a_demo_person_signs_in_sees_their_roles_and_signs_out(
    page: Page, portal: object, email: str, name: str, roles: list[str]
) -> None:
    page.goto(portal.url)  # type: ignore[attr-defined]
    page.get_by_role("link", name="Sign in").click()

    expect(page.get_by_role("heading", name="Log in to Atrium")).to_be_visible()
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Continue").click()

    you = page.get_by_role("region", name="You")
    expect(you.get_by_role("heading")).to_have_text(f"Signed in as {name}")
    expect(you.locator(".roles li")).to_have_text(roles)
    expect(page.locator(".account")).to_contain_text(name)

    page.get_by_role("button", name="Sign out").click()

    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    expect(page.get_by_role("region", name="You")).to_have_count(0)
    # Signed out at the tenant too: signing in again asks for the password.
    page.get_by_role("link", name="Sign in").click()
    expect(page.get_by_role("heading", name="Log in to Atrium")).to_be_visible()


def test_signing_in_from_a_deep_link_comes_back_to_it(
    page: Page, portal: object, settings: Any
) -> None:
    settings.ROOT_URLCONF = "tests.portal.urls_with_sections"
    page.goto(f"{portal.url}/catalog/?kind=api")  # type: ignore[attr-defined]

    page.get_by_label("Email address").fill("linus@example.com")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Continue").click()

    expect(page).to_have_url(f"{portal.url}/catalog/?kind=api")  # type: ignore[attr-defined]
    expect(page.locator(".account")).to_contain_text("Linus Torvalds")


def test_a_signed_in_person_without_staff_access_is_refused_the_admin_site(
    page: Page, portal: object
) -> None:
    page.goto(f"{portal.url}/admin/")  # type: ignore[attr-defined]
    page.get_by_label("Email address").fill("ada@example.com")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", name="You may not open this page")).to_be_visible()
