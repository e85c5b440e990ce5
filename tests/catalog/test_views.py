"""Browsing the catalog: the list, its filters, facets and search, and the entity page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.services import location_import, location_refresh, location_register
from tests.conftest import shared_path
from tests.helpers import PAYMENTS, own_role, signed_in, text

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(tmp_path: Path) -> None:
    own_role("payments.viewer", "team-payments")
    own_role("payments.admin", "team-payments")
    (tmp_path / "payments.yaml").write_text(PAYMENTS)
    for target in (shared_path("conformance", "backstage-examples"), tmp_path / "payments.yaml"):
        location_refresh(
            location=location_register(target=str(target), allow_kinds=["User", "Group"])
        )


def test_the_catalog_opens_on_components_and_lists_every_kind_when_asked(catalog: None) -> None:
    ada = signed_in("ada@example.com")
    page = ada.get("/catalog/").content.decode()
    every_kind = ada.get("/catalog/?kind=all").content.decode()

    assert "<h1>Catalog</h1>" in page
    assert 'href="/catalog/default/component/payments-api/">Payments API</a>' in page
    assert "/catalog/default/api/petstore/" not in page
    assert '<option value="" selected>Component</option>' in page
    assert re.search(r'aria-live="polite"[^>]*>\d+ components</p>', page)
    assert '<option value="all" selected>All kinds</option>' in every_kind
    assert "/catalog/default/api/petstore/" in every_kind and "Payments API" in every_kind
    assert "26 entities" in every_kind


def test_typing_pay_finds_the_payments_api(catalog: None) -> None:
    page = signed_in("ada@example.com").get("/catalog/?q=pay").content.decode()

    assert "Payments API" in page
    assert "artist-lookup" not in page


@pytest.mark.parametrize(
    ("term", "found"),
    [
        ("card", True),  # the start of a word of the description
        ("ments-ap", True),  # anywhere in the name
        ("takes PAY", True),  # every word, in any case
        ("takes petstore", False),
        ("ards", False),  # the middle of a description's word is not a word
        ("pay's (&) |!:*", False),  # query syntax typed by accident is only text
    ],
)
def test_search_finds_names_anywhere_and_other_words_by_their_start(
    catalog: None, term: str, found: bool
) -> None:
    response = signed_in("ada@example.com").get("/catalog/", {"q": term})

    assert response.status_code == 200
    assert ("Payments API" in response.content.decode()) is found


def test_the_whole_catalogs_counts_follow_each_refresh(catalog: None, tmp_path: Path) -> None:
    ada = signed_in("ada@example.com")
    assert "26 entities" in ada.get("/catalog/?kind=all").content.decode()
    assert "3 APIs" in ada.get("/catalog/?kind=API").content.decode()

    (tmp_path / "payments.yaml").write_text(PAYMENTS.rsplit("---", 1)[0])  # the API is gone
    location_refresh(location=location_register(target=str(tmp_path / "payments.yaml")))

    page = ada.get("/catalog/?kind=all").content.decode()
    assert "25 entities" in page
    assert "2 APIs" in ada.get("/catalog/?kind=API").content.decode()
    assert "petstore" in ada.get("/catalog/?kind=api").content.decode()


def test_htmx_gets_only_the_results_fragment(catalog: None) -> None:
    response = signed_in("ada@example.com").get("/catalog/?kind=api", HTTP_HX_REQUEST="true")

    fragment = response.content.decode()
    # The results, and the count for the live region that stays on the page.
    assert fragment.lstrip().startswith('<p id="result-count"')
    assert 'hx-swap-oob="innerHTML">3 APIs</p>' in fragment
    assert '<div id="results"' in fragment
    assert "<html" not in fragment
    assert "petstore" in fragment and "artist-lookup" not in fragment
    assert "HX-Request" in response["Vary"]


def test_the_same_url_is_a_whole_page_without_htmx_and_on_a_history_restore(
    catalog: None,
) -> None:
    """Opened by a link, or restored by Back when htmx's history cache missed, the URL an htmx
    update pushed gives the whole page: layout, search box and the same results."""
    client = signed_in("ada@example.com")

    page = client.get("/catalog/?kind=api").content.decode()
    restored = client.get(
        "/catalog/?kind=api", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    ).content.decode()

    for whole in (page, restored):
        assert "<html" in whole and 'name="q"' in whole and '<div id="results"' in whole
        assert "petstore" in whole and "artist-lookup" not in whole


def test_filters_combine_and_facets_count_what_is_shown(catalog: None) -> None:
    holder = signed_in("bob@example.com", "payments.viewer")
    page = holder.get("/catalog/?kind=component&tag=java").content.decode()

    assert "Payments API" in page and "artist-lookup" in page
    assert "petstore" not in page
    assert 'href="/catalog/?kind=component&amp;tag=java&amp;lifecycle=experimental"' in page


def test_filtering_on_a_detail_does_not_reveal_restricted_entities_that_have_it(
    catalog: None,
) -> None:
    """Ada may not see Payments API's tags, type or lifecycle, so filtering on them must not
    tell her which it has."""
    ada = signed_in("ada@example.com")

    for query in ("tag=java", "type=service", "lifecycle=production", "q=java"):
        page = ada.get(f"/catalog/?kind=component&{query}").content.decode()
        assert "Payments API" not in page, query
    grace = signed_in("grace@example.com")  # an owner sees it, and finds it by name as anyone
    assert "Payments API" in grace.get("/catalog/?tag=java").content.decode()
    assert "Payments API" in ada.get("/catalog/?q=payments").content.decode()
    assert "artist-lookup" in ada.get("/catalog/?tag=java&type=service").content.decode()


def test_owned_by_my_groups_uses_the_catalog_user_with_my_email(catalog: None) -> None:
    page = signed_in("grace@example.com").get("/catalog/?mine=true&kind=all").content.decode()

    assert "Payments API" in page and ">payments<" in page
    assert "artist-lookup" not in page


def test_the_list_withholds_details_of_restricted_rows(catalog: None) -> None:
    outsider = signed_in("ada@example.com").get("/catalog/?q=payments-api").content.decode()
    holder = signed_in("bob@example.com", "payments.admin").get("/catalog/?q=payments-api")

    def row(page: str) -> str:
        found = re.search(r"<tr><td[^>]*><a [^>]*>Payments API</a>.*?</tr>", page)
        assert found
        return found.group(0)

    assert '<td data-label="Type">—</td>' in row(outsider)
    assert '<td data-label="Lifecycle">—</td>' in row(outsider)
    assert '<td data-label="Type">service</td>' in row(holder.content.decode())


def test_i_have_access_keeps_open_entities_and_those_whose_role_i_hold(catalog: None) -> None:
    without = signed_in("ada@example.com").get("/catalog/?access=true").content.decode()
    holder = signed_in("bob@example.com", "payments.viewer").get("/catalog/?access=true")

    assert "Payments API" not in without and "artist-lookup" in without
    assert "Payments API" in holder.content.decode()


def test_i_have_access_counts_owners_and_admins_as_the_entity_page_does(catalog: None) -> None:
    owner = signed_in("grace@example.com").get("/catalog/?access=true").content.decode()
    admin = signed_in("linus@example.com", "portal-admin").get("/catalog/?access=true")

    assert "Payments API" in owner
    assert "Payments API" in admin.content.decode()


@pytest.mark.parametrize("path", ["/catalog/", "/catalog/?q=a&access=true&kind=component"])
def test_list_pages_run_as_many_queries_for_a_larger_catalog(
    catalog: None, tmp_path: Path, path: str
) -> None:
    client = signed_in("ada@example.com")
    with CaptureQueriesContext(connection) as small:
        before = client.get(path).content.decode()

    more = "---\n".join(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
        f"metadata: {{name: service-{i}, tags: [a{i}]}}\n"
        "spec: {type: service, lifecycle: production, owner: team-payments}\n"
        for i in range(60)
    )
    (tmp_path / "more.yaml").write_text(more)
    location_refresh(location=location_register(target=str(tmp_path / "more.yaml")))
    with CaptureQueriesContext(connection) as large:
        page = client.get(path).content.decode()

    def shown(page: str) -> int:
        return int(re.search(r"(\d+) components", page).group(1))  # type: ignore[union-attr]

    assert shown(page) > shown(before)
    assert len(large.captured_queries) == len(small.captured_queries)


def test_the_entity_page_shows_about_relations_and_the_roles_i_hold(catalog: None) -> None:
    bob = signed_in("bob@example.com", "payments.viewer")
    page = bob.get("/catalog/default/component/payments-api/").content.decode()
    relations = bob.get("/catalog/default/component/payments-api/?tab=relations").content.decode()

    assert "Takes card payments" in page
    # By title, not by ref: the group has none, so its name stands in.
    assert 'Owner</dt><dd><a href="/catalog/default/group/team-payments/">team-payments</a>' in page
    assert 'Provides API  <a href="/catalog/default/api/payments/">payments</a>' in relations
    assert "You hold this role, with no end" in text(page.encode())
    # payments.viewer opens it already: payments.admin would give no more access.
    assert "You have access through payments.viewer." in text(page.encode())
    assert "role=payments.admin" not in page
    assert "https://runbooks.example.com/payments" in page


def test_a_restricted_entity_hides_its_details_from_people_without_access(catalog: None) -> None:
    tabs = ("", "?tab=relations", "?tab=access")
    path = "/catalog/default/component/payments-api/"
    ada = signed_in("ada@example.com")
    outsider = [ada.get(path + tab) for tab in tabs]
    owner = signed_in("grace@example.com").get(path)
    admin = signed_in("linus@example.com", "portal-admin").get(path)

    page = "".join(response.content.decode() for response in outsider)
    assert "Payments API" in page and "Takes card payments" in page
    assert "payments.viewer" in page
    assert 'href="/catalog/default/group/team-payments/"' in page
    assert "runbooks.example.com" not in page
    assert "atrium.dev/max-access-duration" not in page
    assert "/catalog/default/api/payments/" not in page, "what it provides is a detail"
    assert '<span class="tag">java</span>' not in page
    assert "Restricted" in page
    assert "Access is granted for at most 30 days." in page
    assert "runbooks.example.com" in owner.content.decode()
    assert "runbooks.example.com" in admin.content.decode()


def test_an_api_shows_its_definition(catalog: None) -> None:
    client = signed_in("ada@example.com")
    overview = client.get("/catalog/default/api/petstore/").content.decode()
    page = client.get("/catalog/default/api/petstore/?tab=definition").content.decode()

    assert 'href="/catalog/default/api/petstore/?tab=definition">Definition</a>' in overview
    assert "<h2>Definition</h2>" not in overview
    assert "<h2>Definition</h2>" in page
    assert "openapi" in page


def test_an_unknown_entity_is_404(catalog: None) -> None:
    response = signed_in("ada@example.com").get("/catalog/default/component/nope/")

    assert response.status_code == 404


def test_a_broad_view_counts_up_to_the_cap_and_says_there_are_more(
    catalog: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counting stops at the cap so a broad filter stays fast; the page must not pretend the
    counts are exact then. (A kind alone, or every kind, is counted ahead, exactly.)"""
    client = signed_in("ada@example.com")
    exact = client.get("/catalog/?namespace=default").content.decode()
    monkeypatch.setattr("catalog.views.FACET_COUNT_CAP", 3)

    capped = client.get("/catalog/?namespace=default").content.decode()
    whole_kind = client.get("/catalog/").content.decode()

    assert "3 or more components" in capped and "or more" not in exact
    assert "or more" not in whole_kind
    assert re.search(r'<span class="count">\d+\+</span>', capped)
    assert not re.search(r'<span class="count">\d+\+</span>', exact)
    # A narrow view under the cap is counted exactly.
    narrow = client.get("/catalog/?q=payments-api").content.decode()
    assert "or more" not in narrow


def test_an_owner_past_the_most_common_can_be_typed_and_the_url_stays_clean(
    tmp_path: Path,
) -> None:
    """25 owners: the Owner facet lists the 20 most common, and a box takes any other, as
    `spec.owner` names it (`team-9`); an empty box adds nothing to the shared URL."""
    (tmp_path / "many.yaml").write_text(
        "---\n".join(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
            f"metadata: {{name: service-{i}}}\n"
            f"spec: {{type: service, lifecycle: production, owner: team-{min(i, 24)}}}\n"
            for i in range(30)
        )
    )
    location_refresh(location=location_register(target=str(tmp_path / "many.yaml")))
    client = signed_in("ada@example.com")

    first = client.get("/catalog/").content.decode()
    chosen = client.get("/catalog/?owner=team-9").content.decode()
    sent_by_a_form = client.get("/catalog/?q=service&owner=&type=&tag=")
    by_htmx = client.get("/catalog/?q=service&owner=team-9&type=", HTTP_HX_REQUEST="true")

    assert 'name="owner"' in first
    assert "team-24 <" in first and "team-9 <" not in first
    assert ">service-9<" in chosen and ">service-1<" not in chosen
    # The chosen owner is shown as chosen, once, and a click removes it.
    assert re.findall(r'<a href="([^"]*)" aria-current="true" class="active">([^<]*)<', chosen) == [
        ("/catalog/", "team-9 ")
    ]
    assert sent_by_a_form.status_code == 302
    assert sent_by_a_form["Location"] == "/catalog/?q=service"
    assert by_htmx["HX-Push-Url"] == "/catalog/?q=service&owner=team-9"
    assert ">service-9<" in by_htmx.content.decode()


def test_a_groups_page_lists_its_members_and_what_it_owns_and_a_users_its_groups(
    tmp_path: Path,
) -> None:
    """Members declared on either side: Bob names his group, the group names Carol."""
    (tmp_path / "org.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: team-x}\n"
        "spec: {type: team, children: [], members: [carol]}\n---\n"
        "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: bob}\n"
        "spec: {memberOf: [team-x]}\n---\n"
        "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: carol}\n"
        "spec: {memberOf: []}\n---\n"
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: x-service}\n"
        "spec: {type: service, lifecycle: production, owner: team-x}\n"
    )
    location_refresh(
        location=location_register(target=str(tmp_path / "org.yaml"), allow_kinds=["User", "Group"])
    )
    client = signed_in("ada@example.com")

    group = client.get("/catalog/default/group/team-x/").content.decode()
    carol = client.get("/catalog/default/user/carol/").content.decode()

    def section(page: str, label: str) -> str:
        found = re.search(rf'aria-label="{label}">(.*?)</section>', page, re.S)
        assert found, label
        return found.group(1)

    members = section(group, "Members")
    assert 'href="/catalog/default/user/bob/"' in members
    assert 'href="/catalog/default/user/carol/"' in members
    assert 'href="/catalog/default/component/x-service/"' in section(group, "Owned entities")
    assert 'href="/catalog/default/group/team-x/"' in section(carol, "Groups")


SCRIPTED_LINKS = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: linked
  links:
    - {url: "javascript:alert(document.cookie)", title: Run me}
    - {url: "JaVaScRiPt:alert(1)", title: Mixed case}
    - {url: "java\\tscript:alert(1)", title: With a tab}
    - {url: "data:text/html,<script>alert(1)</script>", title: Data}
    - {url: "vbscript:msgbox(1)", title: VB}
    - {url: "https://docs.example.com/linked", title: Docs}
    - {url: "mailto:team@example.com", title: Mail us}
spec: {type: service, lifecycle: production, owner: team-x}
"""


def test_only_http_https_and_mailto_links_are_clickable(tmp_path: Path) -> None:
    (tmp_path / "linked.yaml").write_text(SCRIPTED_LINKS)
    report = location_import(target=str(tmp_path / "linked.yaml"))

    page = signed_in("ada@example.com").get("/catalog/default/component/linked/").content.decode()
    hrefs = re.findall(r'<a href="([^"]*)" rel="noopener noreferrer">', page)

    assert report.ok  # valid for Backstage, whose `new URL()` accepts every one of them
    assert hrefs == ["https://docs.example.com/linked", "mailto:team@example.com"]
    assert "javascript:alert(document.cookie)</code>" in page  # shown, as text
    assert page.count("(not opened: only http, https and mailto links are)") == 5
