"""The relations graph's layout: who sits where, what links where, and how much is drawn."""

from __future__ import annotations

from catalog.graph import (
    MOST_NODES,
    PER_RELATION,
    WIDTH,
    Graph,
    GraphItem,
    Related,
    graph_layout,
    noun_after,
    relation_words,
    shares,
)

CENTER = GraphItem("Payments API", "component", "/catalog/default/component/payments-api/")


def item(title: str, kind: str = "component") -> GraphItem:
    return GraphItem(title, kind, f"/catalog/default/{kind}/{title.lower()}/", f"{kind}:{title}")


def laid_out(*related: Related) -> Graph:
    graph = graph_layout(center=CENTER, related=list(related))
    assert graph is not None
    return graph


def test_what_the_entity_belongs_to_is_above_it_and_what_it_uses_below() -> None:
    graph = laid_out(
        Related("dependsOn", [item("payments-db", "resource")], 1),
        Related("ownedBy", [item("Payments", "team")], 1),
        Related("providesApi", [item("Payments API (OpenAPI)", "API")], 1),
    )

    labels = [box.label for box in graph.boxes]
    assert labels == ["Owned by", "Provides API", "Depends on"]
    owned, provides, depends = graph.boxes
    assert owned.y + owned.height < graph.center.y
    assert graph.center.y + graph.center.height < provides.y < depends.y
    assert graph.height >= depends.y + depends.height


def test_every_box_links_to_its_entity_and_carries_its_title_and_kind() -> None:
    graph = laid_out(Related("ownedBy", [item("Payments", "team")], 1))

    (node,) = graph.boxes[0].nodes
    assert (node.title, node.item.kind, node.item.url) == (
        "Payments",
        "team",
        "/catalog/default/team/payments/",
    )
    assert graph.center.title == "Payments API"


def test_nothing_is_drawn_past_the_width_and_no_two_boxes_overlap() -> None:
    graph = laid_out(
        Related("ownedBy", [item("Payments", "team")], 1),
        Related("dependsOn", [item(f"db-{n}", "resource") for n in range(5)], 5),
        Related("consumesApi", [item(f"api-{n}", "API") for n in range(2)], 2),
    )

    nodes = [graph.center] + [node for box in graph.boxes for node in box.nodes]
    for node in nodes:
        assert node.x >= 0 and node.x + node.width <= WIDTH
    for index, first in enumerate(nodes):
        for second in nodes[index + 1 :]:
            apart = (
                first.x + first.width <= second.x
                or second.x + second.width <= first.x
                or first.y + first.height <= second.y
                or second.y + second.height <= first.y
            )
            assert apart, (first.title, second.title)
    assert graph.view_box == f"0 0 {WIDTH} {graph.height:g}"


def test_a_long_title_is_cut_to_its_box_and_kept_whole_for_the_hover() -> None:
    long = "The payments reconciliation and settlement service of every shop"
    graph = laid_out(Related("dependsOn", [item(long), item("short")], 2))

    cut = graph.boxes[0].nodes[0]
    assert cut.title.endswith("…") and len(cut.title) < len(long)
    assert long.startswith(cut.title[:-1])
    assert cut.item.title == long
    assert graph.boxes[0].nodes[1].title == "short"


def test_many_relations_are_bounded_and_the_rest_counted() -> None:
    owned = [item(f"service-{n:02}") for n in range(43)]
    graph = laid_out(Related("ownerOf", owned[:40], 43))

    (box,) = graph.boxes
    assert len(box.nodes) == PER_RELATION
    assert box.more == 43 - PER_RELATION  # "and 37 more"


def test_the_whole_graph_draws_at_most_a_few_dozen_boxes() -> None:
    related = [
        Related(relation_type, [item(f"{relation_type}-{n}") for n in range(10)], 10)
        for relation_type in (
            "ownedBy",
            "partOf",
            "hasPart",
            "dependsOn",
            "dependencyOf",
            "consumesApi",
            "providesApi",
            "hasMember",
        )  # fmt: skip
    ]
    graph = laid_out(*related)

    drawn = sum(len(box.nodes) for box in graph.boxes)
    assert drawn == MOST_NODES
    assert all(box.nodes for box in graph.boxes), "every relation keeps at least one box"
    assert sum(box.more for box in graph.boxes) == 80 - MOST_NODES


def test_shares_take_from_the_largest_and_never_below_one() -> None:
    assert shares([1, 2, 3]) == [1, 2, 3]
    assert shares([9, 1], per_group=6, most=5) == [4, 1]
    assert shares([1] * 30, most=24) == [1] * 30


def test_an_entity_without_relations_has_no_graph() -> None:
    assert graph_layout(center=CENTER, related=[]) is None
    assert graph_layout(center=CENTER, related=[Related("ownedBy", [], 0)]) is None


def test_relations_read_as_words() -> None:
    assert relation_words("ownedBy") == "Owned by"
    assert relation_words("hasMember") == "Has member"
    assert relation_words("somethingNew") == "somethingNew"
    assert noun_after("partOf", "system") == "system"  # "Part of system Payments"
    assert noun_after("providesApi", "API") == ""  # "Provides API Payments API"
    assert noun_after("hasMember", "user") == ""  # "Has member Ada Lovelace"
