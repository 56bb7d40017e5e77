"""Page versions of the shared entity and check FilterSets.

They keep every parameter of ``EntityFilter`` and ``CheckFilter`` with the
same meaning, so a page URL filters like the API, and only relabel them for
people and add empty "all" choices. The check list also filters by a date
range, the severity of a failing control, and a search, which the API does
not accept.
"""

import datetime as dt

import django_filters
from django import forms
from django.db.models import Exists, OuterRef, Q, Subquery

from compliance.catalog.models import Severity
from compliance.checks.filters import CheckFilter
from compliance.checks.models import CheckStatus, Finding, FindingStatus
from compliance.inventory.filters import EntityFilter
from compliance.inventory.models import Entity, EntityType
from compliance.tenancy.scope import visible_regulations
from compliance.web.latest import latest_first

DATE_FORMATS = ["%Y-%m-%d"]


class PageFilterForm(forms.Form):
    """The filter form of a list page: labels without a colon, and no reversed date range."""

    def __init__(self, *args, **kwargs):
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


def relabel(filterset, name, label, choices=None, help_text=None):
    """Set a filter's label, and its choices with an empty "all" option first.

    Must run before ``filterset.form`` is first read, which builds the fields.
    """
    extra = filterset.filters[name].extra
    filterset.filters[name].label = label
    if choices is not None:
        extra["choices"] = choices
    if help_text is not None:
        extra["help_text"] = help_text


def date_widget():
    return forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"})


class EntityPageFilter(EntityFilter):
    """``EntityFilter`` with page labels: type and a search of the names."""

    class Meta(EntityFilter.Meta):
        form = PageFilterForm

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        relabel(self, "entity_type", "Type", [("", "All types"), *EntityType.choices])
        relabel(self, "search", "Search", help_text="Part of the entity name.")

    def is_filtered(self):
        return self.is_bound and any(self.data.get(name) for name in self.filters)


class CheckPageFilter(CheckFilter):
    """``CheckFilter`` plus dates, the severity of a failing control and a search.

    ``agent_id`` stays the parameter name of the entity, as in the API, but
    the page offers the tenant's entities in a select. Dates are whole days
    in the tenant's time zone, both inclusive.
    """

    agent_id = django_filters.ModelChoiceFilter(
        field_name="entity", queryset=Entity.objects.none(), empty_label="All entities"
    )
    severity = django_filters.ChoiceFilter(
        choices=Severity.choices,
        method="filter_severity",
        label="Failing severity",
        empty_label="Any severity",
        help_text="Checks with a failing control of this severity.",
    )
    date_from = django_filters.DateFilter(
        method="filter_date_from", label="From", input_formats=DATE_FORMATS, widget=date_widget()
    )
    date_to = django_filters.DateFilter(
        method="filter_date_to",
        label="To",
        input_formats=DATE_FORMATS,
        widget=date_widget(),
        help_text="Inclusive.",
    )
    search = django_filters.CharFilter(
        method="filter_search",
        max_length=200,
        label="Search",
        help_text="Part of the entity or scanner name.",
    )
    control = django_filters.CharFilter(
        method="filter_control",
        max_length=64,
        label="Control",
        help_text="Checks with a finding of this control ID, such as CC6.1.",
    )
    control_status = django_filters.ChoiceFilter(
        choices=FindingStatus.choices,
        method="filter_control_status",
        label="Control status",
        empty_label="Any status",
        help_text="With a control: that control's finding has this status.",
    )
    latest = django_filters.BooleanFilter(
        method="filter_latest",
        label="Latest finding only",
        widget=forms.CheckboxInput,
        help_text="With a control: only each entity's latest finding of it since the From day.",
    )

    class Meta(CheckFilter.Meta):
        fields = [
            *CheckFilter.Meta.fields,
            "severity",
            "date_from",
            "date_to",
            "search",
            "control",
            "control_status",
            "latest",
        ]
        form = PageFilterForm

    def __init__(self, data=None, queryset=None, *, tenant, **kwargs):
        super().__init__(data, queryset, **kwargs)
        self.time_zone = tenant.zone
        self.filters["agent_id"].queryset = Entity.objects.for_tenant(tenant).order_by("name", "id")
        relabel(self, "agent_id", "Entity")
        # Only the regulations the access scope allows, so a limited auditor is
        # not offered a choice that always lists nothing. The API keeps them all.
        frameworks = [
            (regulation.framework, regulation.label) for regulation in visible_regulations(tenant)
        ]
        relabel(self, "framework", "Regulation", [("", "All regulations"), *frameworks])
        relabel(self, "status", "Status", [("", "All statuses"), *CheckStatus.choices])

    def is_filtered(self):
        return self.is_bound and any(self.data.get(name) for name in self.filters)

    def filter_severity(self, queryset, name, value):
        failing = Finding.objects.filter(
            compliance_check=OuterRef("pk"), status=FindingStatus.FAIL, severity=value
        )
        return queryset.filter(Exists(failing))

    def filter_control(self, queryset, name, value):
        """Keep checks with a finding of control ``value``, of ``control_status`` when given."""
        value = value.strip()
        if not value:
            return queryset
        findings = Finding.objects.filter(compliance_check=OuterRef("pk"), control_id=value)
        status = self.form.cleaned_data.get("control_status")
        if status:
            findings = findings.filter(status=status)
        if self.form.cleaned_data.get("latest"):
            findings = findings.filter(pk=Subquery(self.latest_finding(value)))
        return queryset.filter(Exists(findings))

    def latest_finding(self, control_id):
        """Return a subquery of the latest finding of ``control_id`` of the outer finding's entity.

        Only findings observed from the start of the From day count, as on
        the controls page, whose coverage counts link here.
        """
        latest = Finding.objects.filter(
            tenant_id=OuterRef("tenant_id"),
            entity_id=OuterRef("entity_id"),
            regulation=OuterRef("regulation"),
            control_id=control_id,
        )
        day = self.form.cleaned_data.get("date_from")
        start = self.start_of(day) if day else None
        if start is not None:
            latest = latest.filter(observed_at__gte=start)
        return latest.order_by(*latest_first()).values("pk")[:1]

    def filter_latest(self, queryset, name, value):
        """Do nothing alone: ``filter_control`` reads it."""
        return queryset

    def filter_control_status(self, queryset, name, value):
        """Keep checks with a finding of status ``value``, unless ``control`` narrows it."""
        if (self.form.cleaned_data.get("control") or "").strip():
            return queryset
        return queryset.filter(
            Exists(Finding.objects.filter(compliance_check=OuterRef("pk"), status=value))
        )

    def filter_search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(entity__name__icontains=value) | Q(source_name__icontains=value))

    def start_of(self, day):
        """Return the first instant of ``day`` in the tenant's zone, or ``None`` out of range."""
        try:
            return dt.datetime.combine(day, dt.time.min, tzinfo=self.time_zone).astimezone(dt.UTC)
        except OverflowError:
            return None

    def filter_date_from(self, queryset, name, value):
        start = self.start_of(value)
        return queryset if start is None else queryset.filter(created_at__gte=start)

    def filter_date_to(self, queryset, name, value):
        if value == dt.date.max:
            return queryset
        end = self.start_of(value + dt.timedelta(days=1))
        return queryset if end is None else queryset.filter(created_at__lt=end)
