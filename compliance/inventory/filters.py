"""The one FilterSet for entities, shared by the API and the pages."""

import django_filters

from compliance.inventory.models import Entity, EntityType
from compliance.lib.filters import CaseInsensitiveChoiceFilter


class EntityFilter(django_filters.FilterSet):
    entity_type = CaseInsensitiveChoiceFilter(choices=EntityType.choices)
    search = django_filters.CharFilter(field_name="name", lookup_expr="icontains")

    class Meta:
        model = Entity
        fields = ["entity_type", "search"]
