"""An entity's relations in words, and laid out as the graph its page draws as inline SVG.

The page draws it from this layout with no script (it works without JavaScript, under the
Content-Security-Policy); the layout is a narrow column, so that on a phone the viewBox scales
it down little and its words stay readable. The entity sits in the middle, what it belongs to
above it, what it provides, uses and holds below, one box per relation, joined by a line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

# Backstage's relation types, as a sentence about the entity says them.
RELATION_WORDS = {
    "ownedBy": "Owned by",
    "ownerOf": "Owns",
    "partOf": "Part of",
    "hasPart": "Has part",
    "providesApi": "Provides API",
    "apiProvidedBy": "Provided by",
    "consumesApi": "Consumes API",
    "apiConsumedBy": "Consumed by",
    "dependsOn": "Depends on",
    "dependencyOf": "Dependency of",
    "memberOf": "Member of",
    "hasMember": "Has member",
    "parentOf": "Parent of",
    "childOf": "Child of",
}
# What the entity belongs to is drawn above it; everything else below, in this order.
ABOVE = ("ownedBy", "partOf", "childOf", "memberOf")
BELOW = ("providesApi", "consumesApi", "apiProvidedBy", "apiConsumedBy", "dependsOn",
         "dependencyOf", "hasPart", "parentOf", "hasMember", "ownerOf")  # fmt: skip

# The drawing's bounds: a few boxes of each relation, a few dozen in all; the rest are counted
# ("and 37 more") and listed beside the graph.
PER_RELATION = 6
MOST_NODES = 24

# Geometry, in the viewBox's units (CSS pixels at full size).
WIDTH = 360
SPINE_X = 10  # the line every box hangs from
INNER_X = 22
INNER_WIDTH = WIDTH - INNER_X - 8
PAD = 8
LABEL_HEIGHT = 26
NODE_HEIGHT = 42
ROW_GAP = 8
MORE_HEIGHT = 20
BOX_GAP = 14
CENTER_HEIGHT = 60
# About how wide a character of the titles is, for shortening them to their box.
NODE_CHAR_WIDTH = 7.8
CENTER_CHAR_WIDTH = 9.6


def relation_words(relation_type: str) -> str:
    """ "Owned by" for `ownedBy`; a type Backstage does not define is shown as written."""
    return RELATION_WORDS.get(relation_type, relation_type)


def relation_order(types: Iterable[str]) -> list[str]:
    """Above first, then below, then any other type by name."""
    known = ABOVE + BELOW
    types = set(types)
    return [t for t in known if t in types] + sorted(types - set(known))


def kind_noun(*, kind: str, spec_type: str = "") -> str:
    """How a sentence names an entity's kind: a group by its type (team, organization)."""
    if kind.lower() == "group":
        return spec_type.lower() or "group"
    if kind.lower() == "api":
        return "API"
    return kind.lower()


def noun_after(relation_type: str, noun: str) -> str:
    """The kind to say after the relation's words: none where they say it ("Provides API"), nor
    before a person's name ("Has member Ada Lovelace")."""
    if noun in ("user", "") or relation_words(relation_type).lower().endswith(noun.lower()):
        return ""
    return noun


def shorten(text: str, width: float, char_width: float) -> str:
    """The text cut to what fits a box this wide, with an ellipsis when cut."""
    fits = max(4, int((width - 2 * PAD) / char_width))
    return text if len(text) <= fits else text[: fits - 1].rstrip() + "…"


@dataclass(frozen=True)
class GraphItem:
    """An entity as a box of the graph: its title, its kind, its page ("" when none answers)."""

    title: str
    kind: str
    url: str = ""
    ref: str = ""


@dataclass(frozen=True)
class Node:
    item: GraphItem
    x: float
    y: float
    width: float
    height: float
    title: str  # shortened to fit

    @property
    def text_x(self) -> float:
        return self.x + PAD

    @property
    def title_y(self) -> float:
        return self.y + self.height / 2 - 1

    @property
    def kind_y(self) -> float:
        return self.y + self.height / 2 + 14


@dataclass(frozen=True)
class Box:
    """The entities of one relation: its words, its boxes, and how many more there are."""

    relation_type: str
    label: str
    y: float
    height: float
    nodes: list[Node] = field(default_factory=list)
    more: int = 0
    x: float = INNER_X
    width: float = INNER_WIDTH

    @property
    def text_x(self) -> float:
        return self.x + PAD

    @property
    def label_y(self) -> float:
        return self.y + 17

    @property
    def joint_y(self) -> float:
        """Where the line from the spine meets the box, level with its words."""
        return self.y + 12

    @property
    def more_y(self) -> float:
        return self.y + self.height - 7


@dataclass(frozen=True)
class Graph:
    center: Node
    boxes: list[Box]
    height: float
    width: float = WIDTH

    @property
    def view_box(self) -> str:
        return f"0 0 {self.width:g} {self.height:g}"

    @property
    def spine(self) -> tuple[float, float, float]:
        """The vertical line (x, top, bottom) joining the entity to every box."""
        joints = [box.joint_y for box in self.boxes] + [self.center_joint_y]
        return SPINE_X, min(joints), max(joints)

    @property
    def center_joint_y(self) -> float:
        return self.center.y + self.center.height / 2

    @property
    def joints(self) -> list[float]:
        """Where a line leaves the spine for a box or the entity."""
        return [box.joint_y for box in self.boxes] + [self.center_joint_y]


@dataclass(frozen=True)
class Related:
    """The targets of one relation type the page knows: those it shows and how many in all."""

    relation_type: str
    items: list[GraphItem]
    total: int


def shares(
    counts: list[int], *, per_group: int = PER_RELATION, most: int = MOST_NODES
) -> list[int]:
    """How many boxes each relation gets: up to `per_group`, at most `most` in all, taken from
    the largest first, never below one."""
    taken = [min(count, per_group) for count in counts]
    while sum(taken) > most and max(taken) > 1:
        taken[taken.index(max(taken))] -= 1
    return taken


def graph_layout(*, center: GraphItem, related: list[Related]) -> Graph | None:
    """The graph of an entity and its relations (in `relation_order`); None without any."""
    related = [group for group in related if group.items]
    if not related:
        return None
    by_type = {group.relation_type: group for group in related}
    ordered = [by_type[t] for t in relation_order(by_type)]
    counts = shares([len(group.items) for group in ordered])
    above = [(g, n) for g, n in zip(ordered, counts, strict=True) if g.relation_type in ABOVE]
    below = [(g, n) for g, n in zip(ordered, counts, strict=True) if g.relation_type not in ABOVE]

    boxes: list[Box] = []
    y = 8.0
    for group, count in above:
        box = _box(group, count, y)
        boxes.append(box)
        y += box.height + BOX_GAP
    center_node = Node(
        item=center, x=INNER_X, y=y, width=INNER_WIDTH, height=CENTER_HEIGHT,
        title=shorten(center.title, INNER_WIDTH, CENTER_CHAR_WIDTH),
    )  # fmt: skip
    y += CENTER_HEIGHT + BOX_GAP
    for group, count in below:
        box = _box(group, count, y)
        boxes.append(box)
        y += box.height + BOX_GAP
    return Graph(center=center_node, boxes=boxes, height=y - BOX_GAP + 8)


def _box(group: Related, count: int, y: float) -> Box:
    items = group.items[:count]
    # One entity takes the whole width, so its title needs cutting least; more go two a row.
    columns = 1 if len(items) == 1 else 2
    node_width = (INNER_WIDTH - (columns + 1) * PAD) / columns
    nodes = []
    for index, item in enumerate(items):
        row, column = divmod(index, columns)
        x = INNER_X + PAD + column * (node_width + PAD)
        top = y + LABEL_HEIGHT + row * (NODE_HEIGHT + ROW_GAP)
        nodes.append(
            Node(
                item=item,
                x=x,
                y=top,
                width=node_width,
                height=NODE_HEIGHT,
                title=shorten(item.title, node_width, NODE_CHAR_WIDTH),
            )  # fmt: skip
        )
    rows = -(-len(items) // columns)
    more = max(0, group.total - len(items))
    height = LABEL_HEIGHT + rows * (NODE_HEIGHT + ROW_GAP) - ROW_GAP + PAD
    if more:
        height += MORE_HEIGHT
    return Box(relation_type=group.relation_type, label=relation_words(group.relation_type),
               y=y, height=height, nodes=nodes, more=more)  # fmt: skip
