"""Page downloads of a check or a ready report as NIST OSCAL assessment results."""

from django.views import View

from compliance.audit.models import AuditAction
from compliance.audit.services import record_request_event
from compliance.checks.models import Check
from compliance.reports import oscal
from compliance.reports.models import Report, ReportStatus
from compliance.web.access import TenantRoleMixin, get_for_tenant
from compliance.web.views.exports import not_ready_response

FILE_FORMAT = "oscal-json"


class CheckOscalView(TenantRoleMixin, View):
    def get(self, request, check_id):
        check = get_for_tenant(request, Check.objects.select_related("entity"), pk=check_id)
        record_request_event(
            request,
            AuditAction.EXPORT_DOWNLOADED,
            target=check,
            details={"check_id": str(check.pk), "format": FILE_FORMAT},
        )
        document = oscal.check_assessment_results(check)
        return oscal.oscal_response(document, f"check-{check.pk}.oscal.json")


class ReportOscalView(TenantRoleMixin, View):
    def get(self, request, report_id):
        reports = Report.objects.select_related("entity", "tenant")
        report = get_for_tenant(request, reports, pk=report_id)
        if report.status != ReportStatus.READY:
            return not_ready_response(report)

        record_request_event(
            request,
            AuditAction.EXPORT_DOWNLOADED,
            target=report,
            details={
                "report_id": report.public_id,
                "format": FILE_FORMAT,
                "digest": report.digest,
            },
        )
        document = oscal.report_assessment_results(report)
        filename = f"report-{report.public_id.replace(':', '-')}.oscal.json"
        return oscal.oscal_response(document, filename)
