"""The auditor PDF of a ready report, rendered by WeasyPrint from an HTML template.

Rendering never touches the network or files outside the static directories:
``StaticFileFetcher`` serves only files that the staticfiles finders locate
(the stylesheet and the bundled DejaVu fonts) plus ``data:`` URLs, and rejects
every other URL. Report content enters the HTML through auto-escaped template
variables, so a finding title cannot add markup, images or stylesheets.
"""

import datetime as dt
import hashlib
import logging
import mimetypes
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.files.base import ContentFile
from django.template.loader import render_to_string
from weasyprint import HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse, path2url

from compliance.catalog.models import Control, Regulation, Severity
from compliance.checks.models import Check, CheckStatus, FindingStatus
from compliance.inventory.models import EntityType
from compliance.reports.aggregation import period_bounds
from compliance.reports.charts import trend_chart_svg
from compliance.reports.models import Report, ReportStatus
from compliance.reports.presentation import status_colour

logger = logging.getLogger(__name__)

TEMPLATE = "reports/report_pdf.html"
STYLESHEET = "reports/report_pdf.css"
CHART_WIDTH = 640
CHART_HEIGHT = 220


class StaticFileFetcher(URLFetcher):
    """A WeasyPrint URL fetcher that reads only static files from disk and ``data:`` URLs.

    A ``file:`` URL without a remote host is served only when its resolved
    path lies inside a directory that the staticfiles finders search, so
    ``..`` segments and symbolic links that leave those directories are
    rejected. ``fetched`` and ``rejected`` list the URLs the document requested.
    """

    def __init__(self):
        super().__init__(allowed_protocols={"file", "data"}, allow_redirects=False)
        self.roots = static_roots()
        self.fetched = []
        self.rejected = []

    def fetch(self, url, headers=None):
        scheme = urlsplit(url).scheme.lower()
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme == "file":
            path = self._static_path(url)
            if path is not None:
                return self._read(url, path)

        self.rejected.append(url)
        logger.warning("PDF rendering rejected a fetch of %.200s", url)
        raise ValueError(f"Only static files may be loaded into a report PDF, not {url[:200]!r}")

    def _static_path(self, url):
        """Return the resolved path of a ``file:`` URL if it is a file under a static root."""
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            return None
        path = Path(url2pathname(parts.path)).resolve()
        if not path.is_file():
            return None
        if not any(path.is_relative_to(root) for root in self.roots):
            return None
        return path

    def _read(self, url, path):
        content_type, _ = mimetypes.guess_type(path.name)
        self.fetched.append(url)
        return URLFetcherResponse(
            url,
            body=path.read_bytes(),
            headers={"Content-Type": content_type or "application/octet-stream"},
        )


def static_roots():
    """Return the resolved directories that the staticfiles finders read files from.

    Everything in them is public anyway, because the web server serves them
    under ``STATIC_URL``.
    """
    roots = set()
    for finder in finders.get_finders():
        for storage in getattr(finder, "storages", {}).values():
            location = getattr(storage, "location", None)
            if location:
                roots.add(Path(location).resolve())
    return sorted(roots)


def static_file_url(relative_path):
    """Return the ``file:`` URL of a static file, or raise if the finders cannot find it."""
    path = finders.find(relative_path)
    if path is None:
        raise FileNotFoundError(
            f"Static file {relative_path!r} not found by the staticfiles finders"
        )
    return path2url(path)


def render_pdf(report):
    """Render the auditor PDF of a ready report and return its bytes."""
    _require_ready(report)

    fetcher = StaticFileFetcher()
    html = render_to_string(TEMPLATE, pdf_context(report))
    document = HTML(string=html, url_fetcher=fetcher)
    pdf = document.write_pdf(font_config=FontConfiguration())
    logger.info(
        "rendered PDF of report %s: %d bytes, %d static files, %d rejected URLs",
        report.public_id,
        len(pdf),
        len(fetcher.fetched),
        len(fetcher.rejected),
    )
    return pdf


def ensure_pdf(report):
    """Render and store the report's PDF and its SHA-256 once, so later calls change nothing.

    The stored file is what auditors download, so it is never re-rendered.
    When the worker and a download render at the same time, the first to
    record its file wins and the other deletes its copy and loads the winner's.
    """
    _require_ready(report)
    if report.pdf and report.pdf_sha256:
        return report

    pdf = render_pdf(report)
    digest = hashlib.sha256(pdf).hexdigest()
    stored_name = _save_file(report, pdf)

    # Conditional update, so no transaction stays open while rendering.
    recorded = Report.objects.filter(pk=report.pk, pdf_sha256="").update(
        pdf=stored_name, pdf_sha256=digest
    )
    if not recorded:
        report.pdf.storage.delete(stored_name)
        report.refresh_from_db(fields=["pdf", "pdf_sha256"])
        logger.info(
            "PDF of report %s was stored concurrently, so this render was discarded",
            report.public_id,
        )
        return report

    report.pdf.name = stored_name
    report.pdf_sha256 = digest
    logger.info("stored PDF of report %s as %s, sha256 %s", report.public_id, stored_name, digest)
    return report


def _save_file(report, pdf):
    """Write the PDF to the field's storage under ``upload_to`` and return the stored name."""
    field = report.pdf.field
    name = field.generate_filename(report, pdf_file_name(report))
    return report.pdf.storage.save(name, ContentFile(pdf), max_length=field.max_length)


def pdf_file_name(report):
    """Return the download name, e.g. ``maip-report-01J...-SOC2-2026-03-01-2026-03-28.pdf``."""
    report_id = report.public_id.replace(":", "-")
    return f"{report_id}-{report.regulation}-{report.period_start}-{report.period_end}.pdf"


def _require_ready(report):
    if report.status != ReportStatus.READY:
        raise ValueError(
            f"Report {report.public_id} is {report.status}, not ready. "
            "Request its PDF once the report is ready."
        )


def pdf_context(report):
    """Return the template context of the PDF: report facts, summary tables and findings."""
    summary = report.summary or {}
    zone = report.tenant.zone
    regulation_label = _label(Regulation, report.regulation)
    return {
        "product_name": settings.PRODUCT_NAME,
        "report": report,
        "stylesheet_url": static_file_url(STYLESHEET),
        "document_title": f"Compliance report {report.public_id}",
        "subject": f"{regulation_label} compliance of {report.entity.name}, "
        f"{report.period_start} to {report.period_end}",
        "tenant_name": report.tenant.name,
        "entity_name": report.entity.name,
        "entity_type": _label(EntityType, report.entity.entity_type),
        "regulation_name": regulation_label,
        "time_zone": summary.get("time_zone") or report.tenant.time_zone,
        "generated_at": _local_timestamp(report.generated_at, zone),
        "generated_at_iso": report.generated_at.isoformat() if report.generated_at else "",
        "is_demo": uses_demo_data(report),
        "score": summary.get("compliance_score"),
        "previous": summary.get("previous_period") or {},
        "check_rows": _check_rows(summary),
        "check_total": (summary.get("checks") or {}).get("total", 0),
        "control_rows": _control_rows(summary),
        "severity_rows": _severity_rows(summary),
        "trend_chart": trend_chart_svg(
            summary.get("trend"),
            width=CHART_WIDTH,
            height=CHART_HEIGHT,
            id_prefix="pdf-trend",
        ),
        "finding_rows": [_finding_row(entry, zone) for entry in report.findings or []],
        "missing_controls": _missing_controls(report, summary),
    }


def uses_demo_data(report):
    """Return whether any check of the report's entity and regulation in its period is demo data."""
    lower, upper = period_bounds(report.period_start, report.period_end, report.tenant.zone)
    return Check.objects.filter(
        tenant_id=report.tenant_id,
        entity_id=report.entity_id,
        regulation=report.regulation,
        created_at__gte=lower,
        created_at__lt=upper,
        is_demo=True,
    ).exists()


def _label(choices, value):
    """Return the display label of a choices value, or the raw value if it is not a member."""
    try:
        return choices(value).label
    except ValueError:
        return str(value)


def _badge(value, label):
    return {"value": value, "label": label, "colour": status_colour(value)}


def _check_rows(summary):
    by_status = (summary.get("checks") or {}).get("by_status") or {}
    return [
        {"badge": _badge(status, _label(CheckStatus, status)), "count": by_status.get(status, 0)}
        for status in (
            CheckStatus.PASSED,
            CheckStatus.PARTIAL,
            CheckStatus.FAILED,
            CheckStatus.PENDING,
        )
    ]


def _control_rows(summary):
    controls = summary.get("controls") or {}
    rows = [
        ("Controls in scope", "total", None),
        ("Assessed", "assessed", None),
        ("Passing", "passing", FindingStatus.PASS),
        ("Failing", "failing", FindingStatus.FAIL),
        ("Not assessed", "not_assessed", FindingStatus.NOT_ASSESSED),
        ("Not applicable", "not_applicable", FindingStatus.NOT_APPLICABLE),
    ]
    result = []
    for label, key, status in rows:
        colour = status_colour(status) if status else None
        result.append({"label": label, "count": controls.get(key, 0), "colour": colour})
    return result


def _severity_rows(summary):
    counts = summary.get("open_findings_by_severity") or {}
    order = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW)
    return [
        {"label": _label(Severity, severity), "count": counts.get(severity, 0)}
        for severity in order
    ]


def _finding_row(entry, zone):
    return {
        "control_id": entry.get("control_id", ""),
        "control_title": entry.get("control_title", ""),
        "badge": _badge(entry.get("status"), _label(FindingStatus, entry.get("status"))),
        "severity": _label(Severity, entry.get("severity")),
        "title": entry.get("title", ""),
        "first_seen": _local_timestamp(_parse_timestamp(entry.get("first_seen")), zone),
        "last_seen": _local_timestamp(_parse_timestamp(entry.get("last_seen")), zone),
    }


def _missing_controls(report, summary):
    """Return the ID and title of each catalog control without evidence, in catalog order."""
    control_ids = summary.get("controls_without_evidence") or []
    titles = dict(
        Control.objects.filter(
            regulation=report.regulation, control_id__in=control_ids
        ).values_list("control_id", "title")
    )
    return [
        {"control_id": control_id, "title": titles.get(control_id, "")}
        for control_id in control_ids
    ]


def _parse_timestamp(value):
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


def _local_timestamp(value, zone):
    """Format an aware datetime as ``2026-03-02 14:05`` in the tenant's time zone."""
    if value is None:
        return ""
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")
