"""The FilterSets of controls and tenant rules, shared by the API and the pages."""

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from compliance.catalog.models import Control, Regulation, TenantRule
from compliance.lib.filters import CaseInsensitiveChoiceFilter

BOOLEAN_CHOICES = [("true", "true"), ("false", "false")]


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanFilter(CaseInsensitiveChoiceFilter):
    """A boolean filter that accepts only ``true`` or ``false`` and rejects any other value.

    django-filter's ``BooleanFilter`` reads an invalid value as no filter at all.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, choices=BOOLEAN_CHOICES, **kwargs)

    def filter(self, queryset, value):
        if value in ("", None):
            return queryset
        return super().filter(queryset, value == "true")


class ControlFilter(django_filters.FilterSet):
    regulation = CaseInsensitiveChoiceFilter(choices=Regulation.choices)
    shipped = StrictBooleanFilter(
        field_name="tenant", lookup_expr="isnull", label="Shipped controls only, or own only"
    )

    class Meta:
        model = Control
        fields = ["regulation", "shipped"]


class TenantRuleFilter(django_filters.FilterSet):
    regulation = CaseInsensitiveChoiceFilter(choices=Regulation.choices)
    enabled = StrictBooleanFilter(label="Enabled rules only, or disabled only")

    class Meta:
        model = TenantRule
        fields = ["regulation", "enabled"]
