"""The catalog table."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html

from access.policy import Viewer, access_state
from catalog.models import Entity
from catalog.refs import EntityRef
from portal.templatetags.atrium import badge

DESCRIPTION_LENGTH = 90


def owner_label(owner_ref: str) -> str:
    """An owner as people name it and as the table shows it: `team-payments` for
    `group:default/team-payments`, `other/team-x` in another namespace."""
    return owner_ref.split(":", 1)[-1].removeprefix("default/")


def _cell(label: str, **attrs: str) -> dict[str, dict[str, str]]:
    # The label heads the cell when rows are stacked on a narrow screen (atrium.css).
    return {"td": {"data-label": label, **attrs}, "th": attrs}


class EntityTable(tables.Table):
    name = tables.Column(
        accessor="name", verbose_name="Name", attrs=_cell("Name", **{"class": "name"})
    )
    kind = tables.Column(attrs=_cell("Kind"))
    owner_ref = tables.Column(verbose_name="Owner", attrs=_cell("Owner"))
    spec_type = tables.Column(verbose_name="Type", attrs=_cell("Type"))
    lifecycle = tables.Column(attrs=_cell("Lifecycle"))
    description = tables.Column(orderable=False, attrs=_cell("Description"))
    access = tables.Column(
        empty_values=(), orderable=False, verbose_name="Your access", attrs=_cell("Your access")
    )

    class Meta:
        model = Entity
        fields = ("name", "kind", "owner_ref", "spec_type", "lifecycle", "description")
        template_name = "components/table.html"
        attrs = {"class": "table entities"}
        empty_text = "No entity matches."

    def __init__(
        self,
        *args: Any,
        viewer: Viewer,
        open_requests: Mapping[str, int],
        with_kind: bool,
        **kwargs: Any,
    ) -> None:
        # The kind is in every row's name when the list is of one kind.
        super().__init__(*args, exclude=() if with_kind else ("kind",), **kwargs)
        self.viewer = viewer
        self.open_requests = open_requests

    def _may_see(self, record: Entity) -> bool:
        required = [row.role_name for row in record.required_role_rows.all()]
        return self.viewer.may_see_restricted(
            restricted=record.restricted, required_roles=required, owner_ref=record.owner_ref
        )

    def render_spec_type(self, record: Entity, value: str) -> str:
        return value if self._may_see(record) else "—"

    def render_lifecycle(self, record: Entity, value: str) -> str:
        return value if self._may_see(record) else "—"

    def render_name(self, record: Entity, told_apart: bool = False) -> str:
        url = EntityRef(record.kind, record.namespace, record.name).url
        if not told_apart:
            return format_html('<a href="{}">{}</a>', url, record.display_name)
        # Two rows would read alike: the kind and the name, as refs give them, say which is which.
        namespace = "" if record.namespace == "default" else f"{record.namespace}/"
        return format_html(
            '<a href="{}">{}</a> <span class="entity-ref">{} · {}{}</span>',
            url,
            record.display_name,
            record.kind,
            namespace,
            record.name,
        )

    def render_owner_ref(self, value: str) -> str:
        return owner_label(value)

    def render_description(self, value: str) -> str:
        if len(value) <= DESCRIPTION_LENGTH:
            return value
        cut = value[: DESCRIPTION_LENGTH - 1].rsplit(" ", 1)[0].rstrip(" ,;:")
        return cut + "…"

    def render_access(self, record: Entity) -> str:
        required = [row.role_name for row in record.required_role_rows.all()]
        standing = access_state(
            self.viewer, required_roles=required, open_requests=self.open_requests
        )
        if standing.state == "held":
            return badge("held", "held")
        if standing.state == "pending":
            url = reverse("access:request_detail", args=[standing.request_id])
            return format_html('<a href="{}">{}</a>', url, badge("pending", "pending"))
        words = "not held" if required else "no role required"
        return format_html(
            '<span class="muted" aria-hidden="true">—</span>'
            '<span class="visually-hidden">{}</span>',
            words,
        )

    def page_cells(self) -> list[list[tuple[str, Any]]]:
        """The page's rows as (td attributes, cell) pairs in column order.

        The same rendering as the render_* methods, done in one pass: django-tables2 looks up
        and inspects a render method for every cell, which was a quarter of the page's time.
        Empty values show the columns' default, as django-tables2 shows them.
        """
        columns = list(self.columns)
        cell_attrs = [column.attrs["td"].as_html() for column in columns]
        records: list[Entity] = [row.record for row in self.paginated_rows]
        shown_as = Counter(record.display_name.casefold() for record in records)
        rows = []
        for record in records:
            see = self._may_see(record)
            told_apart = shown_as[record.display_name.casefold()] > 1
            values = {
                "name": self.render_name(record, told_apart=told_apart),
                "kind": record.kind,
                "spec_type": record.spec_type if see else "—",
                "owner_ref": self.render_owner_ref(record.owner_ref),
                "lifecycle": record.lifecycle if see else "—",
                "description": self.render_description(record.description),
                "access": self.render_access(record),
            }
            cells = [values[column.name] or column.default for column in columns]
            rows.append(list(zip(cell_attrs, cells, strict=True)))
        return rows
