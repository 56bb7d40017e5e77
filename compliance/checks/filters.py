"""The one FilterSet for checks, shared by the API, the pages and the exports."""

import django_filters

from compliance.catalog.models import Regulation
from compliance.checks.models import Check, CheckStatus
from compliance.lib.filters import CaseInsensitiveChoiceFilter

FRAMEWORK_CHOICES = [(regulation.framework, regulation.label) for regulation in Regulation]


class CheckFilter(django_filters.FilterSet):
    """Filters of the check list: entity (``agent_id``), framework and status."""

    agent_id = django_filters.UUIDFilter(field_name="entity_id")
    framework = CaseInsensitiveChoiceFilter(choices=FRAMEWORK_CHOICES, method="filter_framework")
    status = CaseInsensitiveChoiceFilter(choices=CheckStatus.choices)

    class Meta:
        model = Check
        fields = ["agent_id", "framework", "status"]

    def filter_framework(self, queryset, name, value):
        return queryset.filter(regulation=Regulation.parse(value))
