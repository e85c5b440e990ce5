"""Relations as Backstage's stitched entities have them, and only as far as the viewer may see."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from catalog.services import location_refresh, location_register
from tests.helpers import names, signed_in

pytestmark = pytest.mark.django_db


def test_relation_filters_find_relations_whichever_entity_declared_them(
    demo_catalog: None, tmp_path: Path
) -> None:
    """A membership declared only on the Group (`members: [bob]`) is Bob's `memberOf` too, as
    Backstage's org pages ask for it: filter=kind=user,relations.memberof=<group>."""
    (tmp_path / "org.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: team-x}\n"
        "spec: {type: team, children: [], members: [bob]}\n---\n"
        "apiVersion: backstage.io/v1alpha1\nkind: User\nmetadata: {name: bob}\n"
        "spec: {memberOf: []}\n"
    )
    location_refresh(
        location=location_register(target=str(tmp_path / "org.yaml"), allow_kinds=["User", "Group"])
    )
    client = signed_in("ada@example.com")

    members = client.get(
        "/api/catalog/entities?filter=kind=user,relations.memberOf=group:default/team-x"
    ).json()
    having_members = client.get("/api/catalog/entities?filter=relations.hasmember").json()

    facets = client.get(
        "/api/catalog/entity-facets?facet=relations.memberOf&filter=kind=user,metadata.name=bob"
    ).json()["facets"]["relations.memberOf"]

    assert names(members) == ["bob"]
    assert "team-x" in names(having_members)
    assert facets == [{"value": "group:default/team-x", "count": 1}]


def test_an_open_entity_does_not_show_what_a_restricted_one_declared_about_it(
    demo_catalog: None,
) -> None:
    """Payments API (restricted) depends on kafka-cluster (open): that dependency is a detail
    of Payments API, so kafka-cluster's page and API show it only to who may see it."""
    outsider = signed_in("ada@example.com")
    holder = signed_in("bob@example.com", "payments.viewer")
    api = "/api/catalog/entities/by-name/resource/default/kafka-cluster"
    probe = "/api/catalog/entities?filter=relations.dependencyof=component:default/payments-api"
    page = "/catalog/default/resource/kafka-cluster/"

    def dependents(client: Any) -> list[str]:
        relations = client.get(api).json()["relations"]
        return [r["targetRef"] for r in relations if r["type"] == "dependencyOf"]

    assert "component:default/payments-api" not in dependents(outsider)
    assert "component:default/payments-api" in dependents(holder)
    assert "payments-api" not in outsider.get(f"{page}?tab=relations").text
    assert "payments-api" in holder.get(f"{page}?tab=relations").text
    assert "kafka-cluster" not in names(outsider.get(probe).json())
    assert "kafka-cluster" in names(holder.get(probe).json())
    assert {"type": "ownedBy", "targetRef": "group:default/team-data"}.items() <= next(
        r for r in outsider.get(api).json()["relations"] if r["type"] == "ownedBy"
    ).items()
