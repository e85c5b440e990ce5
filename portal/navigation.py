"""The navigation bar: each section appears once the app that serves it has its URL."""

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    current: bool
    count: int = 0
    # Where the count is fetched again when a page fires `approvals-changed`; "" for none.
    count_url: str = ""


# In the order they stand in the bar; an entry whose URL name is not routed yet is left out,
# so the bar never links to a page that does not exist. The last ones are for portal admins.
SECTIONS = [
    ("Catalog", "catalog:entity_list"),
    ("My access", "access:overview"),
    ("Approvals", "access:approvals"),
    ("Reviews", "access:reviews"),
]
# Sections whose count a page's decision changes, and the fragment that says it again (the
# bar keeps its element for a signed-in person even at 0, so that a count can come back).
LIVE_COUNTS = {"Approvals": "access:approvals_count"}
ADMIN_SECTIONS = [
    ("Roles", "access:roles"),
    ("Audit", "access:audit"),
]


def nav_items(
    *, path: str, is_admin: bool = False, counts: dict[str, int] | None = None
) -> list[NavItem]:
    routed = []
    for label, url_name in SECTIONS + (ADMIN_SECTIONS if is_admin else []):
        try:
            routed.append((label, reverse(url_name)))
        except NoReverseMatch:
            continue
    # The longest matching prefix is the current section: /access/approvals/ is Approvals,
    # not My access.
    current = max((url for _, url in routed if path.startswith(url)), key=len, default=None)
    counts = counts or {}
    return [
        NavItem(
            label=label, url=url, current=url == current, count=counts.get(label, 0),
            count_url=_url_of(LIVE_COUNTS.get(label, "")),
        )
        for label, url in routed
    ]  # fmt: skip


def _url_of(url_name: str) -> str:
    try:
        return reverse(url_name) if url_name else ""
    except NoReverseMatch:
        return ""
