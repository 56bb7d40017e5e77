"""Ingestion of check results produced elsewhere: a JSON document or a scanner file.

Both paths end in ``save_import``, so a payload is stored whole or not at
all. The same payload sent twice for the same entity is stored once. A file
is identified by the SHA-256 of its bytes, a document by the SHA-256 of its
canonical JSON with its observation time.
"""

import datetime as dt
import hashlib

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import parsers, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance.api import schema
from compliance.api.errors import PayloadTooLarge
from compliance.api.idempotency import idempotent
from compliance.api.parsers import StrictJSONParser
from compliance.api.serializers import (
    AwareDateTimeField,
    CaseInsensitiveChoiceField,
    StrictCharField,
    StrictFieldsMixin,
    StrictSlugField,
    StrictUUIDField,
    check_items,
)
from compliance.catalog.canonical import canonical_control_id, canonical_form
from compliance.catalog.models import Control, Regulation, Severity
from compliance.checks.importers import (
    IMPORTERS,
    ImportFileError,
    import_results,
    record_import_events,
)
from compliance.checks.importers.base import ImportedFinding, ParsedImport, save_import
from compliance.checks.models import FindingStatus
from compliance.inventory.models import Entity
from compliance.lib.canonical_json import canonical_json
from compliance.reports.aggregation import isoformat_z
from compliance.tenancy.models import Role

NATIVE_FORMAT = "json"
# The response lists only the first skipped records, so that a file with many bad
# records still gets a response of bounded size. skipped_count is always the total.
MAX_SKIPPED_LISTED = 1000
# How far ahead of the server clock an observation time may be, for clock skew.
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)


class FindingInputSerializer(StrictFieldsMixin, serializers.Serializer):
    control_id = StrictCharField(max_length=64)
    status = CaseInsensitiveChoiceField(choices=FindingStatus.values)
    severity = CaseInsensitiveChoiceField(choices=Severity.values)
    title = StrictCharField(max_length=500)
    finding_id = StrictCharField(max_length=200, required=False)
    description = StrictCharField(required=False, allow_blank=True, default="")
    remediation = StrictCharField(required=False, allow_blank=True, default="")
    evidence = serializers.DictField(required=False, default=dict)


class ResultsInputSerializer(StrictFieldsMixin, serializers.Serializer):
    """A check computed elsewhere: one entity, one regulation, findings per control."""

    entity_id = StrictUUIDField()
    regulation = CaseInsensitiveChoiceField(choices=Regulation.values)
    source = StrictSlugField(
        max_length=64, help_text="The tool that produced the results, e.g. 'ci-pipeline'."
    )
    observed_at = AwareDateTimeField(
        required=False, help_text="When the results were observed, with a time zone offset."
    )
    scope = serializers.DictField(required=False, default=dict)
    findings = FindingInputSerializer(many=True, allow_empty=False, max_length=10_000)

    def validate_observed_at(self, value):
        if value > timezone.now() + MAX_CLOCK_SKEW:
            raise serializers.ValidationError("Must not be in the future.")
        return value

    def validate(self, attrs):
        own_ids = own_control_ids(self.context["tenant"], attrs["regulation"])
        errors = {}
        for index, finding in enumerate(attrs["findings"]):
            try:
                finding["control_id"] = known_control_id(
                    attrs["regulation"], finding["control_id"], own_ids
                )
            except ValueError as exc:
                errors[f"findings[{index}].control_id"] = [str(exc)]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def own_control_ids(tenant, regulation):
    """Return the IDs of the tenant's own controls of ``regulation``, in one query."""
    return frozenset(
        Control.objects.filter(tenant=tenant, regulation=regulation).values_list(
            "control_id", flat=True
        )
    )


def known_control_id(regulation, raw, own_ids):
    """Return the canonical spelling of a shipped control or of one in ``own_ids``.

    Raises ``ValueError`` naming the ID when it is malformed or names no such control.
    """
    try:
        return canonical_control_id(regulation, raw)
    except ValueError as shipped_error:
        canonical = canonical_form(regulation, raw)
        if canonical in own_ids:
            return canonical
        raise ValueError(f"{shipped_error} It is not one of your own controls either.") from None


class UploadInputSerializer(StrictFieldsMixin, serializers.Serializer):
    entity_id = serializers.UUIDField()
    file = serializers.FileField(help_text="Scanner output: Prowler, garak or OSCAL.")
    format = serializers.ChoiceField(
        choices=list(IMPORTERS), required=False, help_text="Detected when left out."
    )
    skip_invalid = serializers.BooleanField(
        required=False,
        default=False,
        help_text="When true, import the valid records and list the malformed ones in "
        "skipped_records. When false (the default), one malformed record rejects the file.",
    )


class SkippedRecordSerializer(serializers.Serializer):
    position = serializers.IntegerField(
        help_text="Position of the record in the file, from 1, in the unit that record names."
    )
    record = serializers.CharField(help_text="The record as the error messages name it.")
    reason = serializers.CharField()
    kind = serializers.ChoiceField(
        choices=["invalid", "unsupported"],
        help_text="invalid: malformed, left out only with skip_invalid. unsupported: "
        "well formed but for no regulation the product carries, always left out.",
    )


class ImportOutcomeSerializer(serializers.Serializer):
    format = serializers.CharField()
    source_digest = serializers.CharField(help_text="SHA-256 of the payload.")
    already_imported = serializers.BooleanField()
    record_count = serializers.IntegerField()
    unmapped_count = serializers.IntegerField()
    unmapped_reasons = serializers.ListField(
        child=serializers.CharField(),
        help_text="Why the first unmapped records match no control, where the format tells.",
    )
    skipped_count = serializers.IntegerField(help_text="Records left out of the import.")
    skipped_records = SkippedRecordSerializer(
        many=True, help_text=f"The first {MAX_SKIPPED_LISTED} records left out, in file order."
    )
    checks = schema.CheckItemSerializer(many=True)


def _parsed_document(data):
    observed_at = data["observed_at"]
    findings = [
        ImportedFinding(
            regulation=Regulation(data["regulation"]),
            control_id=finding["control_id"],
            finding_id=finding.get("finding_id") or f"{data['source']}:{finding['control_id']}",
            status=FindingStatus(finding["status"]),
            severity=Severity(finding["severity"]),
            title=finding["title"],
            description=finding["description"],
            remediation=finding["remediation"],
            evidence=finding["evidence"],
        )
        for finding in data["findings"]
    ]
    return ParsedImport(
        source_name=data["source"],
        format=NATIVE_FORMAT,
        started_at=observed_at,
        finished_at=observed_at,
        findings=findings,
        record_count=len(findings),
        unmapped_count=0,
        scope=data["scope"],
    )


def _outcome(result):
    created = status.HTTP_200_OK if result.already_imported else status.HTTP_201_CREATED
    body = {
        "format": result.format,
        "source_digest": result.source_digest,
        "already_imported": result.already_imported,
        "record_count": result.record_count,
        "unmapped_count": result.unmapped_count,
        "unmapped_reasons": result.unmapped_reasons,
        "skipped_count": result.skipped_count,
        "skipped_records": [skipped.as_dict() for skipped in result.skipped[:MAX_SKIPPED_LISTED]],
        "checks": check_items(result.checks),
    }
    return Response(body, status=created)


class ResultsIngestionView(APIView):
    """``POST /v1/compliance/results``: store results as checks, atomically and once."""

    required_roles = {"POST": Role.OFFICER}
    parser_classes = [StrictJSONParser, parsers.MultiPartParser]

    @extend_schema(
        operation_id="ingest_compliance_results",
        summary="Ingest results produced elsewhere",
        description="Send a JSON document (one check) or a multipart upload of a scanner "
        "file. The same payload for the same entity is stored once: a repeat answers 200 "
        "with `already_imported` true. A payload with one bad record stores nothing, and "
        "the error names the record. An upload with the form field `skip_invalid=true` "
        "stores the valid records instead and lists the others in `skipped_records`.",
        parameters=[schema.IDEMPOTENCY_HEADER],
        request={
            "application/json": ResultsInputSerializer,
            "multipart/form-data": UploadInputSerializer,
        },
        responses={
            201: ImportOutcomeSerializer,
            200: OpenApiResponse(ImportOutcomeSerializer, description="Already stored."),
            409: OpenApiResponse(description="The same Idempotency-Key is still in progress."),
            413: OpenApiResponse(description="The body or file is too large."),
            415: OpenApiResponse(description="Neither JSON nor multipart/form-data."),
            422: OpenApiResponse(description="The Idempotency-Key was used with another body."),
        },
    )
    def post(self, request):
        return idempotent("ingest_compliance_results", self.ingest, request)

    def ingest(self, request):
        if request.content_type.startswith("multipart/form-data"):
            return self.ingest_file(request)
        return self.ingest_document(request)

    def ingest_document(self, request):
        serializer = ResultsInputSerializer(data=request.data, context={"tenant": request.tenant})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        entity = self._entity(request, data["entity_id"])
        # A document without observed_at is observed now, so each such call is new;
        # clients retry those safely with an Idempotency-Key.
        data["observed_at"] = data.get("observed_at") or timezone.now()
        stamped = {**request.data, "observed_at": isoformat_z(data["observed_at"])}
        digest = hashlib.sha256(canonical_json(stamped)).hexdigest()
        result = save_import(request.tenant, entity, _parsed_document(data), digest)
        record_import_events(request, entity, result)
        return _outcome(result)

    def ingest_file(self, request):
        serializer = UploadInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        upload = data["file"]
        if upload.size > settings.API_MAX_UPLOAD_BYTES:
            raise PayloadTooLarge(
                f"The file is {upload.size} bytes; the limit is {settings.API_MAX_UPLOAD_BYTES}."
            )
        entity = self._entity(request, data["entity_id"])
        try:
            result = import_results(
                request.tenant,
                entity,
                upload.read(),
                format=data.get("format"),
                skip_invalid=data["skip_invalid"],
            )
        except ImportFileError as exc:
            raise serializers.ValidationError({"file": [str(exc)]}) from None
        record_import_events(request, entity, result)
        return _outcome(result)

    def _entity(self, request, entity_id):
        return get_object_or_404(Entity.objects.for_tenant(request.tenant), pk=entity_id)
