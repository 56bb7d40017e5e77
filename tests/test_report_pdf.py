"""The auditor PDF: content, page layout, restricted fetching and storage."""

import datetime as dt
import hashlib
import io
import re
import socket
import zoneinfo

import pytest
from django.db import transaction
from pypdf import PdfReader
from weasyprint import HTML

from compliance.catalog.models import Control, Severity
from compliance.checks.models import Check, CheckSource, Finding, FindingStatus
from compliance.checks.rollups import record_rollups
from compliance.inventory.models import Entity, EntityType
from compliance.reports import pdf as report_pdf
from compliance.reports.models import Report, ReportStatus
from compliance.reports.services import request_report
from compliance.tenancy.models import Tenant

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
PERIOD_START = dt.date(2026, 3, 1)
PERIOD_END = dt.date(2026, 3, 21)
REGULATION = "ISO27001"
EVIDENCED_CONTROLS = 64
UMLAUT_TITLE = "Zugriffsprüfung \u2013 Ärzte"
STATUS_CYCLE = [
    FindingStatus.PASS,
    FindingStatus.FAIL,
    FindingStatus.PASS,
    FindingStatus.NOT_ASSESSED,
    FindingStatus.NOT_APPLICABLE,
]
SEVERITY_CYCLE = [Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL]
FINDING_TITLE = re.compile(r"Finding \d{3}")
BUNDLED_FONTS = {
    "NotoSans-Regular.ttf",
    "NotoSans-Bold.ttf",
    "NotoSansArabic-Regular.ttf",
    "NotoSansArabic-Bold.ttf",
    "DroidSansFallbackFull.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSans.ttf",
}


@pytest.fixture
def listener():
    """Return a non-blocking socket on 127.0.0.1 whose queue shows any connection attempt."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def connection_attempts(server):
    """Return how many connections are waiting on ``server``, accepting at most 16."""
    count = 0
    for _ in range(16):
        try:
            client, _ = server.accept()
        except BlockingIOError:
            break
        client.close()
        count += 1
    return count


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def at(day, hour):
    return dt.datetime.combine(PERIOD_START + dt.timedelta(days=day), dt.time(hour), tzinfo=BERLIN)


@transaction.atomic
def add_check(entity, when, rows, *, is_demo=False):
    """Create a check at ``when`` with one finding per ``(control_id, status, severity, title)``.

    The daily rollups are recorded too, as every path that stores findings does.
    """
    check = Check.objects.create(
        tenant=entity.tenant,
        entity=entity,
        regulation=REGULATION,
        source=CheckSource.API,
        status="partial",
        created_at=when,
        completed_at=when,
        is_demo=is_demo,
    )
    Finding.objects.bulk_create(
        Finding(
            compliance_check=check,
            tenant=entity.tenant,
            entity=entity,
            regulation=REGULATION,
            observed_at=when,
            finding_id=f"{control_id}-{when:%Y%m%d%H}",
            control_id=control_id,
            status=status,
            severity=severity,
            title=title,
        )
        for control_id, status, severity, title in rows
    )
    record_rollups([check], check.findings.all())
    return check


def finding_rows(control_ids, hostile_title):
    """Return the findings of the last check: numbered titles, one umlaut and one hostile title."""
    rows = []
    for index, control_id in enumerate(control_ids):
        title = (
            f"Finding {index:03d} for {control_id}: access reviews are documented and signed off"
        )
        if index == 5:
            title = UMLAUT_TITLE
        if index == 9:
            title = hostile_title
        status = STATUS_CYCLE[index % len(STATUS_CYCLE)]
        rows.append((control_id, status, SEVERITY_CYCLE[index % len(SEVERITY_CYCLE)], title))
    return rows


def build_history(entity, hostile_title="plain title", *, is_demo=False):
    """Create three checks in the period, the last one covering EVIDENCED_CONTROLS controls."""
    control_ids = list(
        Control.objects.filter(regulation=REGULATION)
        .order_by("sort_key")
        .values_list("control_id", flat=True)[:EVIDENCED_CONTROLS]
    )
    early = [
        (control_id, STATUS_CYCLE[index % 2], Severity.HIGH, "Early review")
        for index, control_id in enumerate(control_ids[:8])
    ]
    fixed = [
        (control_id, FindingStatus.PASS, Severity.HIGH, "Fixed") for control_id in control_ids[:4]
    ]
    add_check(entity, at(2, 9), early, is_demo=is_demo)
    add_check(entity, at(9, 15), fixed)
    add_check(entity, at(17, 11), finding_rows(control_ids, hostile_title))
    return control_ids


@pytest.fixture
def clinic(db):
    tenant = Tenant.objects.create(slug="clinic", name="Klinikum Nord", time_zone="Europe/Berlin")
    entity = Entity.objects.create(
        tenant=tenant, entity_type=EntityType.AGENT, name="Triage assistant"
    )
    return tenant, entity


def make_report(tenant, entity):
    report = request_report(
        tenant=tenant,
        entity=entity,
        regulation=REGULATION,
        period_start=PERIOD_START,
        period_end=PERIOD_END,
    )
    assert report.status == ReportStatus.READY, report.error
    return report


def page_texts(pdf_bytes):
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf_bytes)).pages]


def compact(text):
    """Remove all whitespace, so that text wrapped across lines still matches."""
    return re.sub(r"\s+", "", text)


@pytest.fixture
def rendered(clinic, listener, media_root):
    """Render a report whose findings include a hostile title aimed at ``listener``."""
    tenant, entity = clinic
    port = listener.getsockname()[1]
    hostile = (
        f'<img src="http://127.0.0.1:{port}/x"><style>@import url("http://127.0.0.1:{port}/a.css");'
        f'</style><b style="background:url(http://127.0.0.1:{port}/b.png)">bold</b>'
    )
    build_history(entity, hostile)
    report = make_report(tenant, entity)
    return report, report_pdf.render_pdf(report), hostile


@pytest.mark.django_db
class TestReportPdfContent:
    def test_cover_shows_report_facts(self, rendered):
        report, pdf_bytes, _ = rendered

        cover = page_texts(pdf_bytes)[0]

        assert "Compliance report" in cover
        assert "AI Compliance" in cover
        assert "Klinikum Nord" in cover
        assert "Triage assistant" in cover
        assert "Agent" in cover
        assert "ISO/IEC 27001:2022" in cover
        assert "2026-03-01 \u2013 2026-03-21" in cover
        assert report.public_id in compact(cover)
        assert report.digest.startswith("sha256:")
        assert report.digest in compact(cover)
        assert "Generated at" in cover
        assert "demo data" not in cover

    def test_page_numbers_in_margin(self, rendered):
        _, pdf_bytes, _ = rendered

        pages = page_texts(pdf_bytes)

        total = len(pages)
        assert total >= 4
        for number, text in enumerate(pages, start=1):
            assert f"Page {number} of {total}" in text

    def test_report_id_in_every_footer(self, rendered):
        report, pdf_bytes, _ = rendered

        for text in page_texts(pdf_bytes):
            assert report.public_id in compact(text)

    def test_findings_table_spans_pages(self, rendered):
        _, pdf_bytes, _ = rendered

        table_pages = [text for text in page_texts(pdf_bytes) if FINDING_TITLE.search(text)]

        assert len(table_pages) >= 2
        for text in table_pages:
            assert "Control title" in text
            assert "Severity" in text
            assert "First seen" in text
            assert "Last seen" in text

    def test_findings_table_lists_every_control(self, rendered):
        report, pdf_bytes, _ = rendered

        text = compact("".join(page_texts(pdf_bytes)))

        assert len(report.findings) == EVIDENCED_CONTROLS
        for entry in report.findings:
            assert compact(entry["control_id"]) in text
        numbered = {int(number) for number in re.findall(r"Finding(\d{3})for", text)}
        assert numbered == set(range(EVIDENCED_CONTROLS)) - {5, 9}

    def test_non_ascii_finding_title(self, rendered):
        _, pdf_bytes, _ = rendered

        text = "\n".join(page_texts(pdf_bytes))

        assert UMLAUT_TITLE in text

    def test_summary_shows_score_and_chart(self, rendered):
        report, pdf_bytes, _ = rendered

        summary_page = page_texts(pdf_bytes)[1]

        assert "Executive summary" in summary_page
        score = report.summary["compliance_score"]
        assert f"{score:.1f} %" in summary_page
        assert "Checks by status" in summary_page
        assert "Open findings by severity" in summary_page
        assert "Not applicable" in summary_page
        assert "100 %" in summary_page, "the chart's y axis labels are text in the PDF"

    def test_controls_without_evidence_listed(self, rendered):
        report, pdf_bytes, _ = rendered

        text = "\n".join(page_texts(pdf_bytes))

        missing = report.summary["controls_without_evidence"]
        assert len(missing) == Control.objects.filter(regulation=REGULATION).count() - 64
        assert "Controls without evidence" in text
        assert f"{len(missing)} catalog controls had no finding" in text
        for control_id in missing:
            assert control_id in text

    def test_metadata_title_and_author(self, rendered):
        report, pdf_bytes, _ = rendered

        metadata = PdfReader(io.BytesIO(pdf_bytes)).metadata

        assert metadata.title == f"Compliance report {report.public_id}"
        assert metadata.author == "AI Compliance"

    def test_demo_line_on_cover(self, clinic, media_root):
        tenant, entity = clinic
        build_history(entity, is_demo=True)
        report = make_report(tenant, entity)

        cover = page_texts(report_pdf.render_pdf(report))[0]

        assert "Generated from demo data" in cover

    @pytest.mark.parametrize(("days", "bucket"), [(21, "day"), (60, "week"), (365, "month")])
    def test_trend_caption_names_bucket(self, clinic, media_root, days, bucket):
        tenant, entity = clinic
        report = request_report(
            tenant=tenant,
            entity=entity,
            regulation=REGULATION,
            period_start=PERIOD_END - dt.timedelta(days=days - 1),
            period_end=PERIOD_END,
            in_background=False,
        )

        text = compact("\n".join(page_texts(report_pdf.render_pdf(report))))

        assert compact(f"Compliance score at the end of each {bucket} of the period.") in text
        assert compact("each day, week or month") not in text

    def test_empty_report_renders(self, clinic, media_root):
        tenant, entity = clinic
        report = make_report(tenant, entity)

        text = "\n".join(page_texts(report_pdf.render_pdf(report)))

        assert "No control has evidence in this period." in text
        assert "No evidence in this period" in text
        assert "Not assessed" in text


@pytest.mark.django_db
class TestReportPdfFetching:
    def test_hostile_title_printed_as_text(self, rendered):
        _, pdf_bytes, hostile = rendered

        text = compact("".join(page_texts(pdf_bytes)))

        assert compact(hostile) in text

    def test_hostile_title_fetches_nothing(self, rendered, listener):
        assert connection_attempts(listener) == 0

    def test_only_static_files_fetched(self, clinic, media_root, monkeypatch):
        tenant, entity = clinic
        build_history(entity)
        report = make_report(tenant, entity)
        fetchers = []

        class RecordingFetcher(report_pdf.StaticFileFetcher):
            def __init__(self):
                super().__init__()
                fetchers.append(self)

        monkeypatch.setattr(report_pdf, "StaticFileFetcher", RecordingFetcher)

        report_pdf.render_pdf(report)

        assert len(fetchers) == 1
        fetched = {url.rsplit("/", 1)[-1] for url in fetchers[0].fetched}
        assert fetched == {"report_pdf.css", *BUNDLED_FONTS}
        assert fetchers[0].rejected == []

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:9/x",
            "https://localhost:9/x.css",
            "ftp://localhost/x",
            "file:///etc/passwd",
            "file:///etc/hostname",
        ],
    )
    def test_fetcher_rejects_url(self, url):
        fetcher = report_pdf.StaticFileFetcher()

        with pytest.raises(ValueError, match="Only static files"):
            fetcher.fetch(url)

        assert fetcher.rejected == [url]
        assert fetcher.fetched == []

    def test_fetcher_rejects_traversal(self):
        css_url = report_pdf.static_file_url(report_pdf.STYLESHEET)
        escape = css_url.rsplit("/", 1)[0] + "/../../../../../../../../etc/passwd"
        fetcher = report_pdf.StaticFileFetcher()

        with pytest.raises(ValueError, match="Only static files"):
            fetcher.fetch(escape)

    def test_fetcher_rejects_file_host(self):
        font_url = report_pdf.static_file_url("fonts/DejaVuSans.ttf")
        remote = font_url.replace("file://", "file://127.0.0.1", 1)
        fetcher = report_pdf.StaticFileFetcher()

        with pytest.raises(ValueError, match="Only static files"):
            fetcher.fetch(remote)

    def test_fetcher_serves_static_font(self):
        fetcher = report_pdf.StaticFileFetcher()

        response = fetcher.fetch(report_pdf.static_file_url("fonts/DejaVuSans.ttf"))

        body = response.read()
        response.close()
        assert body[:4] == b"\x00\x01\x00\x00", "a TrueType font file"
        assert fetcher.fetched

    def test_fetcher_serves_data_url(self):
        fetcher = report_pdf.StaticFileFetcher()

        response = fetcher.fetch("data:text/plain;base64,aGVsbG8=")

        assert response.read() == b"hello"
        response.close()

    def test_raw_markup_cannot_fetch(self, listener):
        """Unescaped markup with remote and local URLs loads nothing through the fetcher."""
        port = listener.getsockname()[1]
        css_url = report_pdf.static_file_url(report_pdf.STYLESHEET)
        html = (
            f'<link rel="stylesheet" href="http://127.0.0.1:{port}/a.css">'
            f'<style>@import url("http://127.0.0.1:{port}/b.css");'
            f'p {{ background: url("file:///etc/passwd") }}</style>'
            f'<p>text<img src="http://127.0.0.1:{port}/c.png"></p>'
            f'<img src="{css_url}/../../../pyproject.toml">'
        )
        fetcher = report_pdf.StaticFileFetcher()

        HTML(string=html, url_fetcher=fetcher).write_pdf()

        assert connection_attempts(listener) == 0
        assert fetcher.fetched == []
        assert len(fetcher.rejected) == 5


@pytest.mark.django_db
class TestEnsurePdf:
    def test_stores_pdf_and_digest(self, clinic, media_root):
        tenant, entity = clinic
        build_history(entity)
        report = make_report(tenant, entity)

        report_pdf.ensure_pdf(report)

        report.refresh_from_db()
        with report.pdf.open("rb") as handle:
            stored = handle.read()
        assert stored.startswith(b"%PDF-")
        assert hashlib.sha256(stored).hexdigest() == report.pdf_sha256
        assert report.pdf.name.startswith("reports/maip-report-")
        assert report.pdf.name.endswith(".pdf")

    def test_second_call_keeps_pdf(self, clinic, media_root, monkeypatch):
        tenant, entity = clinic
        report = make_report(tenant, entity)
        calls = []
        render = report_pdf.render_pdf

        def counting_render(target):
            calls.append(target.pk)
            return render(target)

        monkeypatch.setattr(report_pdf, "render_pdf", counting_render)

        report_pdf.ensure_pdf(report)
        first_name, first_digest = report.pdf.name, report.pdf_sha256
        report.refresh_from_db()
        report_pdf.ensure_pdf(report)

        assert calls == [report.pk]
        assert report.pdf.name == first_name
        assert report.pdf_sha256 == first_digest

    def test_concurrent_store_keeps_first(self, clinic, media_root, monkeypatch):
        tenant, entity = clinic
        report = make_report(tenant, entity)
        render = report_pdf.render_pdf

        def render_after_other_worker(target):
            # Another worker records its PDF while this one is still rendering.
            Report.objects.filter(pk=target.pk).update(
                pdf="reports/other-worker.pdf", pdf_sha256="a" * 64
            )
            return render(target)

        monkeypatch.setattr(report_pdf, "render_pdf", render_after_other_worker)

        report_pdf.ensure_pdf(report)

        assert report.pdf.name == "reports/other-worker.pdf"
        assert report.pdf_sha256 == "a" * 64
        assert list((media_root / "reports").iterdir()) == []

    def test_rejects_report_not_ready(self, clinic, media_root):
        tenant, entity = clinic
        report = make_report(tenant, entity)
        report.status = ReportStatus.GENERATING

        with pytest.raises(ValueError, match="not ready"):
            report_pdf.ensure_pdf(report)

        assert not report.pdf
        assert report.pdf_sha256 == ""

    def test_render_rejects_failed_report(self, clinic):
        tenant, entity = clinic
        report = make_report(tenant, entity)
        report.status = ReportStatus.FAILED

        with pytest.raises(ValueError, match="is failed, not ready"):
            report_pdf.render_pdf(report)
