"""NIST OSCAL assessment results downloads of a check and of a ready report."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.views import APIView

from compliance.api.errors import Conflict
from compliance.api.params import parse_uuid
from compliance.api.permissions import READ_ROLES
from compliance.api.views import tenant_report
from compliance.checks.models import Check
from compliance.reports import oscal
from compliance.reports.models import ReportStatus

OSCAL_NOTE = (
    f"An OSCAL {oscal.OSCAL_VERSION} assessment-results document in JSON. A passing control "
    "is a finding with state satisfied and a failing one not-satisfied; a control that is not "
    "assessed or not applicable has an observation and no finding. Each finding's target "
    "carries the exact regulation and control ID as properties in the namespace "
    f"{oscal.OSCAL_NAMESPACE}. UUIDs and times come from the stored data, so downloading the "
    "same check or report again gives the same file."
)


def oscal_response_schema(description):
    """Return the OpenAPI 200 response of an OSCAL JSON download."""
    return {(200, oscal.MEDIA_TYPE): OpenApiResponse(OpenApiTypes.OBJECT, description=description)}


class CheckOscalView(APIView):
    required_roles = READ_ROLES

    @extend_schema(
        operation_id="export_compliance_check_oscal",
        summary="Export a check as OSCAL assessment results",
        description=f"One result for the check, one observation per finding. {OSCAL_NOTE}",
        responses=oscal_response_schema("The check as OSCAL assessment results."),
    )
    def get(self, request, check_id):
        check_uuid = parse_uuid(check_id, "check_id")
        checks = Check.objects.for_tenant(request.tenant).select_related("entity")
        check = get_object_or_404(checks, pk=check_uuid)

        return oscal.check_download(request, check)


class ReportOscalView(APIView):
    required_roles = READ_ROLES

    @extend_schema(
        operation_id="export_compliance_report_oscal",
        summary="Export a report as OSCAL assessment results",
        description=(
            "One result for the report's period, one observation per control in the report's "
            "findings, rendered from the stored report, so it matches the JSON, the page and "
            f"the PDF. 409 while the report is generating or after it failed. {OSCAL_NOTE}"
        ),
        responses={
            **oscal_response_schema("The report as OSCAL assessment results."),
            409: OpenApiResponse(description="The report is generating or failed."),
        },
    )
    def get(self, request, report_id):
        report = tenant_report(request, report_id)
        if report.status == ReportStatus.GENERATING:
            raise Conflict("The report is still generating. Poll it until its status is ready.")
        if report.status == ReportStatus.FAILED:
            raise Conflict(f"The report failed and has no results to export: {report.error}")

        return oscal.report_download(request, report)
