"""OpenAPI description of the v1 API: response shapes, the error envelope, and its hook.

The serializers here only describe JSON that the views build by hand on the
fast paths; requests are validated by the serializers in ``serializers.py``.
"""

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from compliance.api.params import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET
from compliance.catalog.models import Severity
from compliance.checks.models import CheckStatus, FindingStatus
from compliance.reports.models import ReportStatus

ERROR_STATUSES = {
    "400": "Invalid input; `details` names every offending field.",
    "401": "Missing, invalid, expired or revoked credential.",
    "403": "Authenticated, but the role or tenant does not allow this.",
    "404": "Not found, or it belongs to another tenant.",
    "429": "Rate limited; retry after `Retry-After` seconds.",
    "500": "The server failed; the request can be retried.",
}


class AutoSchema(openapi.AutoSchema):
    """The project's schema class, named so that views rely on one import."""


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "compliance.keys.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-API-Key"}


IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Repeat a request safely: the same key and body return the first response.",
)


class BearerScheme(OpenApiAuthenticationExtension):
    target_class = "compliance.keys.jwt.JwtAuthentication"
    name = "Bearer"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


PAGE_PARAMETERS = [
    OpenApiParameter(
        "limit",
        OpenApiTypes.INT,
        description=f"Page size, 1..{MAX_LIMIT} (default {DEFAULT_LIMIT}). Other values are a 400.",
    ),
    OpenApiParameter(
        "offset",
        OpenApiTypes.INT,
        description=f"Items to skip, 0..{MAX_OFFSET}. Past the end gives no items and the total.",
    ),
]


class FindingItemSerializer(serializers.Serializer):
    finding_id = serializers.CharField()
    severity = serializers.ChoiceField(choices=Severity.choices)
    title = serializers.CharField(allow_blank=True)
    description = serializers.CharField(allow_blank=True)
    control_id = serializers.CharField()
    status = serializers.ChoiceField(choices=FindingStatus.choices)
    evidence = serializers.DictField()
    remediation = serializers.CharField(allow_blank=True)


class CheckItemSerializer(serializers.Serializer):
    check_id = serializers.UUIDField()
    agent_id = serializers.UUIDField(help_text="The entity's UUID, whatever its type.")
    framework = serializers.CharField(
        help_text="Lower case: soc2, iso27001, gdpr, hipaa, eu_ai_act."
    )
    scope = serializers.DictField()
    status = serializers.ChoiceField(choices=CheckStatus.choices)
    findings = FindingItemSerializer(many=True)
    created_at = serializers.DateTimeField()


class CheckListSerializer(serializers.Serializer):
    items = CheckItemSerializer(many=True)
    total = serializers.IntegerField(min_value=0)


class ReportFindingSerializer(serializers.Serializer):
    control_id = serializers.CharField()
    control_title = serializers.CharField(allow_blank=True)
    status = serializers.ChoiceField(choices=FindingStatus.choices)
    severity = serializers.ChoiceField(choices=Severity.choices)
    finding_id = serializers.CharField()
    title = serializers.CharField(allow_blank=True)
    description = serializers.CharField(allow_blank=True)
    remediation = serializers.CharField(allow_blank=True)
    check_id = serializers.UUIDField()
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()
    observations = serializers.IntegerField(min_value=1)
    # Reports generated before time to remediate existed lack the four fields below.
    remediation_state = serializers.ChoiceField(
        choices=["remediated", "still_failing", "not_remediated", "no_failure"],
        required=False,
        help_text="not_remediated: failed, then only not assessed or not applicable.",
    )
    failing_since = serializers.DateTimeField(
        allow_null=True,
        required=False,
        help_text="First failing finding of the control's last failing run in the period.",
    )
    remediated_at = serializers.DateTimeField(
        allow_null=True,
        required=False,
        help_text="First passing finding after the last failing one, or null.",
    )
    time_to_remediate_seconds = serializers.IntegerField(
        allow_null=True,
        required=False,
        min_value=0,
        help_text="From failing_since to remediated_at in whole seconds, or null.",
    )


class ReportSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="maip-report:<ULID>")
    entity_type = serializers.CharField()
    entity_id = serializers.UUIDField()
    regulation = serializers.CharField()
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    status = serializers.ChoiceField(choices=ReportStatus.choices)
    summary = serializers.DictField(
        allow_null=True,
        help_text="Checks by status, controls assessed/passing/failing/not assessed, "
        "compliance_score (null when nothing was assessed), open findings by severity, "
        "trend, previous_period and remediation (controls remediated and still failing, "
        "median time to remediate in seconds). Null until the report is ready.",
    )
    findings = ReportFindingSerializer(many=True, allow_null=True)
    generated_at = serializers.DateTimeField(allow_null=True)
    digest = serializers.CharField(allow_null=True, help_text="sha256:<hex> of the canonical JSON.")
    error = serializers.CharField(required=False, help_text="Why generation failed.")


def add_error_responses(result, generator, request, public):
    """Add the error envelope as a component and as every operation's 4xx/5xx responses."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = {
        "type": "object",
        "required": ["code", "message", "details"],
        "properties": {
            "code": {"type": "string"},
            "message": {"type": "string"},
            "details": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
            },
        },
    }
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_STATUSES.items():
                responses.setdefault(status, {"description": description, "content": error})
    return result


class VerificationSerializer(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.ChoiceField(choices=ReportStatus.choices)
    generated_at = serializers.DateTimeField()
    digest = serializers.CharField(help_text="sha256:<hex> of the report's canonical JSON.")
    digest_method = serializers.CharField()
    pdf_sha256 = serializers.CharField(help_text="Hex SHA-256 of the PDF the system issued.")
