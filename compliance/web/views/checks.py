"""Check pages: the filtered list and one check with its findings and evidence."""

import json
import logging

from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.shortcuts import render
from django.views import View

from compliance.catalog.models import Control
from compliance.checks.models import Check, FindingStatus
from compliance.reports.aggregation import SEVERITY_ORDER, STATUS_PRECEDENCE
from compliance.web.access import TenantRoleMixin, get_for_tenant
from compliance.web.filters import CheckPageFilter
from compliance.web.htmx import render_page_or_partial
from compliance.web.listing import Sorting

logger = logging.getLogger(__name__)

CHECKS_PER_PAGE = 25
CHECK_SORTING = Sorting(
    {
        "created": ("Checked", ("created_at", "id")),
        "entity": ("Entity", ("entity__name", "created_at", "id")),
        "regulation": ("Regulation", ("regulation", "created_at", "id")),
        "status": ("Status", ("status", "created_at", "id")),
    },
    default="-created",
)


def pretty_json(value):
    """Return ``value`` as indented JSON with sorted keys, or ``""`` when it is empty."""
    if value in (None, {}, []):
        return ""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def finding_rows(check):
    """Return the check's findings with control titles and evidence, failing ones first.

    Two queries: the findings and the catalog titles of their controls.
    """
    findings = list(check.findings.all())
    control_ids = {finding.control_id for finding in findings}
    titles = dict(
        Control.objects.visible_to(check.tenant_id)
        .filter(regulation=check.regulation, control_id__in=control_ids)
        .values_list("control_id", "title")
    )
    status_rank = {status.value: index for index, status in enumerate(STATUS_PRECEDENCE)}
    severity_rank = {severity.value: index for index, severity in enumerate(SEVERITY_ORDER)}
    findings.sort(
        key=lambda finding: (
            status_rank.get(finding.status, len(status_rank)),
            severity_rank.get(finding.severity, len(severity_rank)),
            finding.control_id,
        )
    )
    return [
        {
            "finding": finding,
            "control_title": titles.get(finding.control_id, ""),
            "evidence": pretty_json(finding.evidence),
        }
        for finding in findings
    ]


def status_counts(rows):
    """Return ``(status, count)`` of the findings, in the order of ``FindingStatus``."""
    counts = {status.value: 0 for status in FindingStatus}
    for row in rows:
        counts[row["finding"].status] = counts.get(row["finding"].status, 0) + 1
    return [(status, count) for status, count in counts.items() if count]


def page_checks(check_ids):
    """Return the checks of ``check_ids`` in that order, with entities and failing counts.

    One query for the page's checks. Counting in the list query instead would
    group every matching check with its findings before the page is cut, which
    takes seconds at a million checks.
    """
    checks = (
        Check.objects.filter(pk__in=check_ids)
        .select_related("entity")
        .annotate(failing=Count("findings", filter=Q(findings__status=FindingStatus.FAIL)))
    )
    by_id = {check.pk: check for check in checks}
    return [by_id[check_id] for check_id in check_ids]


class CheckListView(TenantRoleMixin, View):
    """List the tenant's checks with the API's filters plus dates, severity and search.

    Filters, sort and page stay in the URL. An invalid filter lists nothing
    and shows its error, never the unfiltered list.
    """

    def get(self, request):
        checks = Check.objects.for_tenant(request.tenant)
        filterset = CheckPageFilter(request.GET or None, queryset=checks, tenant=request.tenant)
        invalid = filterset.is_bound and not filterset.is_valid()
        checks = checks.none() if invalid else filterset.qs

        sort = request.GET.get("sort")
        # Paginate the ids alone, so a deep page skips index entries instead of joined rows.
        check_ids = checks.order_by(*CHECK_SORTING.order_by(sort)).values_list("pk", flat=True)
        page = Paginator(check_ids, CHECKS_PER_PAGE).get_page(request.GET.get("page"))
        page.object_list = page_checks(list(page.object_list))

        context = {
            "filter_form": filterset.form,
            "page": page,
            "is_filtered": filterset.is_filtered(),
            "sort": CHECK_SORTING.value(sort),
            "sort_headers": CHECK_SORTING.headers(sort),
            "sort_description": CHECK_SORTING.describe(sort),
        }
        return render_page_or_partial(request, "web/checks/list.html", "listing", context)


class CheckDetailView(TenantRoleMixin, View):
    """Show one check: its source, versions, scope, and every finding with its evidence."""

    def get(self, request, check_id):
        check = get_for_tenant(request, Check.objects.select_related("entity"), pk=check_id)
        rows = finding_rows(check)
        context = {
            "check": check,
            "rows": rows,
            "status_counts": status_counts(rows),
            "scope": pretty_json(check.scope),
        }
        return render(request, "web/checks/detail.html", context)
