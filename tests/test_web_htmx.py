"""Partial page updates: htmx requests get one partial of the page's template.

The list pages swap their filters and results, and a generating report's
detail page polls its content. Query counts of the fragments are pinned.
"""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from compliance.reports.models import Report, ReportStatus
from compliance.reports.services import request_report
from compliance.tenancy.models import Role
from tests.conftest import make_check

HTMX = {"HTTP_HX_REQUEST": "true"}
CHECKS_URL = reverse("web:check-list")
REPORTS_URL = reverse("web:report-list")


def make_report(entity, status):
    end = dt.date(2026, 3, 31)
    return Report.objects.create(
        tenant=entity.tenant,
        entity=entity,
        regulation="SOC2",
        period_start=end - dt.timedelta(days=6),
        period_end=end,
        status=status,
    )


def assert_fragment(response, element_id):
    """Assert that the body is the partial alone, starting with its element, and return it."""
    html = response.content.decode()
    assert response.status_code == 200, html[:500]
    assert "<html" not in html
    assert "site-header" not in html
    assert re.match(rf'\s*(<!--.*?-->\s*)?<div id="{element_id}"', html, re.S), html[:300]
    return html


@pytest.fixture
def many_checks(entity):
    now = timezone.now()
    return [
        make_check(entity, "SOC2", now - dt.timedelta(hours=index), [("CC6.1", "fail", "high")])
        for index in range(30)
    ]


def test_check_list_fragment_for_htmx(client, login_as, many_checks):
    login_as(Role.AUDITOR)

    response = client.get(CHECKS_URL, {"page": "2"}, **HTMX)

    html = assert_fragment(response, "check-listing")
    assert "Page 2 of 2" in html
    assert 'hx-boost="true"' in html
    assert "HX-Request" in response["Vary"]


def test_check_list_full_page_without_htmx(client, login_as, many_checks):
    login_as(Role.AUDITOR)

    response = client.get(CHECKS_URL, {"page": "2"})

    html = response.content.decode()
    assert "<html" in html
    assert 'id="check-listing"' in html
    assert html.count('id="check-listing"') == 1
    assert "HX-Request" in response["Vary"]


def test_check_list_history_restore_gets_page(client, login_as, many_checks):
    login_as(Role.AUDITOR)

    response = client.get(CHECKS_URL, HTTP_HX_HISTORY_RESTORE_REQUEST="true", **HTMX)

    assert "<html" in response.content.decode()


def test_check_list_fragment_keeps_filter_errors(client, login_as, many_checks):
    login_as(Role.AUDITOR)

    response = client.get(CHECKS_URL, {"agent_id": "not-a-uuid"}, **HTMX)

    html = assert_fragment(response, "check-listing")
    assert "errorlist" in html
    assert "<tbody" not in html


def test_check_list_detail_links_are_not_boosted(client, login_as, many_checks):
    login_as(Role.AUDITOR)

    html = client.get(CHECKS_URL, **HTMX).content.decode()

    assert '<tbody hx-boost="false">' in html


def test_check_list_fragment_query_count(client, login_as, many_checks, django_assert_num_queries):
    login_as(Role.AUDITOR)
    client.get(CHECKS_URL)

    # One of them records the auditor's page view in the audit trail.
    with django_assert_num_queries(8):
        response = client.get(CHECKS_URL, {"page": "2", "sort": "entity"}, **HTMX)

    assert len(response.context["page"].object_list) == 5


def test_report_list_fragment_for_htmx(client, login_as, entity):
    make_report(entity, ReportStatus.READY)
    login_as(Role.AUDITOR)

    response = client.get(REPORTS_URL, **HTMX)

    html = assert_fragment(response, "report-listing")
    assert "1 report," in html
    assert "HX-Request" in response["Vary"]


def test_report_list_fragment_query_count(client, login_as, entity, django_assert_num_queries):
    for _ in range(30):
        make_report(entity, ReportStatus.FAILED)
    login_as(Role.AUDITOR)
    client.get(REPORTS_URL)

    # One of them records the auditor's page view in the audit trail.
    with django_assert_num_queries(7):
        response = client.get(REPORTS_URL, {"page": "2"}, **HTMX)

    assert len(response.context["page"].object_list) == 5


def test_generating_report_polls_its_content(client, login_as, entity):
    report = make_report(entity, ReportStatus.GENERATING)
    url = reverse("web:report-detail", kwargs={"report_id": report.pk})
    login_as(Role.AUDITOR)

    page = client.get(url).content.decode()
    fragment = assert_fragment(client.get(url, **HTMX), "report-content")

    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in page
    for html in (page, fragment):
        assert f'hx-get="{url}"' in html
        assert 'hx-trigger="every 5s"' in html
        assert "This report is being generated" in html


def test_ready_report_fragment_stops_polling(client, login_as, entity, tenant):
    today = tenant.today()
    report = request_report(
        tenant=tenant,
        entity=entity,
        regulation="SOC2",
        period_start=today - dt.timedelta(days=6),
        period_end=today,
    )
    assert report.status == ReportStatus.READY
    url = reverse("web:report-detail", kwargs={"report_id": report.pk})
    login_as(Role.AUDITOR)

    response = client.get(url, **HTMX)

    html = assert_fragment(response, "report-content")
    assert "hx-trigger" not in html
    assert "Download PDF" in html
    assert 'class="chart"' in html


def test_report_fragment_uses_tenant_zone(client, login_as, entity, tenant):
    today = tenant.today()
    report = request_report(
        tenant=tenant,
        entity=entity,
        regulation="SOC2",
        period_start=today - dt.timedelta(days=6),
        period_end=today,
    )
    url = reverse("web:report-detail", kwargs={"report_id": report.pk})
    login_as(Role.AUDITOR)
    generated_at = re.compile(r"<dt>Generated at</dt><dd>([^<]+)</dd>")

    page = generated_at.search(client.get(url).content.decode()).group(1)
    fragment = generated_at.search(client.get(url, **HTMX).content.decode()).group(1)

    assert fragment == page
    assert fragment.endswith(("CET", "CEST"))


def test_failed_report_fragment_stops_polling(client, login_as, entity):
    report = make_report(entity, ReportStatus.FAILED)
    login_as(Role.AUDITOR)

    response = client.get(reverse("web:report-detail", kwargs={"report_id": report.pk}), **HTMX)

    html = assert_fragment(response, "report-content")
    assert "hx-trigger" not in html
    assert "could not be generated" in html
    assert "noscript" not in html


def test_generating_report_fragment_query_count(
    client, login_as, entity, django_assert_num_queries
):
    report = make_report(entity, ReportStatus.GENERATING)
    url = reverse("web:report-detail", kwargs={"report_id": report.pk})
    login_as(Role.AUDITOR)
    client.get(url)

    # Session, user, membership with tenant, report and the audit record of the view:
    # nothing of the report's content.
    with django_assert_num_queries(5) as captured:
        client.get(url, **HTMX)

    assert "checks_finding" not in " ".join(query["sql"] for query in captured.captured_queries)


def test_pages_configure_htmx_for_strict_csp(client, login_as, entity):
    login_as(Role.AUDITOR)

    html = client.get(REPORTS_URL).content.decode()

    assert '<script src="/static/vendor/htmx/htmx.min.js" defer></script>' in html
    assert '"allowEval": false' in html
    assert '"allowScriptTags": false' in html
    assert '"includeIndicatorStyles": false' in html
    assert '"historyCacheSize": 0' in html
    assert "hx-on" not in html
