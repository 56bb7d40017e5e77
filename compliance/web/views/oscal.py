"""Page downloads of a check or a ready report as NIST OSCAL assessment results."""

from django.views import View

from compliance.checks.models import Check
from compliance.reports import oscal
from compliance.reports.models import Report, ReportStatus
from compliance.web.access import TenantRoleMixin, get_for_tenant
from compliance.web.views.exports import not_ready_response


class CheckOscalView(TenantRoleMixin, View):
    def get(self, request, check_id):
        check = get_for_tenant(request, Check.objects.select_related("entity"), pk=check_id)
        return oscal.check_download(request, check)


class ReportOscalView(TenantRoleMixin, View):
    def get(self, request, report_id):
        reports = Report.objects.select_related("entity", "tenant")
        report = get_for_tenant(request, reports, pk=report_id)
        if report.status != ReportStatus.READY:
            return not_ready_response(report)

        return oscal.report_download(request, report)
