"""The one FilterSet for period reports, shared by the API and the pages."""

import django_filters

from compliance.catalog.models import Regulation
from compliance.lib.filters import CaseInsensitiveChoiceFilter
from compliance.reports.models import Report, ReportStatus


class ReportFilter(django_filters.FilterSet):
    entity_id = django_filters.UUIDFilter(field_name="entity_id")
    regulation = CaseInsensitiveChoiceFilter(choices=Regulation.choices)
    status = CaseInsensitiveChoiceFilter(choices=ReportStatus.choices)

    class Meta:
        model = Report
        fields = ["entity_id", "regulation", "status"]
