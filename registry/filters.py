"""Query-string filters of the registry lists, applied to what the selectors return.

Filters only narrow a selector's queryset; they never widen what the user may see.
"""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from registry.models import (
    Dataset,
    DatasetStatus,
    ModelStatus,
    ModelVersion,
    RegisteredModel,
    RiskTier,
    VersionStatus,
)


def _search(queryset: QuerySet, value: str) -> QuerySet:
    return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))


class RegisteredModelFilter(django_filters.FilterSet):
    risk_tier = django_filters.ChoiceFilter(choices=RiskTier.choices)
    status = django_filters.ChoiceFilter(choices=ModelStatus.choices)
    owner = django_filters.CharFilter(field_name="owner__username", help_text="owner's username")
    team = django_filters.CharFilter(field_name="team__name", help_text="team (group) name")
    search = django_filters.CharFilter(
        method="filter_search", max_length=200, help_text="in the name and description"
    )

    class Meta:
        model = RegisteredModel
        fields = ["risk_tier", "status", "owner", "team", "search"]

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return _search(queryset, value)


class ModelVersionFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=VersionStatus.choices)
    framework = django_filters.CharFilter(max_length=100)

    class Meta:
        model = ModelVersion
        fields = ["status", "framework"]


class DatasetFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=DatasetStatus.choices)
    pii = django_filters.BooleanFilter()
    owner = django_filters.CharFilter(field_name="owner__username", help_text="owner's username")
    search = django_filters.CharFilter(
        method="filter_search", max_length=200, help_text="in the name and description"
    )

    class Meta:
        model = Dataset
        fields = ["status", "pii", "owner", "search"]

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return _search(queryset, value)
