"""The filters of the audit log (who, what, which role or entity, when), of the requests
waiting for a decision (which role, which entity, who asked) and of a review's holders."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone

from access.audit import actor_matches
from access.models import AccessRequest, AccessReviewItem, AuditEvent
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


class ReviewItemFilter(django_filters.FilterSet):
    """A review's holders as its page narrows them: what is decided, how they hold the role,
    whether they sign in, the snapshot's flags, a name or e-mail."""

    decision = django_filters.ChoiceFilter(
        method="by_decision", label="Decision", empty_label="any",
        choices=[("undecided", "not decided"), ("keep", "kept"), ("remove", "removed")],
    )  # fmt: skip
    source = django_filters.ChoiceFilter(
        field_name="source", label="How they hold it", empty_label="any way",
        choices=[("portal_grant", "granted through Atrium"), ("auth0", "granted in Auth0"),
                 ("sign_in", "seen in a sign-in token")],
    )  # fmt: skip
    outside = django_filters.BooleanFilter(
        method="granted_outside", label="Granted outside the portal",
        widget=forms.CheckboxInput,
    )  # fmt: skip
    idle_days = django_filters.NumberFilter(
        method="signed_in_before", label="No sign-in for more than (days)", min_value=0,
        max_value=36500,
    )  # fmt: skip
    flagged = django_filters.BooleanFilter(
        method="flagged_only", label="Flagged only", widget=forms.CheckboxInput,
    )  # fmt: skip
    q = django_filters.CharFilter(method="named", label="Name or e-mail")

    class Meta:
        model = AccessReviewItem
        fields: list[str] = []

    def by_decision(
        self, queryset: QuerySet[AccessReviewItem], name: str, value: str
    ) -> QuerySet[AccessReviewItem]:
        return queryset.filter(decision="" if value == "undecided" else value)

    def granted_outside(
        self, queryset: QuerySet[AccessReviewItem], name: str, value: bool | None
    ) -> QuerySet[AccessReviewItem]:
        if not value:  # an unticked box filters nothing
            return queryset
        return queryset.exclude(source="portal_grant").exclude(source="")

    def flagged_only(
        self, queryset: QuerySet[AccessReviewItem], name: str, value: bool | None
    ) -> QuerySet[AccessReviewItem]:
        return queryset.filter(flagged=True) if value else queryset

    def signed_in_before(
        self, queryset: QuerySet[AccessReviewItem], name: str, value: Decimal | None
    ) -> QuerySet[AccessReviewItem]:
        if value is None:
            return queryset
        cutoff = timezone.now() - timedelta(days=int(value))
        return queryset.filter(Q(last_sign_in__lt=cutoff) | Q(last_sign_in__isnull=True))

    def named(
        self, queryset: QuerySet[AccessReviewItem], name: str, value: str
    ) -> QuerySet[AccessReviewItem]:
        return queryset.filter(Q(email__icontains=value) | Q(name__icontains=value))
