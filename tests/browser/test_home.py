"""A person opens Atrium in a real browser."""

from urllib.parse import urlsplit

from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer


def test_home_page_loads_htmx_from_atrium_itself(page: Page, live_server: LiveServer) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(live_server.url)

    expect(page).to_have_title("Home · Atrium")
    expect(page.get_by_role("heading", name="Atrium", exact=True)).to_be_visible()
    assert page.evaluate("typeof window.htmx") == "object", "htmx did not load"
    origin = urlsplit(live_server.url).netloc
    assert {urlsplit(url).netloc for url in requested} == {origin}, requested
    assert errors == []


def test_a_missing_page_offers_the_way_back(page: Page, live_server: LiveServer) -> None:
    page.goto(f"{live_server.url}/no/such/page/")

    expect(page.get_by_role("heading", name="Nothing here")).to_be_visible()
    page.get_by_role("link", name="Back to Atrium").click()
    expect(page).to_have_title("Home · Atrium")
