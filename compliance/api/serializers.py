"""Request validation and response shapes of the v1 API."""

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Mapping

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from compliance.catalog.models import Regulation
from compliance.checks.models import Finding
from compliance.inventory.models import EntityType
from compliance.reports.aggregation import isoformat_z
from compliance.reports.services import validate_period

DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class StrictFieldsMixin:
    """Reject body fields the serializer does not declare, so a misspelt field is a 400.

    Without it DRF drops unknown fields without a word, and a client that
    sends ``expires_in_days`` instead of ``expires_at`` gets a key that never
    expires.
    """

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            accepted = ", ".join(sorted(self.fields))
            unknown = sorted(str(name) for name in data if name not in self.fields)
            if unknown:
                raise serializers.ValidationError(
                    {name: [f"Unknown field; accepted: {accepted}."] for name in unknown}
                )
        return super().to_internal_value(data)


def _reject_non_string(data):
    """Fail a string field on JSON numbers and booleans, which DRF would turn into text."""
    if not isinstance(data, str):
        raise serializers.ValidationError(f"Must be a string, got {type(data).__name__}.")


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data):
        _reject_non_string(data)
        return super().to_internal_value(data)


class StrictSlugField(serializers.SlugField):
    def to_internal_value(self, data):
        _reject_non_string(data)
        return super().to_internal_value(data)


class StrictUUIDField(serializers.UUIDField):
    def to_internal_value(self, data):
        _reject_non_string(data)
        return super().to_internal_value(data)


@extend_schema_field(OpenApiTypes.DATE)
class StrictDateField(serializers.Field):
    """A calendar date written exactly as ``YYYY-MM-DD`` that exists."""

    default_error_messages = {"invalid": "Must be a date written as YYYY-MM-DD, got {value!r}."}

    def to_internal_value(self, data):
        if not isinstance(data, str) or not DATE_PATTERN.match(data):
            self.fail("invalid", value=data)
        try:
            return dt.date.fromisoformat(data)
        except ValueError:
            self.fail("invalid", value=data)

    def to_representation(self, value):
        return value.isoformat()


@extend_schema_field(OpenApiTypes.DATETIME)
class AwareDateTimeField(serializers.Field):
    """An ISO 8601 timestamp that carries its time zone offset (``Z`` or ``+02:00``)."""

    default_error_messages = {
        "invalid": "Must be an ISO 8601 timestamp such as 2026-03-01T12:00:00Z, got {value!r}.",
        "naive": "Must include a time zone offset such as Z or +02:00, got {value!r}.",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        try:
            value = dt.datetime.fromisoformat(data)
        except ValueError:
            self.fail("invalid", value=data)
        if value.tzinfo is None:
            self.fail("naive", value=data)
        return value

    def to_representation(self, value):
        return isoformat_z(value)


class CaseInsensitiveChoiceField(serializers.ChoiceField):
    """A choice accepted in any letter case and returned in its stored spelling."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            lookup = {str(choice).lower(): choice for choice in self.choices}
            match = lookup.get(data.strip().lower())
            if match is not None:
                return match
        accepted = ", ".join(str(choice) for choice in self.choices)
        raise serializers.ValidationError(f"Unknown value {data!r}; accepted values: {accepted}.")


class ReportRequestSerializer(StrictFieldsMixin, serializers.Serializer):
    entity_type = CaseInsensitiveChoiceField(choices=EntityType.values)
    entity_id = StrictUUIDField()
    regulation = CaseInsensitiveChoiceField(choices=Regulation.values)
    period_start = StrictDateField()
    period_end = StrictDateField()

    def validate(self, attrs):
        tenant = self.context["tenant"]
        try:
            validate_period(tenant, attrs["period_start"], attrs["period_end"])
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs


def finding_item(row):
    return {
        "finding_id": row["finding_id"],
        "severity": row["severity"],
        "title": row["title"],
        "description": row["description"],
        "control_id": row["control_id"],
        "status": row["status"],
        "evidence": row["evidence"],
        "remediation": row["remediation"],
    }


def check_items(checks):
    """Return the list items for ``checks``, loading all their findings in one query."""
    findings = defaultdict(list)
    rows = (
        Finding.objects.filter(compliance_check__in=[check.pk for check in checks])
        .order_by("control_id", "id")
        .values(
            "compliance_check_id",
            "finding_id",
            "severity",
            "title",
            "description",
            "control_id",
            "status",
            "evidence",
            "remediation",
        )
    )
    for row in rows:
        findings[row["compliance_check_id"]].append(finding_item(row))
    return [check_item(check, findings[check.pk]) for check in checks]


def check_item(check, findings):
    return {
        "check_id": str(check.pk),
        "agent_id": str(check.entity_id),
        "framework": Regulation(check.regulation).framework,
        "scope": check.scope,
        "status": check.status,
        "findings": findings,
        "created_at": isoformat_z(check.created_at),
    }


class ReportSummarySerializer(serializers.Serializer):
    """A report in the aggregated report list: everything but the per-control findings."""

    id = serializers.CharField(source="public_id")
    entity_type = serializers.CharField(source="entity.entity_type")
    entity_id = serializers.UUIDField()
    regulation = serializers.CharField()
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    status = serializers.CharField()
    summary = serializers.JSONField(allow_null=True)
    generated_at = serializers.DateTimeField(allow_null=True)
    digest = serializers.SerializerMethodField()

    def get_digest(self, report) -> str | None:
        return report.digest or None
