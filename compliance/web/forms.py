"""Forms of the server-rendered pages: report filters, report requests and API keys."""

import datetime as dt

from django import forms
from django.contrib.auth.forms import AuthenticationForm, SetPasswordForm, UsernameField
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.utils import timezone

from compliance.catalog.models import Regulation
from compliance.inventory.models import Entity
from compliance.reports.models import ReportStatus
from compliance.reports.services import validate_period
from compliance.tenancy.models import Membership, Role
from compliance.tenancy.scope import visible_regulations

CUSTOM_PERIOD = "custom"
PERIOD_PRESETS = {
    "last_30_days": "Last 30 days",
    "last_90_days": "Last 90 days",
    "quarter_to_date": "Quarter to date",
    "last_quarter": "Last full quarter",
    "year_to_date": "Year to date",
}
# Guards against typing mistakes such as 36500. A key may also have no expiry at all.
MAX_KEY_LIFETIME_DAYS = 3650


def quarter_start(day):
    """Return the first day of the calendar quarter that contains ``day``."""
    return day.replace(month=3 * ((day.month - 1) // 3) + 1, day=1)


def preset_period(preset, today):
    """Return ``(start, end)`` of a period preset, both days inclusive.

    Every preset ends today except ``last_quarter``, the calendar quarter
    before the current one.
    """
    if preset == "quarter_to_date":
        return quarter_start(today), today
    if preset == "last_quarter":
        end = quarter_start(today) - dt.timedelta(days=1)
        return quarter_start(end), end
    if preset == "last_30_days":
        return today - dt.timedelta(days=29), today
    if preset == "last_90_days":
        return today - dt.timedelta(days=89), today
    if preset == "year_to_date":
        return today.replace(month=1, day=1), today
    raise ValueError(
        f"Invalid period preset {preset!r}. Expected one of {', '.join(PERIOD_PRESETS)}."
    )


class NoColonLabelsMixin:
    """Render labels without Django's default trailing colon, as the page layout expects."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class LoginForm(NoColonLabelsMixin, AuthenticationForm):
    pass


class EntityChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.name} ({obj.get_entity_type_display()})"


def regulation_choices(tenant):
    """Return ``(value, label)`` of the regulations that the caller's access scope allows."""
    return [(regulation.value, regulation.label) for regulation in visible_regulations(tenant)]


def date_input(today):
    return forms.DateInput(format="%Y-%m-%d", attrs={"type": "date", "max": today.isoformat()})


class ReportFilterForm(NoColonLabelsMixin, forms.Form):
    """The GET filters of the reports list, where an empty field means no filter on it."""

    entity = EntityChoiceField(
        queryset=Entity.objects.none(), required=False, empty_label="All entities"
    )
    regulation = forms.ChoiceField(required=False)
    status = forms.ChoiceField(
        choices=[("", "All statuses"), *ReportStatus.choices], required=False
    )

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["entity"].queryset = Entity.objects.for_tenant(tenant)
        self.fields["regulation"].choices = [
            ("", "All regulations"),
            *regulation_choices(tenant),
        ]

    def filter(self, reports):
        """Return ``reports`` narrowed by the filters, or none when a filter is invalid.

        An invalid filter shows its error and an empty list, never the
        unfiltered list, which a reader could take for the filtered one.
        """
        if not self.is_bound:
            return reports
        if not self.is_valid():
            return reports.none()

        data = self.cleaned_data
        if data.get("entity"):
            reports = reports.filter(entity=data["entity"])
        if data.get("regulation"):
            reports = reports.filter(regulation=data["regulation"])
        if data.get("status"):
            reports = reports.filter(status=data["status"])
        return reports

    def is_filtered(self):
        return self.is_bound and any(self.cleaned_data.get(name) for name in self.fields)


class ReportRequestForm(NoColonLabelsMixin, forms.Form):
    """A report request: entity, regulation and a period given by a preset or two dates."""

    entity = EntityChoiceField(queryset=Entity.objects.none(), empty_label=None)
    regulation = forms.ChoiceField(choices=Regulation.choices)
    period = forms.ChoiceField(
        label="Preset",
        initial=CUSTOM_PERIOD,
        help_text="A preset replaces the dates below.",
    )
    period_start = forms.DateField(label="Start date", required=False)
    period_end = forms.DateField(label="End date", required=False, help_text="Inclusive.")

    def __init__(self, *args, tenant, today, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.today = today
        self.fields["entity"].queryset = Entity.objects.for_tenant(tenant)
        self.fields["period"].choices = self._period_choices()
        self.fields["period_start"].widget = date_input(today)
        self.fields["period_end"].widget = date_input(today)
        self.fields[
            "period_end"
        ].help_text = (
            f"Inclusive, and no later than today ({today.isoformat()}, {tenant.time_zone})."
        )
        if not self.is_bound:
            self.initial.setdefault("period_start", today - dt.timedelta(days=6))
            self.initial.setdefault("period_end", today)

    def _period_choices(self):
        choices = [(CUSTOM_PERIOD, "Custom dates (below)")]
        for preset, label in PERIOD_PRESETS.items():
            start, end = preset_period(preset, self.today)
            choices.append((preset, f"{label} ({start.isoformat()} to {end.isoformat()})"))
        return choices

    def clean(self):
        cleaned = super().clean()
        preset = cleaned.get("period")
        if preset and preset != CUSTOM_PERIOD:
            cleaned["period_start"], cleaned["period_end"] = preset_period(preset, self.today)
        elif preset == CUSTOM_PERIOD:
            self._require_dates(cleaned)

        start, end = cleaned.get("period_start"), cleaned.get("period_end")
        if start and end:
            self._validate_period(start, end)
        return cleaned

    def _require_dates(self, cleaned):
        messages = {
            "period_start": "Enter a start date, or choose a preset period.",
            "period_end": "Enter an end date, or choose a preset period.",
        }
        for name, message in messages.items():
            if cleaned.get(name) is None and name not in self.errors:
                self.add_error(name, message)

    def _validate_period(self, start, end):
        try:
            validate_period(self.tenant, start, end)
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                for message in messages:
                    self.add_error(field, message)


class ApiKeyCreateForm(NoColonLabelsMixin, forms.Form):
    """A new API key: a name for people, the role it acts with, and an optional lifetime."""

    name = forms.CharField(
        max_length=100, help_text="Where the key is used, for example “CI pipeline”."
    )
    role = forms.ChoiceField(
        choices=Role.choices,
        initial=Role.AUDITOR,
        help_text="Auditors read; officers also generate reports; admins also manage keys.",
    )
    expires_in_days = forms.IntegerField(
        label="Expires in (days)",
        required=False,
        min_value=1,
        max_value=MAX_KEY_LIFETIME_DAYS,
        help_text="Leave empty for a key that does not expire.",
    )

    def expires_at(self):
        """Return the expiry time for the cleaned lifetime, or ``None`` for no expiry."""
        days = self.cleaned_data.get("expires_in_days")
        if days is None:
            return None
        return timezone.now() + dt.timedelta(days=days)


class MemberInviteForm(NoColonLabelsMixin, forms.Form):
    """A member to add to ``tenant``: the username of a new or existing account, and a role.

    The email is stored only when the account is new. An existing account
    keeps its email and password, because it may belong to other tenants.
    """

    username = UsernameField(
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text="Letters, digits and @ . + - _ only. An existing account is added as it is.",
    )
    email = forms.EmailField(help_text="Stored with a new account. No email is sent.")
    role = forms.ChoiceField(
        choices=Role.choices,
        initial=Role.AUDITOR,
        help_text=(
            "Auditors read; officers also generate reports; "
            "admins also manage API keys and members."
        ),
    )

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant

    def clean_username(self):
        username = self.cleaned_data["username"]
        existing = Membership.objects.filter(tenant=self.tenant, user__username=username).first()
        if existing is not None:
            raise ValidationError(
                f"{username} is already a member of {self.tenant.name} as "
                f"{existing.get_role_display()}. Change the role in the list of members instead."
            )
        return username


class MemberRoleForm(forms.Form):
    """The new role of a member, posted from that member's row of the members list."""

    role = forms.ChoiceField(choices=Role.choices)


class SetPasswordPageForm(NoColonLabelsMixin, SetPasswordForm):
    """Django's set-password form, with labels in the page layout's style."""
