"""Report pages: the list, the detail, the request form and the PDF download."""

import logging

from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views import View

from compliance.reports.downloads import pdf_download
from compliance.reports.models import Report, ReportStatus
from compliance.reports.services import request_report
from compliance.tenancy.models import Role
from compliance.web.access import TenantRoleMixin, get_for_tenant
from compliance.web.forms import ReportFilterForm, ReportRequestForm
from compliance.web.htmx import render_page_or_partial
from compliance.web.report_display import ready_report_context

logger = logging.getLogger(__name__)

REPORTS_PER_PAGE = 25


class ReportListView(TenantRoleMixin, View):
    """The tenant's reports, newest first, filtered by the GET form and paginated."""

    def get(self, request):
        form = ReportFilterForm(request.GET or None, tenant=request.tenant)
        reports = Report.objects.for_tenant(request.tenant).select_related("entity")
        reports = form.filter(reports.defer("findings")).order_by("-created_at", "-id")
        page = Paginator(reports, REPORTS_PER_PAGE).get_page(request.GET.get("page"))
        context = {"filter_form": form, "page": page, "is_filtered": form.is_filtered()}
        return render_page_or_partial(request, "web/reports/list.html", "listing", context)


class ReportDetailView(TenantRoleMixin, View):
    def get(self, request, report_id):
        report = get_for_tenant(request, Report.objects.select_related("entity"), pk=report_id)

        context = {"report": report}
        if report.status == ReportStatus.READY:
            context.update(ready_report_context(report))
        return render_page_or_partial(request, "web/reports/detail.html", "report-content", context)


class ReportCreateView(TenantRoleMixin, View):
    """Request a report through ``request_report``, which generates short periods at once."""

    required_role = Role.OFFICER

    def get(self, request):
        return self.render_form(request, self.make_form(request))

    def post(self, request):
        form = self.make_form(request, data=request.POST)
        if not form.is_valid():
            return self.render_form(request, form)

        data = form.cleaned_data
        report = request_report(
            tenant=request.tenant,
            entity=data["entity"],
            regulation=data["regulation"],
            period_start=data["period_start"],
            period_end=data["period_end"],
            user=request.user,
        )
        return redirect("web:report-detail", report_id=report.pk)

    def make_form(self, request, data=None):
        return ReportRequestForm(data, tenant=request.tenant, today=request.tenant.today())

    def render_form(self, request, form):
        has_entities = form.fields["entity"].queryset.exists()
        context = {"form": form, "has_entities": has_entities}
        return render(request, "web/reports/new.html", context)


class ReportPdfView(TenantRoleMixin, View):
    """Download a ready report's PDF, rendered once and then served from storage."""

    def get(self, request, report_id):
        reports = Report.objects.select_related("entity", "tenant")
        report = get_for_tenant(request, reports, pk=report_id)
        if report.status != ReportStatus.READY:
            return render(request, "web/reports/not_ready.html", {"report": report}, status=409)

        return pdf_download(request, report)
