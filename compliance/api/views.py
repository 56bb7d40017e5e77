"""The v1 compliance endpoints. Views orchestrate, and the rules live in the domain apps."""

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance.api import schema
from compliance.api.errors import Conflict
from compliance.api.filtering import StrictFilterBackend
from compliance.api.idempotency import idempotent
from compliance.api.pagination import StrictLimitOffsetPagination
from compliance.api.params import limit_offset, parse_uuid, validate_query
from compliance.api.permissions import READ_ROLES
from compliance.api.serializers import (
    ReportRequestSerializer,
    ReportSummarySerializer,
    check_items,
)
from compliance.checks.filters import CheckFilter
from compliance.checks.models import Check
from compliance.inventory.models import Entity
from compliance.reports.aggregation import isoformat_z
from compliance.reports.downloads import pdf_download, record_report_download
from compliance.reports.filters import ReportFilter
from compliance.reports.models import Report, ReportStatus, parse_report_public_id
from compliance.reports.pdf import ensure_pdf
from compliance.reports.services import report_body, request_report
from compliance.tenancy.models import Role


class ComplianceReportsView(APIView):
    """``GET``: the check list of the hosted API. ``POST``: generate a period report."""

    required_roles = {**READ_ROLES, "POST": Role.OFFICER}
    list_parameters = {"agent_id", "framework", "status", "limit", "offset"}

    @extend_schema(
        operation_id="list_compliance_reports",
        summary="List compliance check results",
        parameters=[
            OpenApiParameter("agent_id", OpenApiTypes.UUID, description="Any entity's UUID."),
            OpenApiParameter(
                "framework",
                OpenApiTypes.STR,
                enum=["soc2", "iso27001", "gdpr", "hipaa", "eu_ai_act"],
                description="Any letter case.",
            ),
            OpenApiParameter(
                "status",
                OpenApiTypes.STR,
                enum=["pending", "passed", "failed", "partial"],
                description="Any letter case.",
            ),
            *schema.PAGE_PARAMETERS,
        ],
        responses={200: schema.CheckListSerializer},
    )
    def get(self, request):
        params = request.query_params
        filterset = CheckFilter(params, queryset=Check.objects.for_tenant(request.tenant))
        validate_query(params, self.list_parameters, filterset)
        limit, offset = limit_offset(params)

        checks = filterset.qs
        total = checks.count()
        page = list(checks.order_by("-created_at", "-id")[offset : offset + limit])
        return Response({"items": check_items(page), "total": total})

    @extend_schema(
        operation_id="create_compliance_report",
        summary="Generate an aggregated report",
        parameters=[schema.IDEMPOTENCY_HEADER],
        request=ReportRequestSerializer,
        responses={
            201: OpenApiResponse(schema.ReportSerializer, description="Generated, status ready."),
            202: OpenApiResponse(
                schema.ReportSerializer, description="Queued, status generating; poll Location."
            ),
            409: OpenApiResponse(description="The same Idempotency-Key is still in progress."),
            413: OpenApiResponse(description="The body is larger than 1 MiB."),
            415: OpenApiResponse(description="The body is not application/json."),
            422: OpenApiResponse(description="The Idempotency-Key was used with another body."),
        },
    )
    def post(self, request):
        return idempotent("create_compliance_report", self.create_report, request)

    def create_report(self, request):
        serializer = ReportRequestSerializer(data=request.data, context={"tenant": request.tenant})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        entity = get_object_or_404(Entity.objects.for_tenant(request.tenant), pk=data["entity_id"])
        if entity.entity_type != data["entity_type"]:
            # The entity exists in this tenant, so naming its type reveals nothing new.
            raise ValidationError(
                {
                    "entity_type": [
                        f"Entity {entity.pk} is {_with_article(entity.entity_type)}, "
                        f"not {_with_article(data['entity_type'])}."
                    ]
                }
            )
        report = request_report(
            tenant=request.tenant,
            entity=entity,
            regulation=data["regulation"],
            period_start=data["period_start"],
            period_end=data["period_end"],
            user=request.user.user,
            api_key=request.auth,
        )

        location = reverse("api:report-detail", args=[report.public_id])
        code = status.HTTP_202_ACCEPTED if report.status == ReportStatus.GENERATING else 201
        return Response(report_body(report), status=code, headers={"Location": location})


class AggregatedReportListView(generics.ListAPIView):
    """Period reports of the tenant, newest first, without their per-control findings."""

    required_roles = READ_ROLES
    serializer_class = ReportSummarySerializer
    pagination_class = StrictLimitOffsetPagination
    filter_backends = [StrictFilterBackend]
    filterset_class = ReportFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Report.objects.none()
        reports = Report.objects.for_tenant(self.request.tenant).select_related("entity")
        return reports.order_by("-created_at", "-id")


def _with_article(entity_type):
    article = "an" if entity_type[0] in "aeiou" else "a"
    return f"{article} {entity_type}"


def tenant_report(request, report_id):
    """Return the tenant's report for a ``maip-report:<ULID>`` id, or raise 400/404."""
    report_uuid = parse_report_public_id(report_id)
    if report_uuid is None:
        raise ValidationError(
            {"id": [f"Must be a report id such as maip-report:<ULID>, got {report_id!r}."]}
        )
    reports = Report.objects.for_tenant(request.tenant).select_related("tenant", "entity")
    return get_object_or_404(reports, pk=report_uuid)


class ReportDetailView(APIView):
    required_roles = READ_ROLES

    @extend_schema(operation_id="get_compliance_report", responses={200: schema.ReportSerializer})
    def get(self, request, report_id):
        report = tenant_report(request, report_id)
        body = report_body(report)
        # A ready report's body is the whole report, so reading it is a download
        # like the PDF. Polls of a generating report are not recorded.
        if report.status == ReportStatus.READY:
            record_report_download(request, report, "json")
        return Response(body)


class ReportPdfView(APIView):
    required_roles = READ_ROLES

    @extend_schema(
        operation_id="get_compliance_report_pdf",
        responses={
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY),
            409: OpenApiResponse(description="The report is generating or failed."),
        },
    )
    def get(self, request, report_id):
        report = tenant_report(request, report_id)
        if report.status == ReportStatus.GENERATING:
            raise Conflict("The report is still generating. Poll it until its status is ready.")
        if report.status == ReportStatus.FAILED:
            raise Conflict(f"The report failed and has no PDF: {report.error}")

        return pdf_download(request, report)


class ReportVerificationView(APIView):
    """The stored digests of a report, for checking a downloaded JSON or PDF against them."""

    required_roles = READ_ROLES

    @extend_schema(
        operation_id="get_compliance_report_verification",
        responses={
            200: schema.VerificationSerializer,
            409: OpenApiResponse(description="The report is generating or failed."),
        },
    )
    def get(self, request, report_id):
        report = tenant_report(request, report_id)
        if report.status != ReportStatus.READY:
            raise Conflict(f"The report is {report.status} and has no digests to verify.")

        ensure_pdf(report, request)
        return Response(
            {
                "id": report.public_id,
                "status": report.status,
                "generated_at": isoformat_z(report.generated_at),
                "digest": report.digest,
                "digest_method": "SHA-256 of the report's canonical JSON: the body of "
                "GET /v1/compliance/reports/{id} without 'digest', keys sorted, no whitespace, "
                "UTF-8.",
                "pdf_sha256": report.pdf_sha256,
            }
        )


class CheckDetailView(APIView):
    required_roles = READ_ROLES

    @extend_schema(operation_id="get_compliance_check", responses={200: schema.CheckItemSerializer})
    def get(self, request, check_id):
        check_uuid = parse_uuid(check_id, "check_id")
        check = get_object_or_404(Check.objects.for_tenant(request.tenant), pk=check_uuid)
        return Response(check_items([check])[0])
