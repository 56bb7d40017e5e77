"""The one FilterSet for audit events, shared by the audit page and the API.

Dates are whole days in the time zone given to the FilterSet: the tenant's
zone on the page, UTC in the API. Both ends of the range are inclusive.
"""

import datetime as dt

import django_filters
from django import forms

from compliance.audit.models import AuditAction, AuditEvent, AuditOutcome

DATE_FORMATS = ["%Y-%m-%d"]


class CaseInsensitiveChoiceField(django_filters.fields.ChoiceField):
    """A choice field that accepts its values in any letter case and lists them when invalid.

    It extends django-filter's field, not Django's, so that it takes an
    ``empty_label`` such as "All actions" for the page's select.
    """

    def to_python(self, value):
        return super().to_python(value).strip().lower()

    def validate(self, value):
        if value and not self.valid_value(value):
            accepted = ", ".join(str(choice) for choice, _ in self.choices if choice)
            raise forms.ValidationError(
                f"Unknown value {value!r}; accepted values: {accepted}.", code="invalid_choice"
            )
        super().validate(value)


class CaseInsensitiveChoiceFilter(django_filters.ChoiceFilter):
    field_class = CaseInsensitiveChoiceField


class AuditFilterForm(forms.Form):
    """The filter form, which also checks that the date range is not reversed."""

    def __init__(self, *args, **kwargs):
        # The page layout puts labels above fields, without Django's trailing colon.
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            self.add_error(
                "date_to",
                f"The end date {end.isoformat()} is before the start date {start.isoformat()}.",
            )
        return cleaned


def date_widget():
    return forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"})


class AuditEventFilter(django_filters.FilterSet):
    """Filters of the audit trail: action, actor name, outcome and a date range."""

    action = CaseInsensitiveChoiceFilter(choices=AuditAction.choices, empty_label="All actions")
    actor = django_filters.CharFilter(
        field_name="actor_name",
        lookup_expr="icontains",
        max_length=200,
        label="Actor",
        help_text="Part of a username or API key name.",
    )
    outcome = CaseInsensitiveChoiceFilter(choices=AuditOutcome.choices, empty_label="All outcomes")
    date_from = django_filters.DateFilter(
        method="filter_date_from",
        label="From",
        input_formats=DATE_FORMATS,
        widget=date_widget(),
    )
    date_to = django_filters.DateFilter(
        method="filter_date_to",
        label="To",
        input_formats=DATE_FORMATS,
        widget=date_widget(),
        help_text="Inclusive.",
    )

    class Meta:
        model = AuditEvent
        fields = ["action", "actor", "outcome", "date_from", "date_to"]
        form = AuditFilterForm

    def __init__(self, data=None, queryset=None, *, time_zone=dt.UTC, **kwargs):
        super().__init__(data, queryset, **kwargs)
        self.time_zone = time_zone

    def start_of(self, day):
        """Return the first instant of ``day`` in the FilterSet's zone, or ``None`` out of range.

        Days next to ``date.min`` and ``date.max`` can fall outside the range
        of datetime in UTC, and then the bound excludes nothing.
        """
        try:
            return dt.datetime.combine(day, dt.time.min, tzinfo=self.time_zone).astimezone(dt.UTC)
        except OverflowError:
            return None

    def filter_date_from(self, queryset, name, value):
        start = self.start_of(value)
        return queryset if start is None else queryset.filter(occurred_at__gte=start)

    def filter_date_to(self, queryset, name, value):
        if value == dt.date.max:
            return queryset
        end = self.start_of(value + dt.timedelta(days=1))
        return queryset if end is None else queryset.filter(occurred_at__lt=end)
