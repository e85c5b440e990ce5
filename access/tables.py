"""The tables of the access pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import django_tables2 as tables
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from access.audit import actors_named
from access.models import AuditEvent, Role, RoleMembership
from access.policy import role_refusal
from access.selectors import rules_of
from access.words import action_words, source_words
from catalog.templatetags.people import prime_people, render_person
from portal.templatetags.atrium import when


class RoleTable(tables.Table):
    name = tables.Column()
    description = tables.Column(orderable=False)
    member_count = tables.Column(verbose_name="Members")
    declared_by = tables.Column(verbose_name="Declared by entities")
    owners = tables.Column(verbose_name="Owners (decide requests)", orderable=False)
    requestable = tables.Column(verbose_name="Requestable", orderable=False, empty_values=())
    policies = tables.Column(verbose_name="Policies", orderable=False, empty_values=())

    noun = "roles"

    class Meta:
        model = Role
        fields = ("name", "description")
        template_name = "components/table.html"
        attrs = {"class": "table stack"}
        empty_text = "No role is mirrored yet: the first sync fills this list."

    def render_name(self, record: Role) -> Any:
        url = reverse("access:role_detail", args=[record.name])
        gone = (
            mark_safe(' <span class="tag warn">deleted in Auth0</span>') if record.gone_at else ""
        )
        return format_html('<a href="{}"><code>{}</code></a>{}', url, record.name, gone)

    def render_owners(self, value: list[str]) -> Any:
        return format_html_join(", ", "<code>{}</code>", ((owner,) for owner in value))

    def render_policies(self, record: Role) -> Any:
        """The registry's policies at a glance, in words (the role's page says them in full)."""
        tags = [
            label
            for label, set_ in (
                ("decided with MFA", record.sensitive),
                ("approved by rule", bool(record.auto_approve)),
                ("break-glass", bool(record.break_glass)),
                ("conflicts with " + ", ".join(record.conflicts_with), bool(record.conflicts_with)),
            )
            if set_
        ]
        if not tags:
            return "—"
        return format_html_join(" ", '<span class="tag">{}</span>', ((tag,) for tag in tags))

    def render_requestable(self, record: Role) -> str:
        """Whether people may ask for it, or the rule that says they may not."""
        return role_refusal(rules_of(record)) or "yes"


class MemberTable(tables.Table):
    person = tables.Column(accessor="user__name", verbose_name="Person")
    sub = tables.Column(accessor="user__sub", verbose_name="Auth0 id")
    source = tables.Column(verbose_name="How they hold it")
    expires_at = tables.Column(verbose_name="Ends", empty_values=())
    created_at = tables.Column(verbose_name="Held since")

    noun = "members"

    class Meta:
        model = RoleMembership
        fields = ()
        sequence = ("person", "sub", "source", "expires_at", "created_at")
        template_name = "components/table.html"
        attrs = {"class": "table stack"}
        empty_text = "Nobody holds this role."

    def before_render(self, request: HttpRequest) -> None:
        """The catalog pages of the page's people, looked up together."""
        prime_people(request, [row.record.user.email for row in self.paginated_rows])

    def render_person(self, record: RoleMembership) -> SafeString:
        user = record.user
        return render_person(
            getattr(self, "request", None), name=user.name, email=user.email, sub=user.sub,
            show_email=True,
        )  # fmt: skip

    def render_source(self, record: RoleMembership) -> str:
        return source_words(record.source)

    def render_expires_at(self, value: datetime | None) -> SafeString | str:
        return when(value) if value else "no end"

    def render_created_at(self, value: datetime) -> SafeString | str:
        return when(value)


class AuditTable(tables.Table):
    at = tables.Column(verbose_name="When")
    actor = tables.Column(verbose_name="Who", order_by=("actor_name", "actor"))
    action = tables.Column(verbose_name="What")
    target = tables.Column(verbose_name="On", orderable=False)
    via = tables.Column(verbose_name="Through")
    correlation_id = tables.Column(verbose_name="Correlation", orderable=False)
    ip = tables.Column(verbose_name="IP", orderable=False, default="—")

    noun = "records"

    class Meta:
        model = AuditEvent
        fields = ()
        sequence = ("at", "actor", "action", "target", "via", "correlation_id", "ip")
        template_name = "components/table.html"
        attrs = {"class": "table stack"}
        empty_text = "No audit record matches."

    def before_render(self, request: HttpRequest) -> None:
        """The page's actors named (records from before names were kept by the person's name
        now) and their catalog pages looked up: a query or two for the page, none per row."""
        records = actors_named(row.record for row in self.paginated_rows)
        about = [record.target_person[1] for record in records if record.target_person]
        prime_people(request, [record.shown_email for record in records] + about)

    def render_at(self, value: datetime) -> SafeString | str:
        return when(value)

    def render_target(self, record: AuditEvent) -> SafeString | str:
        """What the record is about, the person at its end by name (`… for Ada Lovelace`)."""
        if record.target_person is None:
            return record.target
        name, email, sub = record.target_person
        about = record.target.removesuffix(sub)
        person = render_person(getattr(self, "request", None), name=name, email=email, sub=sub)
        return format_html("{}{}", about, person)

    def render_actor(self, record: AuditEvent) -> SafeString:
        return render_person(
            getattr(self, "request", None),
            name=record.shown_name,
            email=record.shown_email,
            sub=record.actor,
        )

    def render_action(self, value: str) -> SafeString:
        """The words, with the recorded name on hover (it is what the filter and API use)."""
        return format_html('<span title="{}">{}</span>', value, action_words(value))

    def render_via(self, record: AuditEvent) -> str:
        return record.get_via_display()
