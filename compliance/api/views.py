"""The v1 compliance endpoints. Views orchestrate, and the rules live in the domain apps."""

import uuid

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance.api.errors import Conflict
from compliance.api.params import (
    apply_filterset,
    limit_offset,
    reject_unknown_and_repeated,
)
from compliance.api.serializers import ReportRequestSerializer, check_items, report_body
from compliance.checks.filters import CheckFilter
from compliance.checks.models import Check
from compliance.inventory.models import Entity
from compliance.reports.models import Report, ReportStatus, parse_report_public_id
from compliance.reports.pdf import ensure_pdf
from compliance.reports.services import request_report
from compliance.tenancy.models import Role

READ = {"GET": Role.AUDITOR, "HEAD": Role.AUDITOR, "OPTIONS": Role.AUDITOR}


class ComplianceReportsView(APIView):
    """``GET``: the check list of the hosted API. ``POST``: generate a period report."""

    required_roles = {**READ, "POST": Role.OFFICER}
    list_parameters = {"agent_id", "framework", "status", "limit", "offset"}

    def get(self, request):
        params = request.query_params
        reject_unknown_and_repeated(params, self.list_parameters)
        limit, offset = limit_offset(params)

        checks = apply_filterset(CheckFilter, params, Check.objects.for_tenant(request.tenant))
        total = checks.count()
        page = list(checks.order_by("-created_at", "-id")[offset : offset + limit])
        return Response({"items": check_items(page), "total": total})

    def post(self, request):
        serializer = ReportRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        entity = get_object_or_404(
            Entity.objects.for_tenant(request.tenant),
            pk=data["entity_id"],
            entity_type=data["entity_type"],
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
    required_roles = READ

    def get(self, request, report_id):
        return Response(report_body(tenant_report(request, report_id)))


class ReportPdfView(APIView):
    required_roles = READ

    def get(self, request, report_id):
        report = tenant_report(request, report_id)
        if report.status == ReportStatus.GENERATING:
            raise Conflict("The report is still generating. Poll it until its status is ready.")
        if report.status == ReportStatus.FAILED:
            raise Conflict(f"The report failed and has no PDF: {report.error}")

        ensure_pdf(report)
        filename = report.public_id.replace(":", "-") + ".pdf"
        response = FileResponse(
            report.pdf.open("rb"),
            content_type="application/pdf",
            as_attachment=True,
            filename=filename,
        )
        response["X-Content-SHA256"] = report.pdf_sha256
        response["ETag"] = f'"{report.pdf_sha256}"'
        return response


class CheckDetailView(APIView):
    required_roles = READ

    def get(self, request, check_id):
        try:
            check_uuid = uuid.UUID(check_id)
        except ValueError:
            raise ValidationError({"check_id": [f"Must be a UUID, got {check_id!r}."]}) from None
        check = get_object_or_404(Check.objects.for_tenant(request.tenant), pk=check_uuid)
        return Response(check_items([check])[0])
