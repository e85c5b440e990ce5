"""The catalog's filters: kind, type, owner, lifecycle, tag, namespace, mine, access, search."""

from __future__ import annotations

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from access.selectors import role_names_held
from catalog.models import Entity, EntityQuerySet
from catalog.selectors import person_group_refs


class EntityFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search")
    kind = django_filters.CharFilter(field_name="kind", lookup_expr="iexact")
    type = django_filters.CharFilter(field_name="spec_type", lookup_expr="iexact")
    owner = django_filters.CharFilter(field_name="owner_ref", lookup_expr="iexact")
    lifecycle = django_filters.CharFilter(field_name="lifecycle", lookup_expr="iexact")
    namespace = django_filters.CharFilter(field_name="namespace", lookup_expr="iexact")
    tag = django_filters.CharFilter(field_name="tag_rows__tag", lookup_expr="exact")
    mine = django_filters.BooleanFilter(
        method="owned_by_my_groups", label="Owned by my groups", widget=forms.CheckboxInput
    )
    access = django_filters.BooleanFilter(
        method="with_my_access", label="I have access", widget=forms.CheckboxInput
    )

    class Meta:
        model = Entity
        fields: list[str] = []

    def search(self, queryset: EntityQuerySet, name: str, value: str) -> EntityQuerySet:
        return queryset.matching(value)

    def owned_by_my_groups(
        self, queryset: QuerySet[Entity], name: str, value: bool
    ) -> QuerySet[Entity]:
        if not value:
            return queryset
        return queryset.filter(owner_ref__in=person_group_refs(user=self.request.user))

    def with_my_access(
        self, queryset: QuerySet[Entity], name: str, value: bool
    ) -> QuerySet[Entity]:
        if not value:
            return queryset
        held = role_names_held(user=self.request.user)
        return queryset.filter(
            Q(restricted=False) | Q(pk__in=Entity.objects.accessible_with(held).values("pk"))
        )
