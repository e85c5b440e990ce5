"""The filters of the audit log (who, what, which role or entity, when) and of the requests
waiting for a decision (which role, which entity, who asked)."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from access.audit import actor_matches
from access.models import AccessRequest, AuditEvent
from access.words import ACTIONS

WHEN = forms.DateTimeInput(attrs={"type": "datetime-local"})


class AuditFilter(django_filters.FilterSet):
    actor = django_filters.CharFilter(
        method="by_actor", label="Who",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "name, e-mail or id"}),
    )  # fmt: skip
    # The raw action names are the values (a link may say `?action=grant.activated`); people
    # choose by the words.
    action = django_filters.ChoiceFilter(
        field_name="action", label="What", empty_label="anything", choices=list(ACTIONS.items())
    )
    role = django_filters.CharFilter(method="about_role", label="Role")
    entity = django_filters.CharFilter(field_name="target", lookup_expr="icontains",
                                       label="Entity")  # fmt: skip
    since = django_filters.DateTimeFilter(
        field_name="at", lookup_expr="gte", label="From", widget=WHEN
    )
    until = django_filters.DateTimeFilter(
        field_name="at", lookup_expr="lt", label="Until", widget=WHEN
    )

    class Meta:
        model = AuditEvent
        fields: list[str] = []

    def by_actor(
        self, queryset: QuerySet[AuditEvent], name: str, value: str
    ) -> QuerySet[AuditEvent]:
        """Part of a person's name or e-mail, in any case, or their id (`auth0|…`, `client:…`)."""
        return queryset.filter(actor_matches(value))

    def about_role(
        self, queryset: QuerySet[AuditEvent], name: str, value: str
    ) -> QuerySet[AuditEvent]:
        return queryset.filter(Q(detail__role=value) | Q(target__startswith=f"{value} "))


class ApprovalsFilter(django_filters.FilterSet):
    role = django_filters.CharFilter(field_name="role_name", label="Role")
    entity = django_filters.CharFilter(field_name="entity_ref", label="Entity")
    requester = django_filters.CharFilter(method="asked_by", label="Requester")

    class Meta:
        model = AccessRequest
        fields: list[str] = []

    def asked_by(
        self, queryset: QuerySet[AccessRequest], name: str, value: str
    ) -> QuerySet[AccessRequest]:
        """Part of the requester's name or e-mail, in any case."""
        return queryset.filter(
            Q(requester__email__icontains=value) | Q(requester__name__icontains=value)
        )
