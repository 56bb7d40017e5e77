"""The FilterSets of controls and tenant rules, shared by the API and the pages."""

import django_filters

from compliance.catalog.models import Control, Regulation, TenantRule
from compliance.lib.filters import CaseInsensitiveChoiceFilter


class ControlFilter(django_filters.FilterSet):
    regulation = CaseInsensitiveChoiceFilter(choices=Regulation.choices)
    shipped = django_filters.BooleanFilter(field_name="tenant", lookup_expr="isnull")

    class Meta:
        model = Control
        fields = ["regulation", "shipped"]


class TenantRuleFilter(django_filters.FilterSet):
    regulation = CaseInsensitiveChoiceFilter(choices=Regulation.choices)
    enabled = django_filters.BooleanFilter()

    class Meta:
        model = TenantRule
        fields = ["regulation", "enabled"]
