"""The one FilterSet for checks, shared by the API, the pages and the exports."""

import django_filters
from django import forms

from compliance.catalog.models import Regulation
from compliance.checks.models import Check, CheckStatus


class LowerCaseChoiceField(forms.ChoiceField):
    """A choice field that accepts its values in any letter case."""

    def to_python(self, value):
        value = super().to_python(value)
        return value.strip().lower()

    def validate(self, value):
        if value and not self.valid_value(value):
            accepted = ", ".join(str(choice) for choice, _ in self.choices if choice)
            raise forms.ValidationError(
                f"Unknown value {value!r}; accepted values: {accepted}.", code="invalid_choice"
            )
        super().validate(value)


class LowerCaseChoiceFilter(django_filters.ChoiceFilter):
    field_class = LowerCaseChoiceField


FRAMEWORK_CHOICES = [(regulation.framework, regulation.label) for regulation in Regulation]


class CheckFilter(django_filters.FilterSet):
    """Filters of the check list: entity (``agent_id``), framework and status."""

    agent_id = django_filters.UUIDFilter(field_name="entity_id")
    framework = LowerCaseChoiceFilter(choices=FRAMEWORK_CHOICES, method="filter_framework")
    status = LowerCaseChoiceFilter(choices=CheckStatus.choices)

    class Meta:
        model = Check
        fields = ["agent_id", "framework", "status"]

    def filter_framework(self, queryset, name, value):
        return queryset.filter(regulation=Regulation.parse(value))
