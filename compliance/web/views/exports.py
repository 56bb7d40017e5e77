"""Page downloads of a ready report's findings as CSV or XLSX."""

import logging

from django.http import HttpResponse
from django.views import View

from compliance.reports.downloads import record_report_download
from compliance.reports.exports import report_findings_response
from compliance.reports.models import Report, ReportStatus
from compliance.web.access import TenantRoleMixin, get_for_tenant

logger = logging.getLogger(__name__)


class ReportExportView(TenantRoleMixin, View):
    """Download the findings of a ready report as ``file_format``, ``csv`` or ``xlsx``."""

    file_format = None

    def get(self, request, report_id):
        reports = Report.objects.select_related("entity", "tenant")
        report = get_for_tenant(request, reports, pk=report_id)
        if report.status != ReportStatus.READY:
            return not_ready_response(report)

        record_report_download(request, report, self.file_format)
        return report_findings_response(report, self.file_format)


def not_ready_response(report):
    """Return a plain 409, because only the detail page links here and only for ready reports.

    The page's own ``not_ready.html`` speaks of the PDF, so it would mislead here.
    """
    logger.info("rejected export of report %s with status %s", report.public_id, report.status)
    message = (
        f"The report {report.public_id} is {report.status}. Findings can be exported "
        "only from a ready report.\n"
    )
    return HttpResponse(message, status=409, content_type="text/plain; charset=utf-8")
