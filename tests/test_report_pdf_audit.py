"""The audit trail records each stored PDF's SHA-256 with the report's JSON digest."""

import hashlib

import pytest

from compliance.audit.models import AuditAction, AuditEvent
from compliance.reports import pdf as report_pdf
from compliance.reports.models import Report
from tests.test_report_pdf import build_history, clinic, make_report, media_root  # noqa: F401


def rendered_events(report):
    return AuditEvent.objects.filter(
        action=AuditAction.PDF_RENDERED, target_type="reports.report", target_id=str(report.pk)
    )


@pytest.mark.django_db
class TestPdfRenderedEvent:
    def test_records_sha256_and_digest(self, clinic, media_root):  # noqa: F811
        tenant, entity = clinic
        build_history(entity)
        report = make_report(tenant, entity)

        report_pdf.ensure_pdf(report)

        report.refresh_from_db()
        with report.pdf.open("rb") as handle:
            stored = handle.read()
        event = rendered_events(report).get()
        assert event.tenant == tenant
        assert event.details["pdf_sha256"] == hashlib.sha256(stored).hexdigest()
        assert event.details["pdf_sha256"] == report.pdf_sha256
        assert event.details["digest"] == report.digest
        assert event.details["report_id"] == report.public_id
        assert event.details["pdf_bytes"] == len(stored)

    def test_second_call_records_nothing(self, clinic, media_root):  # noqa: F811
        tenant, entity = clinic
        report = make_report(tenant, entity)

        report_pdf.ensure_pdf(report)
        report.refresh_from_db()
        report_pdf.ensure_pdf(report)

        assert rendered_events(report).count() == 1

    def test_discarded_render_records_nothing(self, clinic, media_root, monkeypatch):  # noqa: F811
        tenant, entity = clinic
        report = make_report(tenant, entity)
        render = report_pdf.render_pdf

        def render_after_other_worker(target):
            Report.objects.filter(pk=target.pk).update(
                pdf="reports/other-worker.pdf", pdf_sha256="a" * 64
            )
            return render(target)

        monkeypatch.setattr(report_pdf, "render_pdf", render_after_other_worker)

        report_pdf.ensure_pdf(report)

        assert rendered_events(report).count() == 0
