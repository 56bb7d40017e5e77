"""CSV and XLSX downloads of a report's findings and of the filtered check list."""

import logging

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.views import APIView

from compliance.api.errors import Conflict
from compliance.api.params import validate_query
from compliance.api.permissions import READ_ROLES
from compliance.api.views import tenant_report
from compliance.audit.models import AuditAction
from compliance.audit.services import record_request_event
from compliance.checks import exports as check_exports
from compliance.checks.filters import CheckFilter
from compliance.checks.models import Check
from compliance.reports.downloads import record_report_download
from compliance.reports.exports import report_findings_response
from compliance.reports.models import ReportStatus

logger = logging.getLogger(__name__)

MEDIA_TYPES = {"csv": "text/csv", "xlsx": check_exports.XLSX_CONTENT_TYPE}
CHECK_LIST_PARAMETERS = {"agent_id", "framework", "status"}

FORMULA_NOTE = (
    "Text cells that start with =, +, -, @, a tab or a carriage return get a leading ' so "
    "that spreadsheet programs do not evaluate them; numbers stay numbers."
)
CSV_NOTE = "The CSV is UTF-8 with a byte order mark and CRLF line ends."
REPORT_EXPORT_DESCRIPTION = (
    "One row per control of the report's findings, rendered from the stored report, so the "
    "numbers match the JSON, the page and the PDF. The XLSX file has a Summary sheet first "
    "with the report's facts and summary numbers. The X-Report-Digest header carries the "
    f"report's digest. 409 while the report is generating or after it failed. {FORMULA_NOTE}"
)
CHECK_EXPORT_DESCRIPTION = (
    "The checks that GET /v1/compliance/reports lists for the same filters, one row per "
    "finding (a check without findings gives one row with empty finding columns), newest "
    f"check first. At most {check_exports.EXPORT_MAX_ROWS:,} rows: a larger export is a 400 "
    "asking to narrow the filters. limit and offset are not accepted, because the export has "
    f"no pages. {FORMULA_NOTE}"
)
CHECK_FILTER_PARAMETERS = [
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
]


def file_response_schema(file_format, description):
    """Return the OpenAPI 200 response of a download in ``file_format``."""
    media_type = MEDIA_TYPES[file_format]
    return {(200, media_type): OpenApiResponse(OpenApiTypes.BINARY, description=description)}


class ReportFindingsExportView(APIView):
    """A ready report's findings as a file, in the format that each subclass sets."""

    required_roles = READ_ROLES
    file_format = None

    def get(self, request, report_id):
        report = tenant_report(request, report_id)
        if report.status == ReportStatus.GENERATING:
            raise Conflict("The report is still generating. Poll it until its status is ready.")
        if report.status == ReportStatus.FAILED:
            raise Conflict(f"The report failed and has no findings to export: {report.error}")

        record_report_download(request, report, self.file_format)
        return report_findings_response(report, self.file_format)


class ReportFindingsCsvView(ReportFindingsExportView):
    file_format = "csv"

    @extend_schema(
        operation_id="export_compliance_report_findings_csv",
        summary="Export a report's findings as CSV",
        description=f"{REPORT_EXPORT_DESCRIPTION} {CSV_NOTE}",
        responses={
            **file_response_schema("csv", "The findings, one row per control."),
            409: OpenApiResponse(description="The report is generating or failed."),
        },
    )
    def get(self, request, report_id):
        return super().get(request, report_id)


class ReportFindingsXlsxView(ReportFindingsExportView):
    file_format = "xlsx"

    @extend_schema(
        operation_id="export_compliance_report_findings_xlsx",
        summary="Export a report's summary and findings as XLSX",
        description=REPORT_EXPORT_DESCRIPTION,
        responses={
            **file_response_schema("xlsx", "A Summary sheet, then the findings."),
            409: OpenApiResponse(description="The report is generating or failed."),
        },
    )
    def get(self, request, report_id):
        return super().get(request, report_id)


class CheckListExportView(APIView):
    """The filtered check list as a file with one row per finding, in the subclass's format."""

    required_roles = READ_ROLES
    file_format = None

    def get(self, request):
        params = request.query_params
        filterset = CheckFilter(params, queryset=Check.objects.for_tenant(request.tenant))
        validate_query(params, CHECK_LIST_PARAMETERS, filterset)

        checks = filterset.qs
        limit = check_exports.EXPORT_MAX_ROWS
        if check_exports.count_check_list_rows(checks, limit) > limit:
            logger.info("rejected a check list export of more than %d rows", limit)
            raise ValidationError(
                f"The export has more than {limit:,} rows, the maximum. Narrow the filters "
                "(agent_id, framework, status) and request each part separately."
            )
        record_request_event(
            request,
            AuditAction.EXPORT_DOWNLOADED,
            target_type="checks.check",
            details={"format": self.file_format, "filters": params.dict()},
        )
        return check_exports.check_list_response(checks, self.file_format, limit)


class CheckListCsvView(CheckListExportView):
    file_format = "csv"

    @extend_schema(
        operation_id="export_compliance_checks_csv",
        summary="Export the filtered check list as CSV",
        description=f"{CHECK_EXPORT_DESCRIPTION} {CSV_NOTE} The CSV is streamed.",
        parameters=CHECK_FILTER_PARAMETERS,
        responses=file_response_schema("csv", "One row per finding."),
    )
    def get(self, request):
        return super().get(request)


class CheckListXlsxView(CheckListExportView):
    file_format = "xlsx"

    @extend_schema(
        operation_id="export_compliance_checks_xlsx",
        summary="Export the filtered check list as XLSX",
        description=CHECK_EXPORT_DESCRIPTION,
        parameters=CHECK_FILTER_PARAMETERS,
        responses=file_response_schema("xlsx", "One row per finding."),
    )
    def get(self, request):
        return super().get(request)
