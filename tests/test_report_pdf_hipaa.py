"""HIPAA reports mark each implementation specification as required or addressable in the PDF."""

import re

import pytest
from django.db import transaction

from compliance.catalog.models import Severity
from compliance.checks.models import Check, CheckSource, Finding, FindingStatus
from compliance.checks.rollups import record_rollups
from compliance.reports import pdf as report_pdf
from compliance.reports.models import ReportStatus
from compliance.reports.services import request_report
from tests.test_report_pdf import PERIOD_END, PERIOD_START, at, clinic, media_root, page_texts

__all__ = ["clinic", "media_root"]

pytestmark = pytest.mark.django_db

# A standard without a mark, a required and an addressable specification.
EVIDENCED = [
    ("164.308(a)(1)", FindingStatus.PASS),
    ("164.308(a)(1)(ii)(A)", FindingStatus.FAIL),
    ("164.308(a)(3)(ii)(A)", FindingStatus.PASS),
]


@transaction.atomic
def add_hipaa_check(entity):
    when = at(3, 10)
    check = Check.objects.create(
        tenant=entity.tenant,
        entity=entity,
        regulation="HIPAA",
        source=CheckSource.API,
        status="partial",
        created_at=when,
        completed_at=when,
    )
    Finding.objects.bulk_create(
        Finding(
            compliance_check=check,
            tenant=entity.tenant,
            entity=entity,
            regulation="HIPAA",
            observed_at=when,
            finding_id=control_id,
            control_id=control_id,
            status=status,
            severity=Severity.HIGH,
            title=f"Evidence of {control_id}",
        )
        for control_id, status in EVIDENCED
    )
    record_rollups([check], check.findings.all())


@pytest.fixture
def hipaa_text(clinic, media_root):
    tenant, entity = clinic
    add_hipaa_check(entity)
    report = request_report(
        tenant=tenant,
        entity=entity,
        regulation="HIPAA",
        period_start=PERIOD_START,
        period_end=PERIOD_END,
    )
    assert report.status == ReportStatus.READY, report.error
    # Whitespace is dropped, because the narrow control column wraps the IDs.
    return re.sub(r"\s+", "", "".join(page_texts(report_pdf.render_pdf(report))))


def test_findings_mark_specifications(hipaa_text):
    assert "164.308(a)(1)(ii)(A)RequiredRiskanalysis" in hipaa_text
    assert "164.308(a)(3)(ii)(A)AddressableAuthorization" in hipaa_text


def test_standard_has_no_mark(hipaa_text):
    assert "164.308(a)(1)Securitymanagementprocess" in hipaa_text


def test_missing_controls_marked(hipaa_text):
    assert "Protectionfrommalicioussoftware(Addressable)" in hipaa_text
