"""The catalog list as people scan it: Components first, a count that agrees with every facet
for whoever looks, owners named as the table names them, access state on each row."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from catalog.services import location_refresh, location_register
from portal.models import User
from tests.factories import AccessRequestFactory
from tests.helpers import signed_in

pytestmark = pytest.mark.django_db

COUNT = re.compile(r'<p id="result-count"[^>]*>([\d,]+) ([^<]+)</p>')
# A facet value not chosen yet: the link that adds it, its words and its count.
FACET_LINK = re.compile(r'<li><a href="([^"]*)">([^<]*) <span class="count">(\d+)</span></a></li>')


def shown_count(page: str) -> int:
    found = COUNT.search(page)
    assert found, "the page says how many it lists"
    return int(found.group(1).replace(",", ""))


def facet_links(page: str) -> list[tuple[str, str, int]]:
    return [(html.unescape(href), words, int(n)) for href, words, n in FACET_LINK.findall(page)]


def facet_group(page: str, label: str) -> dict[str, int]:
    section = re.search(rf"<h2>{label}</h2>(.*?)</section>", page, re.S)
    assert section, label
    return {words: count for _, words, count in facet_links(section.group(1))}


def row_names(page: str) -> list[str]:
    """The entities' names in the table's order, by the links in its name cells."""
    return re.findall(
        r'<td data-label="Name" class="name"><a href="/catalog/[^/]+/[^/]+/([^/]+)/"', page
    )


def viewers() -> dict[str, Client]:
    """An engineer nobody knows in the catalog, one in team-checkout, an owner of the payments
    entities, and a portal admin."""
    return {
        "bob": signed_in("bob@example.com"),
        "ada": signed_in("ada@example.com"),
        "grace": signed_in("grace@example.com"),
        "linus": signed_in("linus@example.com", "portal-admin"),
    }


# --- The truth: every facet count is what a click on it lists -------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/catalog/",  # Components, counted when the catalog last changed
        "/catalog/?kind=all",  # every kind, counted so too
        "/catalog/?kind=all&lifecycle=production",  # a filtered view, counted now
        "/catalog/?q=payments",
    ],
)
def test_every_facet_count_is_what_its_link_lists_for_every_viewer(
    demo_catalog: None, path: str
) -> None:
    for who, client in viewers().items():
        page = client.get(path).content.decode()
        links = facet_links(page)
        assert links, (who, path)
        for href, words, count in links:
            listed = shown_count(client.get(href).content.decode())
            assert listed == count, f"{who} on {path}: {words} says {count}, lists {listed}"


def test_an_admin_filtering_services_sees_the_count_the_facet_says(demo_catalog: None) -> None:
    admin = signed_in("linus@example.com", "portal-admin")

    page = admin.get("/catalog/?type=service").content.decode()

    assert COUNT.search(page).groups() == ("9", "components")  # type: ignore[union-attr]
    assert re.search(r'aria-current="true" class="active">service <span class="count">9<', page)
    assert facet_group(admin.get("/catalog/").content.decode(), "Type")["service"] == 9


def test_the_tags_of_restricted_entities_are_counted_for_those_who_may_see_them(
    demo_catalog: None,
) -> None:
    """`java` is a tag of payments-api and payments-worker only, both restricted: their owner
    and an admin are offered it, with its count; an engineer is not, as filtering on it lists
    nothing for her."""
    people = viewers()

    for who in ("grace", "linus"):
        page = people[who].get("/catalog/").content.decode()
        assert facet_group(page, "Tag")["java"] == 2, who
        assert shown_count(people[who].get("/catalog/?tag=java").content.decode()) == 2
    engineer = people["bob"].get("/catalog/").content.decode()
    assert "java" not in facet_group(engineer, "Tag")
    assert shown_count(people["bob"].get("/catalog/?tag=java").content.decode()) == 0


def test_a_viewer_who_may_see_some_restricted_entities_has_them_counted_in_every_kind(
    demo_catalog: None,
) -> None:
    """Ada's team owns cart-service, restricted: its type is counted for her, not for Bob."""
    ada = signed_in("ada@example.com")
    bob = signed_in("bob@example.com")

    ada_types = facet_group(ada.get("/catalog/").content.decode(), "Type")
    bob_types = facet_group(bob.get("/catalog/").content.decode(), "Type")

    assert ada_types["service"] == bob_types["service"] + 1


# --- Components by default, the kind a choice ----------------------------------------------


def test_the_list_opens_on_components_and_the_kind_is_a_choice(demo_catalog: None) -> None:
    ada = signed_in("ada@example.com")

    first = ada.get("/catalog/").content.decode()
    apis = ada.get("/catalog/?kind=api").content.decode()  # an old link, in lower case
    every = ada.get("/catalog/?kind=all").content.decode()

    assert COUNT.search(first).groups() == ("10", "components")  # type: ignore[union-attr]
    assert "payments-api" in row_names(first) and "events" not in row_names(first)
    assert '<option value="" selected>Component</option>' in first
    assert COUNT.search(apis).groups() == ("4", "APIs")  # type: ignore[union-attr]
    assert '<option value="API" selected>API</option>' in apis
    assert set(row_names(apis)) == {"checkout", "events", "identity", "payments"}
    assert '<option value="all" selected>All kinds</option>' in every
    assert shown_count(every) == 37
    # Every kind at once: which kind each row is, in its own column.
    assert '<td data-label="Kind">API</td>' in every and '<td data-label="Kind">' not in first


def test_the_count_is_above_the_list(demo_catalog: None) -> None:
    page = signed_in("ada@example.com").get("/catalog/?q=ledger").content.decode()

    assert page.index("1 component</p>") < page.index("<table")


# --- Owners as the table names them -----------------------------------------------------------

OWNERS = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: by-a-group}
spec: {type: service, lifecycle: production, owner: group:team-x}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: by-a-user}
spec: {type: service, lifecycle: production, owner: user:team-x}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: elsewhere}
spec: {type: service, lifecycle: production, owner: group:other/team-y}
"""


def test_owners_read_as_the_table_shows_them_unless_two_would_look_the_same(
    demo_catalog: None, tmp_path: Path
) -> None:
    (tmp_path / "owners.yaml").write_text(OWNERS)
    location_refresh(location=location_register(target=str(tmp_path / "owners.yaml")))
    ada = signed_in("ada@example.com")

    page = ada.get("/catalog/").content.decode()
    owners = facet_group(page, "Owner")

    assert owners["team-payments"] == 4 and "group:default/team-payments" not in owners
    assert '<a href="/catalog/?owner=team-payments">team-payments' in page
    assert owners["other/team-y"] == 1
    # A group and a user both named team-x: the table shows "team-x" for both, the facet tells.
    assert owners["group:default/team-x"] == 1 and owners["user:default/team-x"] == 1
    assert "team-x" not in owners
    by_user = ada.get("/catalog/?owner=user:default/team-x").content.decode()
    assert row_names(by_user) == ["by-a-user"]
    assert '<td data-label="Owner">team-payments</td>' in page


def test_a_long_description_is_cut_at_a_word_with_an_ellipsis(tmp_path: Path) -> None:
    words = "Reconciles every settlement file the acquirers send overnight against the ledger, " * 3
    (tmp_path / "long.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
        f"metadata: {{name: reconciler, description: '{words.strip()}'}}\n"
        "spec: {type: service, lifecycle: production, owner: team-payments}\n"
    )
    location_refresh(location=location_register(target=str(tmp_path / "long.yaml")))

    page = signed_in("ada@example.com").get("/catalog/").content.decode()

    shown = re.search(r'<td data-label="Description">([^<]*)</td>', page).group(1)  # type: ignore[union-attr]
    assert shown.endswith("…") and len(shown) <= 90
    cut = shown.removesuffix("…")
    assert words.startswith(cut) and not words[len(cut)].isalnum()  # whole words only


# --- Clearing, sorting, relevance --------------------------------------------------------------


def test_clear_filters_is_offered_once_a_filter_is_set_and_keeps_the_kind(
    demo_catalog: None,
) -> None:
    ada = signed_in("ada@example.com")

    assert "Clear filters" not in ada.get("/catalog/").content.decode()
    assert "Clear filters" not in ada.get("/catalog/?kind=API").content.decode()
    filtered = ada.get("/catalog/?kind=API&type=openapi&q=pay").content.decode()
    searched = ada.get("/catalog/?q=pay").content.decode()

    assert '<a href="/catalog/?kind=API">Clear filters</a>' in filtered
    assert '<a href="/catalog/">Clear filters</a>' in searched


def test_a_new_order_starts_at_the_first_page(demo_catalog: None) -> None:
    page = signed_in("ada@example.com").get("/catalog/?kind=all&page=2").content.decode()

    headings = re.findall(r'<th [^>]*>\s*<a href="([^"]*)">', page)
    assert headings and all("page=" not in html.unescape(href) for href in headings)
    assert '<a href="?kind=all&amp;sort=name">Name</a>' in page
    assert "Page 2 of 2" in page


def test_a_search_lists_the_best_matches_first(demo_catalog: None) -> None:
    ada = signed_in("ada@example.com")

    pay = row_names(ada.get("/catalog/?q=pay").content.decode())
    payments = row_names(ada.get("/catalog/?kind=all&q=payments").content.decode())
    by_name = row_names(ada.get("/catalog/?q=pay&sort=name").content.decode())

    # Names that start with the word first; ledger-service has it in its description only.
    assert set(pay[:3]) == {"payments-api", "payments-worker", "payouts-service"}
    assert pay[3:] == ["ledger-service"]
    # The entities named exactly so come first, the API and the System.
    assert set(payments[:2]) == {"payments"}
    assert len([name for name in payments[:2] if name == "payments"]) == 2
    assert by_name == sorted(by_name)  # a heading's order replaces it


# --- Names told apart, the access column ----------------------------------------------------


def test_two_entities_that_read_alike_show_their_kind_and_name(demo_catalog: None) -> None:
    page = signed_in("ada@example.com").get("/catalog/?kind=all&q=identity").content.decode()

    assert '>identity</a> <span class="entity-ref">API · identity</span>' in page
    assert '>identity</a> <span class="entity-ref">System · identity</span>' in page
    # One of its kind on the page: the title alone.
    assert "identity-gateway</a></td>" in page


def test_each_row_says_whether_i_hold_its_access_or_asked_for_it(demo_catalog: None) -> None:
    client = signed_in("bob@example.com", "payments.viewer")
    bob = User.objects.get(email="bob@example.com")
    asked = AccessRequestFactory.create(
        requester=bob, entity_ref="component:default/ledger-service", role_name="payments.admin"
    )
    AccessRequestFactory.create(  # denied: no longer standing
        requester=bob, entity_ref="component:default/cart-service", role_name="checkout.viewer",
        state="denied",
    )  # fmt: skip
    client.get("/catalog/")  # the viewer is read once, then kept (access.viewers)

    with CaptureQueriesContext(connection) as one_asked:
        page = client.get("/catalog/").content.decode()

    def access(name: str) -> str:
        found = re.search(rf'/{name}/".*?<td data-label="Your access">(.*?)</td>', page)
        assert found, name
        return found.group(1)

    assert access("payments-api") == '<span class="badge badge-ok">held</span>'
    pending = (
        f'<a href="/access/requests/{asked.pk}/"><span class="badge badge-warn">pending</span></a>'
    )
    assert access("ledger-service") == pending
    assert access("payments-worker") == pending  # the same role opens it
    assert "not held" in access("cart-service")
    assert "no role required" in access("payouts-service")
    # Asked once for the page, however many rows stand so.
    AccessRequestFactory.create(
        requester=bob, entity_ref="component:default/cart-service", role_name="checkout.viewer"
    )
    with CaptureQueriesContext(connection) as two_asked:
        again = client.get("/catalog/").content.decode()
    assert again.count("badge-warn") == page.count("badge-warn") + 1
    assert len(two_asked.captured_queries) == len(one_asked.captured_queries)


# --- Keyboard and screen readers ---------------------------------------------------------------


class Focusable(HTMLParser):
    """What Tab reaches, in document order, with the href of links and the id of the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.stops: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "a" and found.get("href"):
            self.stops.append(f"a {found['href']}")
        elif tag in {"select", "button", "textarea", "summary"}:
            self.stops.append(tag)
        elif tag == "input" and found.get("type") != "hidden":
            self.stops.append(f"input {found.get('id') or found.get('name')}")


def test_the_first_result_is_a_few_tab_presses_from_the_search_box(demo_catalog: None) -> None:
    page = signed_in("ada@example.com").get("/catalog/?q=pay&type=service").content.decode()
    parser = Focusable()
    parser.feed(page)
    stops = parser.stops

    search = stops.index("input id_q")
    first_result = next(i for i, stop in enumerate(stops) if stop.startswith("a /catalog/default/"))
    assert first_result - search <= 10, stops[search:first_result]
    # The facets come after the results.
    facets = [i for i, stop in enumerate(stops) if stop.startswith("a /catalog/?q=pay&type=")]
    assert facets and min(facets) > first_result


def test_the_count_is_announced_from_a_region_that_stays_on_the_page(demo_catalog: None) -> None:
    client = signed_in("ada@example.com")

    page = client.get("/catalog/").content.decode()
    fragment = client.get("/catalog/?q=ledger", HTTP_HX_REQUEST="true").content.decode()

    region = re.search(r'<p id="result-count"[^>]*>', page).group(0)  # type: ignore[union-attr]
    assert 'role="status"' in region and 'aria-live="polite"' in region
    # Outside the results htmx replaces, so it is there to hear the change...
    assert page.index('id="result-count"') < page.index('<div id="results"')
    # ...which every answer carries, to be put into it.
    assert re.search(r'<p id="result-count"[^>]*hx-swap-oob="innerHTML">1 component</p>', fragment)


def test_the_facets_fold_into_a_panel_that_works_without_javascript(demo_catalog: None) -> None:
    page = signed_in("ada@example.com").get("/catalog/?type=service&tag=go").content.decode()

    panel = re.search(r'<details class="facets-panel">\s*<summary>(.*?)</summary>', page, re.S)
    assert panel and "Filters" in panel.group(1) and "2 chosen" in panel.group(1)
