"""The tables of the access pages."""

from __future__ import annotations

from typing import Any

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from access.models import AuditEvent, Role, RoleMembership
from access.policy import role_refusal
from access.selectors import rules_of


class RoleTable(tables.Table):
    name = tables.Column()
    description = tables.Column(orderable=False)
    member_count = tables.Column(verbose_name="Members")
    declared_by = tables.Column(verbose_name="Declared by entities")
    owners = tables.Column(verbose_name="Owners (decide requests)", orderable=False)
    requestable = tables.Column(verbose_name="Requestable", orderable=False, empty_values=())

    noun = "roles"

    class Meta:
        model = Role
        fields = ("name", "description")
        template_name = "components/table.html"
        attrs = {"class": "table"}
        empty_text = "No role is mirrored yet: the first sync fills this list."

    def render_name(self, record: Role) -> Any:
        url = reverse("access:role_detail", args=[record.name])
        gone = (
            mark_safe(' <span class="tag warn">deleted in Auth0</span>') if record.gone_at else ""
        )
        return format_html('<a href="{}"><code>{}</code></a>{}', url, record.name, gone)

    def render_owners(self, value: list[str]) -> Any:
        return format_html_join(", ", "<code>{}</code>", ((owner,) for owner in value))

    def render_requestable(self, record: Role) -> str:
        """Whether people may ask for it, or the rule that says they may not."""
        return role_refusal(rules_of(record)) or "yes"


class MemberTable(tables.Table):
    name = tables.Column(accessor="user__name", verbose_name="Person")
    email = tables.Column(accessor="user__email", verbose_name="E-mail")
    sub = tables.Column(accessor="user__sub", verbose_name="Auth0 user")
    source = tables.Column(verbose_name="Since how")
    expires_at = tables.Column(verbose_name="Ends", default="—")
    created_at = tables.Column(verbose_name="Held since")

    noun = "members"

    class Meta:
        model = RoleMembership
        fields = ()
        sequence = ("name", "email", "sub", "source", "expires_at", "created_at")
        template_name = "components/table.html"
        attrs = {"class": "table"}
        empty_text = "Nobody holds this role."

    def render_name(self, record: RoleMembership) -> str:
        return record.user.name or "—"


class AuditTable(tables.Table):
    at = tables.DateTimeColumn(format="Y-m-d H:i:s", verbose_name="When")
    actor = tables.Column()
    via = tables.Column(verbose_name="Through")
    action = tables.Column()
    target = tables.Column(verbose_name="On", orderable=False)
    correlation_id = tables.Column(verbose_name="Correlation", orderable=False)
    ip = tables.Column(verbose_name="IP", orderable=False, default="—")

    noun = "records"

    class Meta:
        model = AuditEvent
        fields = ()
        sequence = ("at", "actor", "via", "action", "target", "correlation_id", "ip")
        template_name = "components/table.html"
        attrs = {"class": "table"}
        empty_text = "No audit record matches."
