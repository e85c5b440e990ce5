"""Reading the catalog through the API, in Backstage's shapes and with Backstage's filters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from catalog.models import Entity
from catalog.services import location_refresh, location_register
from portal.management.commands.seed_demo import DEMO_CATALOG
from tests.helpers import names, signed_in

pytestmark = pytest.mark.django_db


def test_entities_come_back_in_backstages_shape_with_relations(demo_catalog: None) -> None:
    client = signed_in("grace@example.com")

    body = client.get("/api/catalog/entities/by-name/component/default/payments-api").json()

    assert body["apiVersion"] == "backstage.io/v1alpha1"
    assert body["kind"] == "Component"
    assert body["metadata"]["uid"] == str(Entity.objects.get(name="payments-api").uid)
    assert body["metadata"]["etag"]
    assert body["spec"]["owner"] == "team-payments"
    assert {
        "type": "ownedBy",
        "targetRef": "group:default/team-payments",
        "target": {"kind": "group", "namespace": "default", "name": "team-payments"},
    } in body["relations"]


def test_by_name_answers_404_in_backstages_error_shape(demo_catalog: None) -> None:
    response = signed_in("ada@example.com").get(
        "/api/catalog/entities/by-name/component/default/nope"
    )

    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "name": "NotFoundError",
            "message": "No entity named 'nope' found, with kind 'component' in namespace 'default'",
        },
        # What Backstage's clients look for before they trust the error's name.
        "request": {"method": "GET", "url": "/api/catalog/entities/by-name/component/default/nope"},
        "response": {"statusCode": 404},
    }


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["kind=resource"], ["checkout-db", "kafka-cluster", "payments-db", "warehouse-bucket"]),
        (["kind=Component,spec.lifecycle=experimental"], ["log-pipeline", "payouts-service"]),
        (["kind=api,kind=resource,spec.owner=team-payments"], ["payments", "payments-db"]),
        (["kind=domain", "kind=system,metadata.name=identity"],
         ["commerce", "identity", "platform"]),
        (["metadata.tags=pci"], ["payments-api"]),
        # Each string of a list is a key of its own: two tags at once, in one filter.
        (["metadata.tags.java"], ["payments-api", "payments-worker"]),
        (["metadata.tags.java=true,metadata.tags.PCI=true"], ["payments-api"]),
        (["metadata.tags.java=false"], []),
        (["spec.dependson.resource:payments-db,spec.dependson.resource:kafka-cluster"],
         ["payments-api"]),
        # A value too long to index (an API's definition) still has its key.
        (["kind=api,spec.definition"], ["checkout", "events", "identity", "payments"]),
        (["relations.ownedby=group:default/team-data,kind=resource"], ["kafka-cluster",
                                                                        "warehouse-bucket"]),
        (["kind=group,spec.parent"], ["team-checkout", "team-data", "team-payments",
                                      "team-platform"]),
    ],
)  # fmt: skip
def test_filters_work_as_backstages(
    demo_catalog: None, filters: list[str], expected: list[str]
) -> None:
    client = signed_in("linus@example.com", "portal-admin")
    query = "&".join(f"filter={f}" for f in filters)

    items = client.get(f"/api/catalog/entities?{query}&fields=metadata.name").json()

    assert sorted(names(items)) == expected
    assert all(set(item) == {"metadata"} for item in items)


def test_by_query_pages_with_cursors_and_totals(demo_catalog: None) -> None:
    client = signed_in("ada@example.com")
    seen: list[str] = []
    url = (
        "/api/catalog/entities/by-query?filter=kind=component&limit=4&orderField=metadata.name,asc"
    )

    first = client.get(url).json()
    seen += names(first["items"])
    page = first
    while "nextCursor" in page["pageInfo"]:
        page = client.get(
            f"/api/catalog/entities/by-query?cursor={page['pageInfo']['nextCursor']}&limit=4"
        ).json()
        seen += names(page["items"])

    assert first["totalItems"] == 10
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 10
    assert "prevCursor" in page["pageInfo"]


def test_entities_page_by_limit_and_follow_the_link_header_to_the_end(demo_catalog: None) -> None:
    """Backstage's GET /entities pages: `limit`, and a `Link` to the next page with `after`."""
    client = signed_in("ada@example.com")
    everyone = names(client.get("/api/catalog/entities?order=asc:metadata.name").json())
    seen: list[str] = []
    pages = 0
    url: str | None = "/api/catalog/entities?limit=10&order=asc:metadata.name&fields=metadata.name"

    while url:
        response = client.get(url)
        assert response.status_code == 200
        seen += names(response.json())
        pages += 1
        link = response.headers.get("Link")
        url = None
        if link:
            url = link[1 : link.index(">")]
            assert "after=" in url and "limit=10" in url and link.endswith('rel="next"')

    assert seen == everyone
    assert pages == -(-len(everyone) // 10)
    assert names(client.get("/api/catalog/entities?limit=5&offset=35").json()) == everyone[35:40]


def test_a_forged_after_cursor_is_a_clear_400(demo_catalog: None) -> None:
    response = signed_in("ada@example.com").get("/api/catalog/entities?after=%%%")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Malformed after cursor, could not be parsed"


def test_by_query_totals_match_the_entities_and_follow_a_refresh(
    demo_catalog: None, tmp_path: Path
) -> None:
    client = signed_in("ada@example.com")

    def total(query: str) -> int:
        return int(client.get(f"/api/catalog/entities/by-query?{query}").json()["totalItems"])

    counted = {
        "": Entity.objects.count(),
        "filter=kind=Component": Entity.objects.filter(kind__iexact="component").count(),
        "filter=kind=api,kind=group": Entity.objects.filter(kind__in=["API", "Group"]).count(),
        "filter=kind=component,spec.type=service": total("filter=spec.type=service,kind=component"),
    }
    assert {query: total(query) for query in counted} == counted
    (tmp_path / "more.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: one-more}\n"
        "spec: {type: service, lifecycle: production, owner: team-payments}\n"
    )
    location_refresh(location=location_register(target=str(tmp_path / "more.yaml")))
    assert total("filter=kind=component") == counted["filter=kind=Component"] + 1


def test_by_query_full_text_and_descending_order(demo_catalog: None) -> None:
    body = (
        signed_in("ada@example.com")
        .get(
            "/api/catalog/entities/by-query?fullTextFilterTerm=pay&orderField=metadata.name,desc"
            "&filter=kind=component"
        )
        .json()
    )

    assert names(body["items"]) == [
        "payouts-service", "payments-worker", "payments-api", "ledger-service",
    ]  # fmt: skip


def test_by_refs_keeps_the_order_asked_and_answers_null_for_the_missing(demo_catalog: None) -> None:
    response = signed_in("ada@example.com").post(
        "/api/catalog/entities/by-refs",
        {"entityRefs": ["api:default/events", "component:default/nope", "Group:default/ACME"]},
        content_type="application/json",
    )

    items = response.json()["items"]
    assert [item and item["metadata"]["name"] for item in items] == ["events", None, "acme"]


def test_facets_count_values_among_the_filtered(demo_catalog: None) -> None:
    body = (
        signed_in("ada@example.com")
        .get(
            "/api/catalog/entity-facets?facet=kind&facet=spec.lifecycle&filter=spec.owner=team-payments"
        )
        .json()
    )

    kinds = {facet["value"]: facet["count"] for facet in body["facets"]["kind"]}
    assert kinds == {"Component": 4, "System": 1, "API": 1, "Resource": 1}
    assert {"value": "experimental", "count": 1} in body["facets"]["spec.lifecycle"]


def test_restricted_details_are_withheld_from_those_without_access(demo_catalog: None) -> None:
    path = "/api/catalog/entities/by-name/component/default/payments-api"

    outsider = signed_in("ada@example.com").get(path).json()
    holder = signed_in("bob@example.com", "payments.viewer").get(path).json()
    owner = signed_in("grace@example.com").get(path).json()

    assert outsider["metadata"]["title"] == "Payments API"
    assert outsider["metadata"]["annotations"] == {
        "atrium.dev/required-roles": "payments.viewer, payments.admin"
    }
    assert "links" not in outsider["metadata"]
    assert outsider["spec"] == {"owner": "team-payments"}
    assert {r["type"] for r in outsider["relations"]} == {"ownedBy"}
    assert holder["metadata"]["links"] and owner["metadata"]["links"]
    assert holder["spec"]["dependsOn"] == ["resource:payments-db", "resource:kafka-cluster"]


def test_an_entity_whose_every_required_role_is_malformed_stays_closed(
    demo_catalog: None, tmp_path: Path
) -> None:
    """A role name too long to store is left out; the entity it was meant to close must not
    open for everyone because nothing valid was left. Its owners and admins still see it."""
    (tmp_path / "vault.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: vault\n"
        f"  annotations: {{atrium.dev/required-roles: {'r' * 300}}}\n"
        "  links: [{url: 'https://runbooks.example.com/vault'}]\n"
        "spec: {type: service, lifecycle: production, owner: team-payments, "
        "dependsOn: ['resource:payments-db']}\n"
    )
    location_refresh(location=location_register(target=str(tmp_path / "vault.yaml")))
    vault = Entity.objects.get(name="vault")
    assert vault.restricted
    assert "until it is fixed only the owner and portal admins" in vault.problems[0]
    by_name = "/api/catalog/entities/by-name/component/default/vault"
    listed = "/api/catalog/entities?filter=metadata.name=vault"
    page = "/catalog/default/component/vault/"
    outsider = signed_in("ada@example.com", "payments.viewer")
    owner = signed_in("grace@example.com")

    for answer in [outsider.get(by_name).json(), outsider.get(listed).json()[0]]:
        assert "links" not in answer["metadata"]
        assert answer["spec"] == {"owner": "team-payments"}
    assert "runbooks.example.com/vault" not in outsider.get(page).content.decode()
    for answer in [owner.get(by_name).json(), owner.get(listed).json()[0]]:
        assert answer["metadata"]["links"][0]["url"] == "https://runbooks.example.com/vault"
        assert answer["spec"]["dependsOn"] == ["resource:payments-db"]
    assert "runbooks.example.com/vault" in owner.get(page).content.decode()


def test_a_bad_filter_or_order_is_a_clear_400(demo_catalog: None) -> None:
    client = signed_in("ada@example.com")

    bad_order = client.get("/api/catalog/entities?order=sideways:metadata.name")
    bad_direction = client.get("/api/catalog/entities/by-query?orderField=metadata.name,up")
    bad_cursor = client.get("/api/catalog/entities/by-query?cursor=nonsense")

    assert bad_order.status_code == bad_direction.status_code == bad_cursor.status_code == 400
    assert "order must look like asc:metadata.name" in bad_order.json()["error"]["message"]
    assert bad_direction.json()["error"] == {
        "name": "InputError",
        "message": "Invalid order field order, must be asc or desc",
    }


def test_the_list_api_runs_a_fixed_number_of_queries(
    demo_catalog: None, django_assert_max_num_queries: Any
) -> None:
    client = signed_in("ada@example.com")

    with django_assert_max_num_queries(12):
        response = client.get(
            "/api/catalog/entities/by-query?limit=50&filter=kind=component,spec.type=service"
        )

    assert response.status_code == 200
    body = response.json()
    assert body["totalItems"] == len(body["items"]) > 0
    assert {item["kind"] for item in body["items"]} == {"Component"}
    assert {item["spec"]["type"] for item in body["items"]} == {"service"}
    # payments-api is a service too, but restricted: Ada may not see its spec, so not match on it.
    assert names(body["items"]) == [
        "cart-service", "log-pipeline", "metrics-collector", "payouts-service", "warehouse-loader",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "probe",
    [
        "spec.type=service",
        "spec.lifecycle=production",
        "metadata.tags=pci",
        "spec.system=payments",
        "spec.dependsOn=resource:payments-db",
        "metadata.links.url=https://runbooks.example.com/payments-api",
        "metadata.annotations.atrium.dev/max-access-duration=P30D",
        "relations.dependson=resource:default/payments-db",
        "metadata.tags.pci",
    ],
)
def test_filters_on_restricted_details_match_only_for_those_who_may_see_them(
    demo_catalog: None, probe: str
) -> None:
    """Ada may not see Payments API's details: a filter on one must not tell her its value,
    while its public fields still find it, and a holder of its role finds it either way."""
    path = f"/api/catalog/entities?filter=kind=component,{probe}&fields=metadata.name"
    outsider = signed_in("ada@example.com")
    holder = signed_in("bob@example.com", "payments.viewer")

    assert "payments-api" not in names(outsider.get(path).json())
    assert "payments-api" in names(holder.get(path).json())
    by_query = outsider.get(f"/api/catalog/entities/by-query?filter=kind=component,{probe}")
    assert "payments-api" not in names(by_query.json()["items"])
    assert "payments-api" in names(
        outsider.get(
            "/api/catalog/entities?filter=kind=component,spec.owner=team-payments"
            "&filter=metadata.annotations.atrium.dev/required-roles"
        ).json()
    )


def test_the_migration_rebuilds_search_rows_by_backstages_rules(demo_catalog: None) -> None:
    """A catalog ingested before 0007 had no `metadata.tags.<tag>` rows; migrating adds them."""
    from importlib import import_module

    from django.apps import apps

    from catalog.models import SearchRow

    migration = import_module("catalog.migrations.0007_search_rows_as_backstage")
    SearchRow.objects.filter(key__startswith="metadata.tags.").delete()
    client = signed_in("linus@example.com", "portal-admin")
    path = "/api/catalog/entities?filter=metadata.tags.pci&fields=metadata.name"
    assert names(client.get(path).json()) == []

    migration.rebuild_search_rows(apps, None)

    assert names(client.get(path).json()) == ["payments-api"]
    assert names(
        client.get(
            "/api/catalog/entities?filter=relations.ownedby=group:default/team-data,kind=resource"
            "&fields=metadata.name&order=asc:metadata.name"
        ).json()
    ) == ["kafka-cluster", "warehouse-bucket"]


# --- Backstage's query features: offset, predicates, full-text fields, any order ------------


def post(client: Client, path: str, body: dict[str, Any]) -> Any:
    return client.post(path, body, content_type="application/json")


def test_by_query_starts_at_the_offset_and_its_cursor_goes_on_from_there(
    demo_catalog: None,
) -> None:
    client = signed_in("ada@example.com")
    url = (
        "/api/catalog/entities/by-query?filter=kind=component&orderField=metadata.name,asc&limit=2"
    )

    first = client.get(url).json()
    third = client.get(f"{url}&offset=2").json()
    fourth = client.get(
        f"/api/catalog/entities/by-query?limit=2&cursor={third['pageInfo']['nextCursor']}"
    )

    assert names(first["items"]) == ["cart-service", "checkout-web"]
    assert names(third["items"]) == ["identity-gateway", "ledger-service"]
    assert third["totalItems"] == 10
    # As Backstage's: a first page has no previous one, wherever it starts.
    assert "prevCursor" not in third["pageInfo"]
    assert names(fourth.json()["items"]) == ["log-pipeline", "metrics-collector"]
    previous = fourth.json()["pageInfo"]["prevCursor"]
    back = client.get(f"/api/catalog/entities/by-query?limit=2&cursor={previous}").json()
    assert names(back["items"]) == ["identity-gateway", "ledger-service"]
    negative = client.get(f"{url}&offset=-1")
    assert negative.status_code == 400
    assert negative.json()["error"]["name"] == "InputError"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"kind": "API"}, ["checkout", "events", "identity", "payments"]),
        ({"kind": "component", "spec.lifecycle": "EXPERIMENTAL"}, ["log-pipeline",
                                                                   "payouts-service"]),
        ({"kind": "resource", "spec.type": {"$in": ["s3-bucket", "kafka-cluster"]}},
         ["kafka-cluster", "warehouse-bucket"]),
        ({"$any": [{"kind": "domain"}, {"kind": "system", "metadata.name": "identity"}]},
         ["commerce", "identity", "platform"]),
        ({"$all": [{"kind": "group"}, {"spec.parent": {"$exists": False}}]}, ["acme"]),
        ({"$all": [{"kind": "component"}, {"$not": {"spec.lifecycle": "production"}}]},
         ["log-pipeline", "payouts-service"]),
        ({"kind": "component", "metadata.name": {"$hasPrefix": "PAY"}},
         ["payments-api", "payments-worker", "payouts-service"]),
        ({"metadata.tags.java": True}, ["payments-api", "payments-worker"]),
        ({"kind": "user", "relations.memberof": "group:default/team-payments"},
         ["grace", "margaret"]),
        ({}, None),
    ],
)  # fmt: skip
def test_by_query_post_takes_backstages_predicates(
    demo_catalog: None, query: dict[str, Any], expected: list[str] | None
) -> None:
    client = signed_in("linus@example.com", "portal-admin")

    response = post(client, "/api/catalog/entities/by-query", {"query": query, "limit": 100})

    assert response.status_code == 200, response.content
    found = sorted(names(response.json()["items"]))
    assert found == (expected if expected is not None else sorted(
        Entity.objects.values_list("name", flat=True)
    ))  # fmt: skip
    assert response.json()["totalItems"] == len(found)


def test_by_query_post_pages_with_its_cursor_and_orders_as_asked(demo_catalog: None) -> None:
    client = signed_in("ada@example.com")
    body = {
        "query": {"kind": "component"},
        "orderBy": [{"field": "metadata.name", "order": "desc"}],
        "limit": 3,
        "offset": 1,
        "fields": ["metadata.name"],
    }

    first = post(client, "/api/catalog/entities/by-query", body).json()
    cursor = first["pageInfo"]["nextCursor"]
    second = post(client, "/api/catalog/entities/by-query", {"cursor": cursor, "limit": 3}).json()

    assert names(first["items"]) == ["payouts-service", "payments-worker", "payments-api"]
    assert all(set(item) == {"metadata"} for item in first["items"])
    assert first["totalItems"] == 10
    assert names(second["items"]) == ["metrics-collector", "log-pipeline", "ledger-service"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (["kind"], "Query must be an object"),
        ({"$all": ["component"]}, "top-level primitive values are not supported"),
        ({"metadata.tags": {"$contains": {"x": "y"}}},
         'Invalid filter predicate value for field "metadata.tags"'),
        ({"$all": [{"kind": "api"}], "kind": "api"}, "Invalid query"),
        ({"kind": ["api", "group"]}, "Invalid query"),
        ({"$some": [{"kind": "api"}]}, "Invalid query"),
    ],
)  # fmt: skip
def test_a_malformed_predicate_is_an_input_error(
    demo_catalog: None, query: Any, message: str
) -> None:
    response = post(signed_in("ada@example.com"), "/api/catalog/entities/by-query",
                    {"query": query})  # fmt: skip

    assert response.status_code == 400
    assert response.json()["error"]["name"] == "InputError"
    assert message in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "probe",
    [
        {"spec.type": "service"},
        {"spec.lifecycle": {"$in": ["production", "nope"]}},
        {"metadata.tags": "pci"},
        {"metadata.tags.pci": {"$exists": True}},
        {"spec.dependsOn": {"$hasPrefix": "resource:payments"}},
        {"metadata.annotations.atrium.dev/max-access-duration": "P30D"},
    ],
)
def test_predicates_on_restricted_details_match_only_for_those_who_may_see_them(
    demo_catalog: None, probe: dict[str, Any]
) -> None:
    """As with `filter=`: Ada may not see Payments API's details, so no predicate on one finds
    it for her, while a holder of its role finds it, through entities and facets alike."""
    query = {"$all": [{"kind": "component"}, probe]}
    outsider = signed_in("ada@example.com")
    holder = signed_in("bob@example.com", "payments.viewer")

    def found(client: Client) -> list[str]:
        body = {"query": query, "limit": 100}
        return names(post(client, "/api/catalog/entities/by-query", body).json()["items"])

    def owners(client: Client) -> dict[str, int]:
        body = {"facets": ["metadata.name"], "query": query}
        facets = post(client, "/api/catalog/entity-facets", body).json()["facets"]
        return {facet["value"]: facet["count"] for facet in facets["metadata.name"]}

    assert "payments-api" not in found(outsider)
    assert "payments-api" in found(holder)
    assert "payments-api" not in owners(outsider)
    assert "payments-api" in owners(holder)


def test_a_hidden_detail_is_absent_for_those_who_may_not_see_it(demo_catalog: None) -> None:
    """Negations see what the caller sees: to Ada, Payments API has no lifecycle at all."""
    query = {"$all": [{"kind": "component"}, {"spec.lifecycle": {"$exists": False}}]}

    def found(client: Client) -> list[str]:
        body = {"query": query, "limit": 100}
        return names(post(client, "/api/catalog/entities/by-query", body).json()["items"])

    assert "payments-api" in found(signed_in("ada@example.com"))
    assert found(signed_in("linus@example.com", "portal-admin")) == []


def test_full_text_fields_match_the_term_in_those_fields_values(demo_catalog: None) -> None:
    client = signed_in("ada@example.com")
    base = "/api/catalog/entities/by-query?limit=100&fullTextFilterTerm=payments"

    by_owner = names(client.get(f"{base}&fullTextFilterFields=spec.owner").json()["items"])
    by_name = names(client.get(base).json()["items"])
    in_title = names(
        post(
            client,
            "/api/catalog/entities/by-query",
            {"fullTextFilter": {"term": "OpenAPI", "fields": ["metadata.title", "kind"]}},
        ).json()["items"]
    )

    # The owner's name holds the word: what team-payments owns, not what is named so.
    assert sorted(by_owner) == sorted(
        Entity.objects.filter(owner_ref="group:default/team-payments").values_list(
            "name", flat=True
        )
    )
    assert "ledger-service" in by_owner and "ledger-service" not in by_name
    assert in_title == ["payments"]


def test_full_text_on_name_and_description_finds_what_backstages_search_table_holds(
    tmp_path: Path,
) -> None:
    """Case-insensitive, the term's `%` and `_` as themselves, and a value over 200 characters
    not searched (Backstage's search table keeps none)."""
    described = {
        "loud": "The LEDGER of record",
        "long": "ledger " + "x" * 200,
        "odd": "100%_ledger",
        "plain": "a queue",
    }
    (tmp_path / "catalog-info.yaml").write_text(
        "---\n".join(
            "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
            f"metadata: {{name: {name}, description: '{text}'}}\n"
            "spec: {type: service, lifecycle: production, owner: team-a}\n"
            for name, text in described.items()
        )
        + "---\napiVersion: backstage.io/v1alpha1\nkind: Component\n"
        "metadata: {name: Ledger-Service}\nspec: {type: service, lifecycle: production, owner: a}\n"
    )
    location_refresh(location=location_register(target=str(tmp_path)))
    client = signed_in("ada@example.com")

    def found(term: str) -> list[str]:
        path = (
            f"/api/catalog/entities/by-query?limit=100&fullTextFilterTerm={term}"
            "&fullTextFilterFields=metadata.name,metadata.description"
        )
        return sorted(names(client.get(path).json()["items"]))

    assert found("Ledger") == ["Ledger-Service", "loud", "odd"]
    assert found("0%25_l") == ["odd"]
    assert found("0_") == []


def test_full_text_fields_on_details_match_only_for_those_who_may_see_them(
    demo_catalog: None,
) -> None:
    path = (
        "/api/catalog/entities/by-query?fullTextFilterTerm=PCI"
        "&fullTextFilterFields=spec.lifecycle,metadata.tags"
    )

    outsider = names(signed_in("ada@example.com").get(path).json()["items"])
    holder = names(signed_in("bob@example.com", "payments.viewer").get(path).json()["items"])

    assert outsider == []
    assert holder == ["payments-api"]


def test_by_query_orders_by_any_field_with_entities_without_it_last(demo_catalog: None) -> None:
    client = signed_in("ada@example.com")
    base = "/api/catalog/entities/by-query?filter=kind=user&filter=kind=group&filter=kind=domain"

    ascending = client.get(f"{base}&orderField=spec.profile.displayName,asc").json()
    descending = client.get(f"{base}&orderField=spec.profile.displayName,desc").json()
    by_uid = client.get(f"{base}&orderField=metadata.uid,asc&fields=metadata.uid").json()

    assert names(ascending["items"]) == [
        "acme", "ada", "alan", "barbara", "team-checkout", "team-data", "grace", "linus",
        "margaret", "team-payments", "team-platform", "commerce", "platform",
    ]  # fmt: skip
    assert names(descending["items"])[:2] == ["team-platform", "team-payments"]
    assert sorted(names(descending["items"])[-2:]) == ["commerce", "platform"]
    uids = [item["metadata"]["uid"] for item in by_uid["items"]]
    assert uids == sorted(uids) and len(uids) == 13


@pytest.mark.parametrize("field_name", ["spec.lifecycle", "metadata.tags", "spec.system"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_ordering_by_a_detail_puts_hidden_ones_last_as_if_they_had_none(
    demo_catalog: None, field_name: str, direction: str
) -> None:
    """Ada may not see the payments components' or the identity gateway's details: ordering by
    one must not tell her their values, so they come last, as entities without it would."""
    path = (
        f"/api/catalog/entities/by-query?filter=kind=component&limit=100"
        f"&orderField={field_name},{direction}"
    )
    hidden = {"identity-gateway", "ledger-service", "payments-api", "payments-worker"}

    outsider = names(signed_in("ada@example.com").get(path).json()["items"])
    admin = names(signed_in("linus@example.com", "portal-admin").get(path).json()["items"])

    assert set(outsider[-4:]) == hidden
    assert set(admin[-4:]) != hidden


def test_fields_with_an_array_index_are_refused_as_backstage_does(demo_catalog: None) -> None:
    client = signed_in("ada@example.com")

    for path in (
        "/api/catalog/entities?fields=metadata.tags[0]",
        "/api/catalog/entities/by-query?fields=metadata.name,metadata.tags[0]",
    ):
        response = client.get(path)
        assert response.status_code == 400
        assert response.json()["error"] == {
            "name": "InputError",
            "message": "invalid fields, array type fields are not supported",
        }


def test_facets_by_predicate(demo_catalog: None) -> None:
    client = signed_in("ada@example.com")

    body = post(
        client,
        "/api/catalog/entity-facets",
        {"facets": ["kind"], "query": {"spec.owner": "team-payments"}},
    ).json()
    missing = post(client, "/api/catalog/entity-facets", {"facets": []})

    kinds = {facet["value"]: facet["count"] for facet in body["facets"]["kind"]}
    assert kinds == {"Component": 4, "System": 1, "API": 1, "Resource": 1}
    assert missing.status_code == 400
    assert missing.json()["error"]["message"] == "Missing or empty facets parameter"


def test_by_refs_answers_null_for_refs_the_filter_leaves_out(demo_catalog: None) -> None:
    client = signed_in("ada@example.com")
    refs = {"entityRefs": ["api:default/events", "component:default/payments-api",
                           "group:default/team-data"]}  # fmt: skip

    by_filter = post(client, "/api/catalog/entities/by-refs?filter=kind=api&filter=kind=group",
                     refs).json()  # fmt: skip
    by_query = post(client, "/api/catalog/entities/by-refs",
                    {**refs, "query": {"spec.type": "asyncapi"}}).json()  # fmt: skip
    # A detail Ada may not see does not find the entity for her.
    probing = post(client, "/api/catalog/entities/by-refs?filter=spec.type=service", refs).json()

    assert [item and item["metadata"]["name"] for item in by_filter["items"]] == [
        "events", None, "team-data"
    ]  # fmt: skip
    assert [item and item["metadata"]["name"] for item in by_query["items"]] == [
        "events", None, None
    ]  # fmt: skip
    assert probing["items"] == [None, None, None]


def test_an_entity_by_its_uid(demo_catalog: None) -> None:
    client = signed_in("ada@example.com")
    entity = Entity.objects.get(name="payments-api")

    found = client.get(f"/api/catalog/entities/by-uid/{entity.uid}")
    missing = client.get("/api/catalog/entities/by-uid/00000000-0000-0000-0000-000000000000")
    malformed = client.get("/api/catalog/entities/by-uid/not-a-uid")

    assert found.status_code == 200
    assert found.json()["metadata"]["name"] == "payments-api"
    # Ada may not see its details, however she finds it.
    assert found.json()["spec"] == {"owner": "team-payments"}
    assert missing.status_code == malformed.status_code == 404
    assert missing.json()["error"] == {
        "name": "NotFoundError",
        "message": "No entity with uid 00000000-0000-0000-0000-000000000000",
    }


def test_ancestry_names_the_location_entity_an_entity_was_read_through(demo_catalog: None) -> None:
    client = signed_in("ada@example.com")

    body = client.get("/api/catalog/entities/by-name/component/default/payments-api/ancestry")
    root = client.get("/api/catalog/entities/by-name/location/default/acme-demo/ancestry")
    missing = client.get("/api/catalog/entities/by-name/component/default/nope/ancestry")

    assert body.status_code == 200
    assert body.json()["rootEntityRef"] == "component:default/payments-api"
    assert [
        (item["entity"]["metadata"]["name"], item["parentEntityRefs"])
        for item in body.json()["items"]
    ] == [("payments-api", ["location:default/acme-demo"]), ("acme-demo", [])]
    assert "links" not in body.json()["items"][0]["entity"]["metadata"]
    assert [item["parentEntityRefs"] for item in root.json()["items"]] == [[]]
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "No such entity component:default/nope"


def test_the_location_an_entity_came_from(demo_catalog: None) -> None:
    client = signed_in("ada@example.com", "portal-admin")

    found = client.get("/api/catalog/locations/by-entity/component/default/payments-api")
    missing = client.get("/api/catalog/locations/by-entity/component/default/nope")

    assert found.json() == {
        "id": str(Entity.objects.get(name="payments-api").location_id),
        "type": "file",
        "target": str(DEMO_CATALOG),
        "allowKinds": ["User", "Group"],
        "allowRoutes": True,
    }
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "name": "NotFoundError",
        "message": "found no entity for ref component:default/nope",
    }


def test_unknown_api_paths_answer_a_json_404(demo_catalog: None) -> None:
    signed = signed_in("ada@example.com")

    for client, method, path in [
        (signed, "get", "/api/catalog/nope"),
        (signed, "get", "/api/catalog/entities/by-name/component/default"),
        (signed, "post", "/api/catalog/entities/by-uid"),
        (Client(), "get", "/api/catalog/nope"),
        (Client(), "get", "/api/nothing/here/"),
    ]:
        response = getattr(client, method)(path)
        assert response.status_code == 404, path
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["error"] == {
            "name": "NotFoundError",
            "message": f"No API route for {method.upper()} {path}",
        }
        assert response.json()["response"] == {"statusCode": 404}


def test_a_bad_request_is_an_input_error_as_backstage_names_it(demo_catalog: None) -> None:
    response = signed_in("ada@example.com").get("/api/catalog/entities?limit=0")

    assert response.status_code == 400
    assert response.json()["error"]["name"] == "InputError"
