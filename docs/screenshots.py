"""Screenshots of Atrium's main pages, at laptop and phone size, for the README.

Run by hand against a portal serving the demo (`make run` in another terminal), with Debian's
Chromium (`apt-get install -y chromium`, or `CHROMIUM_PATH=`):

    .venv/bin/python docs/screenshots.py [--base-url http://127.0.0.1:8000] [--out docs/screenshots]

It signs in as the demo's people, has Ada ask for `payments.viewer` on the Payments API (so
that Grace has a request to decide, unless one is open already), and writes one PNG a page and
size, named `<page>-<size>.png`. The review page is the first review Grace's list links to
(open one first, as the README's walk-through does); without one it is left out.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from devtenant.demo import DEMO_PASSWORD

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
SIZES: dict[str, ViewportSize] = {
    "laptop": {"width": 1280, "height": 800},
    "phone": {"width": 390, "height": 844},
}
ASK_VIEWER = "/access/requests/new/?entity=component%3Adefault%2Fpayments-api&role=payments.viewer"
# Ada has asked for payments.viewer (below), so the form shown is the one for the other role.
REQUEST_FORM = "/access/requests/new/?entity=component%3Adefault%2Fpayments-api&role=payments.admin"
# The first review linked from the reviews list, whatever its id.
FIRST_REVIEW = "first review"
# (who signs in, or "" for nobody; the page's name in the file; its path).
PAGES = [
    ("", "home-signed-out", "/"),
    ("ada@example.com", "home", "/"),
    ("ada@example.com", "catalog", "/catalog/"),
    ("ada@example.com", "entity", "/catalog/default/component/payments-api/"),
    ("ada@example.com", "request-form", REQUEST_FORM),
    ("ada@example.com", "my-access", "/access/"),
    ("ada@example.com", "entity-access", "/catalog/default/component/payments-api/?tab=access"),
    ("grace@example.com", "approvals", "/access/approvals/"),
    ("grace@example.com", "reviews", "/access/reviews/"),
    ("grace@example.com", "review", FIRST_REVIEW),
    ("linus@example.com", "roles", "/access/roles/"),
    ("linus@example.com", "audit", "/access/audit/"),
    ("linus@example.com", "admin", "/admin/"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "screenshots")
    args = parser.parse_args()
    base_url = args.base_url.rstrip("/")
    args.out.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        ada_asks_for_payments_viewer(browser, base_url)
        for size, viewport in SIZES.items():
            for email in dict.fromkeys(email for email, _, _ in PAGES):
                context = browser.new_context(viewport=viewport)
                page = context.new_page()
                if email:
                    sign_in(page, base_url, email)
                for _, name, path in (entry for entry in PAGES if entry[0] == email):
                    if path == FIRST_REVIEW:
                        page.goto(f"{base_url}/access/reviews/")
                        first = page.locator("main table td:first-child a").first
                        if not first.count():
                            print(f"no open review to photograph for {name}")
                            continue
                        path = str(first.get_attribute("href"))
                    page.goto(f"{base_url}{path}")
                    target = args.out / f"{name}-{size}.png"
                    page.screenshot(path=str(target), full_page=True)
                    print(target)
                context.close()
        browser.close()


def sign_in(page: Page, base_url: str, email: str) -> None:
    """At the devtenant's sign-in form, as a person would."""
    page.goto(f"{base_url}/auth/login/?next=/")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{base_url}/")


def ada_asks_for_payments_viewer(browser: Browser, base_url: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, base_url, "ada@example.com")
    page.goto(f"{base_url}{ASK_VIEWER}")
    reason = page.locator("textarea[name=reason]")
    # The form is offered only while nothing is open for the role already.
    if reason.count():
        reason.fill("On call for payments this week")
        reason.evaluate("field => field.form.requestSubmit()")
        page.wait_for_load_state()
    context.close()


if __name__ == "__main__":
    main()
