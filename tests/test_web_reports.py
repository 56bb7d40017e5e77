"""The report pages: list and filters, detail, the request form and the PDF download."""

import datetime as dt
import hashlib

import pytest
from django.urls import reverse
from django.utils import timezone

from compliance.catalog.models import Severity
from compliance.checks.models import FindingStatus
from compliance.inventory.models import Entity, EntityType
from compliance.reports.models import Report, ReportStatus
from compliance.reports.services import request_report
from compliance.tenancy.models import Role
from compliance.web.forms import preset_period

LIST_URL = reverse("web:report-list")
NEW_URL = reverse("web:report-new")


@pytest.fixture
def today(tenant):
    return tenant.today()


@pytest.fixture
def evidence(entity, check_factory):
    """One SOC 2 check two days ago: CC6.1 passes and CC7.2 fails, so the score is 50 %."""
    return check_factory(
        entity,
        "SOC2",
        timezone.now() - dt.timedelta(days=2),
        [
            ("CC6.1", FindingStatus.PASS, Severity.HIGH),
            ("CC7.2", FindingStatus.FAIL, Severity.MEDIUM),
        ],
    )


def make_report(entity, status=ReportStatus.GENERATING, regulation="SOC2", days=7):
    """Create a report row directly, without generating it."""
    end = dt.date(2026, 3, 31)
    return Report.objects.create(
        tenant=entity.tenant,
        entity=entity,
        regulation=regulation,
        period_start=end - dt.timedelta(days=days - 1),
        period_end=end,
        status=status,
    )


def request_form(entity, start, end, regulation="SOC2", period="custom"):
    return {
        "entity": str(entity.pk),
        "regulation": regulation,
        "period": period,
        "period_start": start.isoformat() if start else "",
        "period_end": end.isoformat() if end else "",
    }


def detail_url(report):
    return reverse("web:report-detail", kwargs={"report_id": report.pk})


def pdf_url(report):
    return reverse("web:report-pdf", kwargs={"report_id": report.pk})


# The list


def test_list_empty_state(client, login_as):
    login_as(Role.OFFICER)

    html = client.get(LIST_URL).content.decode()

    assert "No reports yet." in html
    assert f'href="{NEW_URL}"' in html


def test_list_empty_state_for_auditor(client, login_as):
    login_as(Role.AUDITOR)

    html = client.get(LIST_URL).content.decode()

    assert "No reports yet." in html
    assert "once a compliance officer generates one" in html


def test_list_newest_first_and_paginated(client, login_as, entity):
    login_as(Role.AUDITOR)
    reports = [make_report(entity) for _ in range(30)]

    first = client.get(LIST_URL)
    second = client.get(LIST_URL, {"page": 2})

    first_ids = [report.pk for report in first.context["page"].object_list]
    second_ids = [report.pk for report in second.context["page"].object_list]
    assert len(first_ids) == 25
    assert len(second_ids) == 5
    assert first_ids[0] == reports[-1].pk
    assert second_ids[-1] == reports[0].pk
    assert "Page 1 of 2" in first.content.decode()
    assert 'href="?page=2"' in first.content.decode()


def test_list_hides_other_tenants(client, login_as, entity, other_entity):
    login_as(Role.AUDITOR)
    mine = make_report(entity)
    foreign = make_report(other_entity)

    html = client.get(LIST_URL).content.decode()

    assert mine.public_id in html
    assert foreign.public_id not in html


def test_list_filters_by_entity_regulation_status(client, login_as, tenant, entity):
    login_as(Role.AUDITOR)
    second_entity = Entity.objects.create(
        tenant=tenant, entity_type=EntityType.MODEL, name="Scoring model"
    )
    soc2_ready = make_report(entity, status=ReportStatus.READY)
    gdpr_generating = make_report(entity, regulation="GDPR")
    other_entity_report = make_report(second_entity, status=ReportStatus.FAILED)
    cases = [
        ({"entity": str(second_entity.pk)}, {other_entity_report}),
        ({"regulation": "GDPR"}, {gdpr_generating}),
        ({"status": "ready"}, {soc2_ready}),
        ({"entity": str(entity.pk), "regulation": "SOC2"}, {soc2_ready}),
        ({"status": "failed", "regulation": "GDPR"}, set()),
    ]

    for params, expected in cases:
        response = client.get(LIST_URL, params)
        listed_ids = {report.pk for report in response.context["page"].object_list}
        assert listed_ids == {report.pk for report in expected}, params


def test_list_filters_stay_in_page_links(client, login_as, entity):
    login_as(Role.AUDITOR)
    for _ in range(26):
        make_report(entity, regulation="GDPR")

    html = client.get(LIST_URL, {"regulation": "GDPR"}).content.decode()

    assert 'href="?regulation=GDPR&amp;page=2"' in html
    assert '<option value="GDPR" selected>' in html


def test_list_filter_without_match_message(client, login_as, entity):
    login_as(Role.AUDITOR)
    make_report(entity)

    html = client.get(LIST_URL, {"status": "failed"}).content.decode()

    assert "No reports match these filters." in html


def test_list_rejects_foreign_entity_filter(client, login_as, entity, other_entity):
    login_as(Role.AUDITOR)
    make_report(entity)

    response = client.get(LIST_URL, {"entity": str(other_entity.pk)})

    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert list(response.context["page"].object_list) == []


def test_list_invalid_filter_lists_nothing(client, login_as, entity):
    login_as(Role.AUDITOR)
    make_report(entity)

    response = client.get(LIST_URL, {"regulation": "PCI", "status": "bogus"})

    assert response.status_code == 200
    assert list(response.context["page"].object_list) == []


def test_list_status_badge(client, login_as, entity):
    login_as(Role.AUDITOR)
    make_report(entity, status=ReportStatus.FAILED)

    html = client.get(LIST_URL).content.decode()

    assert '<span class="badge badge--failed">Failed</span>' in html
    assert ".badge--failed{background-color:#cf222e}" in html


# The request form and the detail page


def test_generate_short_period_shows_ready_report(client, login_as, entity, evidence, today):
    login_as(Role.OFFICER)
    form = request_form(entity, today - dt.timedelta(days=6), today)

    response = client.post(NEW_URL, form)

    report = Report.objects.get()
    assert response.status_code == 302
    assert response["Location"] == detail_url(report)
    assert report.status == ReportStatus.READY
    assert report.requested_by.username == "officer-user"

    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert "50.0\N{NO-BREAK SPACE}%" in html
    assert "<svg" in html
    assert '<th scope="row" class="nowrap">CC6.1</th>' in html
    assert '<th scope="row" class="nowrap">CC7.2</th>' in html
    assert report.public_id in html
    assert report.digest in html
    assert 'http-equiv="refresh"' not in html
    assert f'href="{pdf_url(report)}"' in html
    assert "controls without evidence" in html


def test_generate_long_period_shows_generating(client, login_as, entity, today):
    login_as(Role.OFFICER)
    form = request_form(entity, today - dt.timedelta(days=29), today)

    response = client.post(NEW_URL, form, follow=True)

    html = response.content.decode()
    assert Report.objects.get().status == ReportStatus.GENERATING
    assert "This report is being generated" in html
    assert '<meta http-equiv="refresh" content="5">' in html
    assert "Download PDF" not in html


def test_generate_with_preset(client, login_as, entity, today):
    login_as(Role.OFFICER)
    form = request_form(entity, None, None, period="last_90_days")

    client.post(NEW_URL, form)

    report = Report.objects.get()
    assert report.period_end == today
    assert report.period_start == today - dt.timedelta(days=89)


def test_generate_form_lists_only_own_entities(client, login_as, entity, other_entity):
    login_as(Role.OFFICER)

    html = client.get(NEW_URL).content.decode()

    assert entity.name in html
    assert other_entity.name not in html
    assert 'type="date"' in html
    assert "Last 30 days" in html


def test_generate_form_without_entities(client, login_as, tenant):
    login_as(Role.OFFICER)

    html = client.get(NEW_URL).content.decode()

    assert "has no registered AI entities" in html


@pytest.mark.parametrize(
    ("start_offset", "end_offset", "message"),
    [
        (0, -3, "is before the start date"),
        (-800, 0, "the maximum is 731 days"),
        (-2, 2, "is in the future"),
    ],
)
def test_generate_rejects_invalid_periods(
    client, login_as, entity, today, start_offset, end_offset, message
):
    login_as(Role.OFFICER)
    start = today + dt.timedelta(days=start_offset)
    end = today + dt.timedelta(days=end_offset)

    response = client.post(NEW_URL, request_form(entity, start, end))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Report.objects.exists()


def test_generate_custom_period_needs_dates(client, login_as, entity):
    login_as(Role.OFFICER)

    response = client.post(NEW_URL, request_form(entity, None, None))

    html = response.content.decode()
    assert "Enter a start date, or choose a preset period." in html
    assert "Enter an end date, or choose a preset period." in html
    assert not Report.objects.exists()


def test_generate_rejects_foreign_entity(client, login_as, entity, other_entity, today):
    login_as(Role.OFFICER)

    response = client.post(NEW_URL, request_form(other_entity, today, today))

    assert "Select a valid choice" in response.content.decode()
    assert not Report.objects.exists()


def test_auditor_cannot_generate(client, login_as, entity, today):
    login_as(Role.AUDITOR)

    response = client.post(NEW_URL, request_form(entity, today, today))

    assert response.status_code == 403
    assert not Report.objects.exists()


def test_failed_report_shows_error(client, login_as, entity):
    login_as(Role.AUDITOR)
    report = make_report(entity, status=ReportStatus.FAILED)
    Report.objects.filter(pk=report.pk).update(error="Aggregation failed: OperationalError")

    html = client.get(detail_url(report)).content.decode()

    assert "could not be generated" in html
    assert "Aggregation failed: OperationalError" in html


def test_ready_report_without_evidence(client, login_as, tenant, entity, today):
    login_as(Role.AUDITOR)
    report = request_report(
        tenant=tenant,
        entity=entity,
        regulation="GDPR",
        period_start=today - dt.timedelta(days=2),
        period_end=today,
    )

    html = client.get(detail_url(report)).content.decode()

    assert "No score" in html
    assert "No findings in this period" in html
    assert "No evidence in this period" in html


@pytest.mark.parametrize(("days", "bucket"), [(7, "day"), (60, "week"), (365, "month")])
def test_trend_caption_names_bucket(client, login_as, tenant, entity, today, days, bucket):
    login_as(Role.AUDITOR)
    report = request_report(
        tenant=tenant,
        entity=entity,
        regulation="SOC2",
        period_start=today - dt.timedelta(days=days - 1),
        period_end=today,
        in_background=False,
    )
    assert report.summary["trend"]["granularity"] == bucket

    html = client.get(detail_url(report)).content.decode()

    assert f"Compliance score at the end of each {bucket} of the period." in html
    for other in {"day", "week", "month"} - {bucket}:
        assert f"at the end of each {other}" not in html


def test_detail_of_other_tenant_is_404(client, login_as, other_entity):
    login_as(Role.ADMIN)
    foreign = make_report(other_entity, status=ReportStatus.READY)

    assert client.get(detail_url(foreign)).status_code == 404
    assert client.get(pdf_url(foreign)).status_code == 404


# The PDF


def test_pdf_download(client, login_as, tenant, entity, evidence, today):
    login_as(Role.AUDITOR)
    report = request_report(
        tenant=tenant,
        entity=entity,
        regulation="SOC2",
        period_start=today - dt.timedelta(days=6),
        period_end=today,
    )

    response = client.get(pdf_url(report))
    body = b"".join(response.streaming_content)

    report.refresh_from_db()
    expected_name = report.public_id.replace(":", "-") + ".pdf"
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{expected_name}"'
    assert body.startswith(b"%PDF")
    assert response["ETag"] == f'"{hashlib.sha256(body).hexdigest()}"'
    assert report.pdf_sha256 == hashlib.sha256(body).hexdigest()
    assert response["Repr-Digest"].startswith("sha-256=:")


def test_pdf_of_generating_report_is_409(client, login_as, entity):
    login_as(Role.AUDITOR)
    report = make_report(entity)

    response = client.get(pdf_url(report))

    assert response.status_code == 409
    assert "not available yet" in response.content.decode()


@pytest.mark.parametrize(
    ("preset", "today", "expected"),
    [
        ("quarter_to_date", dt.date(2026, 5, 17), (dt.date(2026, 4, 1), dt.date(2026, 5, 17))),
        ("last_quarter", dt.date(2026, 5, 17), (dt.date(2026, 1, 1), dt.date(2026, 3, 31))),
        ("last_quarter", dt.date(2026, 1, 2), (dt.date(2025, 10, 1), dt.date(2025, 12, 31))),
        ("quarter_to_date", dt.date(2026, 12, 31), (dt.date(2026, 10, 1), dt.date(2026, 12, 31))),
    ],
)
def test_quarter_presets(preset, today, expected):
    assert preset_period(preset, today) == expected
