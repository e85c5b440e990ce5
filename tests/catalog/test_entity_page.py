"""The entity page: its tabs, its relations in words and as a graph, and what tells it apart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.graph import PER_RELATION
from catalog.services import location_refresh, location_register
from catalog.views import RELATIONS_LISTED
from tests.helpers import signed_in, text

pytestmark = pytest.mark.django_db
PAGE = "/catalog/default/component/payments-api/"


def register(path: Path, yaml: str) -> None:
    path.write_text(yaml)
    location_refresh(location=location_register(target=str(path), allow_kinds=["User", "Group"]))


def component(name: str, *, owner: str = "team-payments", title: str = "") -> str:
    titled = f", title: {title}" if title else ""
    return (
        f"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {{name: {name}{titled}}}\n"
        f"spec: {{type: service, lifecycle: production, owner: {owner}}}\n"
    )


def tab_links(page: str) -> list[tuple[str, str, bool]]:
    nav = re.search(r'<nav class="entity-tabs".*?</nav>', page, re.S)
    assert nav, "no tabs"
    return [
        (label, href, "aria-current" in attributes)
        for href, attributes, label in re.findall(r'<a href="([^"]*)"([^>]*)>([^<]+)</a>', nav[0])
    ]


def test_the_tabs_are_links_and_the_current_one_says_so(payments: None) -> None:
    grace = signed_in("grace@example.com")

    overview = grace.get(PAGE).content.decode()
    relations = grace.get(PAGE + "?tab=relations").content.decode()
    unknown = grace.get(PAGE + "?tab=nonsense").content.decode()
    api = grace.get("/catalog/default/api/payments/?tab=definition").content.decode()

    assert tab_links(overview) == [
        ("Overview", PAGE, True),
        ("Relations", PAGE + "?tab=relations", False),
        ("Access", PAGE + "?tab=access", False),
    ]
    assert [current for *_, current in tab_links(relations)] == [False, True, False]
    assert tab_links(unknown) == tab_links(overview)  # a tab it does not have: the overview
    # Only an API has a Definition tab, and it holds the definition.
    assert [label for label, *_ in tab_links(api)] == [
        "Overview",
        "Relations",
        "Access",
        "Definition",
    ]
    assert "openapi: 3.0.0" in api
    assert "About" not in text(api.encode())


def test_relations_read_as_words_with_titles_and_the_graph_links_each_one(
    payments: None,
) -> None:
    page = signed_in("grace@example.com").get(PAGE + "?tab=relations").content.decode()

    listed = re.search(r'<section class="card" aria-label="Relations">.*?</section>', page, re.S)
    assert listed
    words = text(listed[0].encode())
    assert words == "Relations Owned by team-payments Provides API payments"
    graph = re.search(r"<svg .*?</svg>", page, re.S)
    assert graph
    svg = graph[0]
    assert 'viewBox="0 0 360 ' in svg
    assert re.findall(r'<a href="([^"#]+)"', svg) == [
        "/catalog/default/group/team-payments/",
        "/catalog/default/api/payments/",
    ]
    assert 'aria-label="payments (API)"' in svg
    assert "Payments API" in svg  # the entity itself, in the middle
    # Drawn without a style attribute or a script: the Content-Security-Policy allows neither.
    assert " style=" not in page
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)


def test_people_without_access_see_only_who_owns_it(payments: None) -> None:
    page = signed_in("ada@example.com").get(PAGE + "?tab=relations").content.decode()

    assert "Owned by team-payments" in text(page.encode())
    assert "Provides API" not in page
    assert "/catalog/default/api/payments/" not in page


def test_a_restricted_entity_s_problems_are_a_detail_its_annotations_would_show(
    payments: None, tmp_path: Path
) -> None:
    from catalog.models import Location

    descriptor = tmp_path / "payments.yaml"
    descriptor.write_text(descriptor.read_text().replace(
        "    atrium.dev/max-access-duration: P30D\n",
        "    atrium.dev/max-access-duration: P30D\n"
        "    atrium.dev/gateway-routes: GET *.refunds-admin.corp.internal/v1/*\n",
    ))  # fmt: skip
    location_refresh(location=Location.objects.get(target=str(descriptor)))

    as_ada = text(signed_in("ada@example.com").get(PAGE).content)  # holds no payments role
    as_grace = text(signed_in("grace@example.com").get(PAGE).content)  # in team-payments

    assert "refunds-admin.corp.internal" not in as_ada
    assert "Processing errors" in as_ada
    assert "its owners, holders of its roles and portal admins see them" in as_ada
    assert "*.refunds-admin.corp.internal&#x27; holds a wildcard" in as_grace


def test_a_group_owning_many_draws_a_few_and_counts_the_rest(
    payments: None, tmp_path: Path
) -> None:
    owned = 60
    register(
        tmp_path / "big.yaml",
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: team-big}\n"
        "spec: {type: team, children: []}\n---\n"
        + "---\n".join(component(f"service-{n:02}", owner="team-big") for n in range(owned)),
    )

    page = signed_in("ada@example.com").get("/catalog/default/group/team-big/?tab=relations")

    html = page.content.decode()
    svg = re.search(r"<svg .*?</svg>", html, re.S)
    assert svg
    assert len(re.findall(r'<g class="graph-node">', svg[0])) == PER_RELATION
    assert f"and {owned - PER_RELATION} more" in svg[0]
    assert 'href="#relations-ownerOf"' in svg[0]
    listed = re.search(r'<ul class="relation-list" id="relations-ownerOf">(.*?)</ul>', html, re.S)
    assert listed
    assert listed[1].count("<li>") == RELATIONS_LISTED
    assert f"and {owned - RELATIONS_LISTED} more" in text(html.encode())


def test_the_page_reads_as_many_queries_for_many_relations_as_for_few(
    payments: None, tmp_path: Path
) -> None:
    def queries(owned: int) -> int:
        register(
            tmp_path / f"group-{owned}.yaml",
            f"apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {{name: team-{owned}}}\n"
            "spec: {type: team, children: []}\n---\n"
            + "---\n".join(component(f"s{owned}-{n}", owner=f"team-{owned}") for n in range(owned)),
        )
        client = signed_in(f"reader-{owned}@example.com")
        client.get("/")  # the session's first request reads what later ones keep
        with CaptureQueriesContext(connection) as captured:
            response = client.get(f"/catalog/default/group/team-{owned}/?tab=relations")
        assert response.status_code == 200
        return len(captured.captured_queries)

    assert queries(40) == queries(3)


def test_two_entities_with_one_title_are_told_apart_by_kind_and_name(
    payments: None, tmp_path: Path
) -> None:
    register(tmp_path / "twin.yaml", component("card-api", title="Payments API"))
    client = signed_in("ada@example.com")

    first = client.get(PAGE).content.decode()
    second = client.get("/catalog/default/component/card-api/").content.decode()

    def heading(page: str) -> str:
        found = re.search(r"<h1.*?</h1>", page, re.S)
        assert found
        return text(found[0].encode())

    assert heading(first) == "Payments API Component · payments-api"
    assert heading(second) == "Payments API Component · card-api"


def test_a_relation_declared_from_both_ends_is_listed_once(tmp_path: Path) -> None:
    register(
        tmp_path / "org.yaml",
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: team-x}\n"
        "spec: {type: team, children: [], members: [carol]}\n---\n"
        "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: carol}\n"
        "spec: {profile: {displayName: Carol Shaw}, memberOf: [team-x]}\n",
    )

    page = signed_in("ada@example.com").get("/catalog/default/group/team-x/?tab=relations")

    listed = re.search(r'id="relations-hasMember">(.*?)</ul>', page.content.decode(), re.S)
    assert listed
    assert text(listed[1].encode()) == "Has member Carol Shaw"
