"""Page links and downloads of the OSCAL exports, and the guidance on the controls page."""

import datetime as dt
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from compliance.audit.models import AuditAction, AuditEvent
from compliance.catalog.models import Severity
from compliance.checks.models import FindingStatus
from compliance.reports import oscal
from compliance.reports.models import ReportStatus
from compliance.reports.services import request_report
from compliance.tenancy.models import Role
from tests.conftest import make_check

pytestmark = pytest.mark.django_db


@pytest.fixture
def check(entity):
    return make_check(
        entity,
        "SOC2",
        timezone.now().replace(microsecond=0) - dt.timedelta(hours=1),
        [("CC6.1", FindingStatus.FAIL, Severity.HIGH), ("CC7.2", FindingStatus.PASS, Severity.LOW)],
    )


@pytest.fixture
def report(tenant, entity, check):
    today = tenant.today()
    report = request_report(
        tenant=tenant,
        entity=entity,
        regulation="SOC2",
        period_start=today - dt.timedelta(days=6),
        period_end=today,
    )
    assert report.status == ReportStatus.READY, report.error
    return report


def test_check_page_links_oscal(client, login_as, check):
    login_as(Role.AUDITOR)
    response = client.get(reverse("web:check-detail", kwargs={"check_id": check.pk}))
    assert reverse("web:check-oscal", kwargs={"check_id": check.pk}) in response.content.decode()


def test_report_page_links_oscal(client, login_as, report):
    login_as(Role.AUDITOR)
    response = client.get(reverse("web:report-detail", kwargs={"report_id": report.pk}))
    link = reverse("web:report-oscal", kwargs={"report_id": report.pk})
    assert link in response.content.decode()


def test_check_oscal_download(client, login_as, check):
    login_as(Role.AUDITOR)
    response = client.get(reverse("web:check-oscal", kwargs={"check_id": check.pk}))
    assert response.status_code == 200
    assert json.loads(response.content) == oscal.check_assessment_results(check)
    event = AuditEvent.objects.get(action=AuditAction.EXPORT_DOWNLOADED)
    assert event.details["format"] == "oscal-json"


def test_report_oscal_download(client, login_as, report):
    login_as(Role.AUDITOR)
    response = client.get(reverse("web:report-oscal", kwargs={"report_id": report.pk}))
    assert response.status_code == 200
    assert json.loads(response.content) == oscal.report_assessment_results(report)


def test_report_oscal_not_ready(client, login_as, report):
    report.status = ReportStatus.GENERATING
    report.save(update_fields=["status"])
    login_as(Role.AUDITOR)
    response = client.get(reverse("web:report-oscal", kwargs={"report_id": report.pk}))
    assert response.status_code == 409


def test_oscal_download_needs_login(client, check):
    response = client.get(reverse("web:check-oscal", kwargs={"check_id": check.pk}))
    assert response.status_code == 302


def test_controls_page_shows_hipaa_marks(client, login_as):
    login_as(Role.AUDITOR)
    response = client.get(reverse("web:control-detail", kwargs={"regulation": "HIPAA"}))
    page = response.content.decode()
    assert "Required implementation specification" in page
    assert "Addressable implementation specification" in page


def test_controls_page_shows_guidance(client, login_as):
    login_as(Role.AUDITOR)
    response = client.get(reverse("web:control-detail", kwargs={"regulation": "GDPR"}))
    page = response.content.decode()
    assert "<summary>Evidence</summary>" in page
    assert "A data protection impact assessment of the AI entity" in page
