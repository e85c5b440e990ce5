"""The catalog's filters: kind, type, owner, lifecycle, tag, namespace, mine, access, search."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from access.policy import Viewer
from catalog.models import Entity, EntityQuerySet
from catalog.refs import EntityRefError, parse_entity_ref


def owner_key(value: str) -> str | None:
    """An owner as `spec.owner` names one, as the catalog stores it: `team-a` is
    `group:default/team-a`. None when the value is no entity reference."""
    try:
        return parse_entity_ref(value.strip(), default_kind="Group").key
    except EntityRefError:
        return None


class EntityFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    kind = django_filters.CharFilter(field_name="kind", lookup_expr="iexact")
    type = django_filters.CharFilter(method="detail", field_name="spec_type__iexact")
    owner = django_filters.CharFilter(method="owned_by")
    lifecycle = django_filters.CharFilter(method="detail", field_name="lifecycle__iexact")
    namespace = django_filters.CharFilter(field_name="namespace", lookup_expr="iexact")
    tag = django_filters.CharFilter(method="tagged", label="Tag")
    mine = django_filters.BooleanFilter(
        method="owned_by_my_groups", label="Owned by me or my groups", widget=forms.CheckboxInput
    )
    access = django_filters.BooleanFilter(
        method="with_my_access", label="I have access", widget=forms.CheckboxInput
    )

    class Meta:
        model = Entity
        fields: list[str] = []

    def search(self, queryset: EntityQuerySet, name: str, value: str) -> EntityQuerySet:
        """The entities holding every word, best match first (a column's order, asked for by
        its heading, replaces it)."""
        return queryset.matching(value).by_relevance(value)

    def __init__(self, *args: Any, viewer: Viewer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.viewer = viewer

    def owned_by(self, queryset: QuerySet[Entity], name: str, value: str) -> QuerySet[Entity]:
        owner = owner_key(value)
        return queryset.filter(owner_ref=owner) if owner else queryset.none()

    def detail(self, queryset: QuerySet[Entity], name: str, value: str) -> QuerySet[Entity]:
        """Type, lifecycle and tags are details of a restricted entity: filtering on them must
        not show who may not see them which restricted entities have them."""
        return queryset.filter(Q(**{name: value}) & self.viewer.may_see_restricted_q())

    def tagged(self, queryset: EntityQuerySet, name: str, value: str) -> EntityQuerySet:
        """Tags are a detail too (see `detail`)."""
        return queryset.tagged(value).filter(self.viewer.may_see_restricted_q())

    def owned_by_my_groups(
        self, queryset: QuerySet[Entity], name: str, value: bool
    ) -> QuerySet[Entity]:
        if not value:
            return queryset
        return queryset.filter(owner_ref__in=self.viewer.owner_refs)

    def with_my_access(
        self, queryset: QuerySet[Entity], name: str, value: bool
    ) -> QuerySet[Entity]:
        if not value:
            return queryset
        return queryset.filter(self.viewer.may_see_restricted_q())
