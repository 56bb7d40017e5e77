"""The auditor PDF of a ready report, rendered by WeasyPrint from an HTML template.

The PDF is a PDF/A-3b file with bookmarks, document metadata, a methodology
appendix and the report's API body attached as ``report.json``, so an auditor
can file it and re-check the digest from the file alone.

Rendering never touches the network or files outside the static directories:
``StaticFileFetcher`` serves only files that the staticfiles finders locate
(the stylesheet and the bundled fonts) plus ``data:`` URLs, and rejects
every other URL. Report content enters the HTML through auto-escaped template
variables, so a finding title cannot add markup, images or stylesheets.
"""

import datetime as dt
import hashlib
import json
import logging
import mimetypes
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Count
from django.template.loader import render_to_string
from django.urls import reverse
from weasyprint import HTML, Attachment
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse, path2url

from compliance.audit.models import AuditAction
from compliance.audit.services import actor_of, origin_request_id, record_event
from compliance.catalog.models import Control, Regulation, Requirement, Severity
from compliance.checks.models import Check, CheckSource, CheckStatus, FindingStatus
from compliance.inventory.models import EntityType
from compliance.reports.aggregation import STATUS_PRECEDENCE, isoformat_z, period_bounds
from compliance.reports.charts import trend_chart_svg
from compliance.reports.models import Report, ReportStatus
from compliance.reports.presentation import (
    remediation_summary_text,
    remediation_text,
    status_colour,
)
from compliance.reports.services import report_audit_details, report_body
from compliance.reports.signing import configured_material, sign_pdf, signing_enabled

logger = logging.getLogger(__name__)

TEMPLATE = "reports/report_pdf.html"
STYLESHEET = "reports/report_pdf.css"
CHART_WIDTH = 640
CHART_HEIGHT = 220
PDF_VARIANT = "pdf/a-3b"
JSON_ATTACHMENT_NAME = "report.json"
# PDF/A-3 relationship of the attached JSON: the source the pages are rendered from.
JSON_ATTACHMENT_RELATIONSHIP = "Source"
SOURCE_LABELS = {
    CheckSource.AUTOMATED: "Automated rules",
    CheckSource.IMPORTED: "Imported scanner results",
    CheckSource.API: "Submitted through the API",
}


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
    """Render the auditor PDF of a ready report as PDF/A-3b with its JSON attached.

    Return the PDF bytes. ``ensure_pdf`` stores them once, so their SHA-256
    identifies the file that auditors download.
    """
    _require_ready(report)

    fetcher = StaticFileFetcher()
    html = render_to_string(TEMPLATE, pdf_context(report))
    document = HTML(string=html, url_fetcher=fetcher)
    pdf = document.write_pdf(
        font_config=FontConfiguration(),
        pdf_variant=PDF_VARIANT,
        attachments=[json_attachment(report, fetcher)],
        finisher=finish_pdf,
    )
    logger.info(
        "rendered PDF of report %s: %d bytes, %d static files, %d rejected URLs",
        report.public_id,
        len(pdf),
        len(fetcher.fetched),
        len(fetcher.rejected),
    )
    return pdf


def finish_pdf(document, pdf):
    """Open viewers on the bookmarks panel and list each associated file once.

    WeasyPrint 70 adds every attachment to the catalog's ``/AF`` array twice
    when it writes PDF/A-3, so the duplicates are removed in place.
    """
    pdf.catalog["PageMode"] = "/UseOutlines"

    associated = pdf.catalog.get("AF")
    if associated is not None:
        associated[:] = list(dict.fromkeys(associated))


def api_body_json(report):
    """Serialise ``report_body`` to the bytes the API sends: compact UTF-8 JSON.

    The options match Django REST framework's ``JSONRenderer`` with the
    project's settings (compact, unescaped non-ASCII, no NaN), including its
    escaping of U+2028 and U+2029.
    """
    text = json.dumps(
        report_body(report), ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text.encode()


def json_attachment(report, fetcher):
    """Return the ``report.json`` attachment, dated at the report's generation time."""
    generated = report.generated_at.astimezone(dt.UTC)
    return Attachment(
        string=api_body_json(report),
        name=JSON_ATTACHMENT_NAME,
        description=f"API body of report {report.public_id}, digest included",
        created=generated,
        modified=generated,
        relationship=JSON_ATTACHMENT_RELATIONSHIP,
        url_fetcher=fetcher,
    )


def ensure_pdf(report, request=None):
    """Render, sign if configured, and store the report's PDF and its SHA-256 once.

    ``request`` is the download or verification request that needs the PDF,
    whose caller becomes the actor of the ``pdf_rendered`` event. The worker
    passes none. Later calls change nothing. The stored file is what auditors download,
    so it is never re-rendered. When the worker and a download render at the same time, the first to
    record its file wins and the other deletes its copy and loads the winner's.
    """
    _require_ready(report)
    if report.pdf and report.pdf_sha256:
        return report

    pdf = render_pdf(report)
    signing_certificate = None
    if signing_enabled():
        material = configured_material()
        pdf = sign_pdf(pdf, material, reason=f"Issued report {report.public_id}")
        signing_certificate = material.fingerprint
    digest = hashlib.sha256(pdf).hexdigest()
    stored_name = _save_file(report, pdf)

    # Conditional update, so no transaction stays open while rendering. The
    # audit event commits with it, so every stored PDF has its event.
    with transaction.atomic():
        recorded = Report.objects.filter(pk=report.pk, pdf_sha256="").update(
            pdf=stored_name, pdf_sha256=digest
        )
        if recorded:
            record_rendered(report, digest, len(pdf), signing_certificate, request=request)
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


def record_rendered(report, pdf_sha256, size, signing_certificate=None, request=None):
    """Record the stored PDF's SHA-256 next to the report's JSON digest in the audit trail.

    The event ties the file auditors download to the report it renders, so an
    auditor can look up a PDF's hash in the trail. Its actor is the user or
    API key of ``request``, the request that triggered the render. A render
    by the worker has no request and so no actor. The event carries the
    request id of the download, or else of the report request.
    ``signing_certificate`` is the SHA-256 fingerprint of the certificate
    that signed the PDF, or ``None`` for an unsigned PDF.
    """
    user, api_key = actor_of(request) if request is not None else (None, None)
    details = report_audit_details(report, digest=report.digest, pdf_sha256=pdf_sha256)
    details["pdf_bytes"] = size
    details["signed"] = signing_certificate is not None
    if signing_certificate:
        details["signing_certificate_sha256"] = signing_certificate
    record_event(
        AuditAction.PDF_RENDERED,
        tenant=report.tenant,
        user=user,
        api_key=api_key,
        target=report,
        details=details,
        request_id=origin_request_id(AuditAction.REPORT_REQUESTED, report),
    )


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
    checks = period_checks(report)
    return {
        "product_name": settings.PRODUCT_NAME,
        "report": report,
        "stylesheet_url": static_file_url(STYLESHEET),
        "document_title": f"Compliance report {report.public_id}",
        "subject": f"{regulation_label} compliance of {report.entity.name}, "
        f"{report.period_start} to {report.period_end}",
        "keywords": _keywords(report, regulation_label),
        "tenant_name": report.tenant.name,
        "entity_name": report.entity.name,
        "entity_type": _label(EntityType, report.entity.entity_type),
        "regulation_name": regulation_label,
        "time_zone": summary.get("time_zone") or report.tenant.time_zone,
        "generated_at": _local_timestamp(report.generated_at, zone),
        "generated_at_w3c": _w3c_timestamp(report.generated_at),
        "is_demo": checks.filter(is_demo=True).exists(),
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
        "trend_granularity": (summary.get("trend") or {}).get("granularity"),
        "finding_rows": _finding_rows(report, zone),
        "remediation_summary": remediation_summary_text(summary),
        "missing_controls": _missing_controls(report, summary),
        "methodology": methodology_context(report, summary, checks),
    }


def period_checks(report):
    """Return the checks that fed the report: its entity and regulation, created in its period.

    These are the checks that ``build_report`` counts in ``summary.checks``.
    """
    lower, upper = period_bounds(report.period_start, report.period_end, report.tenant.zone)
    return Check.objects.filter(
        tenant_id=report.tenant_id,
        entity_id=report.entity_id,
        regulation=report.regulation,
        created_at__gte=lower,
        created_at__lt=upper,
    )


def methodology_context(report, summary, checks):
    """Return the facts of the methodology appendix: evidence, versions, rules and bounds.

    The source counts and versions are queried when the PDF is rendered,
    because the stored summary does not contain them.
    NOTE: a check imported after generation with a time inside the period
    appears here but not in the report's numbers. ``late_checks`` is the
    difference, and the appendix prints a warning when it is not zero.
    """
    sources = evidence_sources(checks)
    counted = sum(row["count"] for row in sources)
    reported = (summary.get("checks") or {}).get("total", 0)
    if counted != reported:
        logger.warning(
            "report %s counts %d checks but %d are in its period now",
            report.public_id,
            reported,
            counted,
        )
    versions = automated_versions(checks)
    return {
        "sources": sources,
        "check_count": counted,
        "late_checks": counted - reported,
        "catalog_version": summary.get("catalog_version") or "",
        "automated_versions": versions,
        "versions_missing": any(row["recorded"] is False for row in versions),
        "score": _score_facts(summary),
        "tie_break": [_label(FindingStatus, status).lower() for status in STATUS_PRECEDENCE],
        "bounds": _period_facts(report, summary),
        "verification": _verification_facts(report),
    }


def evidence_sources(checks):
    """Return one row per check source, with its check count and the tools that sent them.

    Every source has a row, so a zero count is printed rather than left out.
    ``names`` lists ``source_name`` values with their counts and is empty when
    no check of that source names a tool (automated checks never do).
    """
    counts = list(
        checks.values("source", "source_name")
        .annotate(count=Count("id"))
        .order_by("source", "source_name")
    )
    rows = []
    for source in (CheckSource.AUTOMATED, CheckSource.IMPORTED, CheckSource.API):
        mine = [row for row in counts if row["source"] == source]
        names = [
            {"name": row["source_name"] or "(no source name)", "count": row["count"]}
            for row in mine
        ]
        if not any(row["source_name"] for row in mine):
            names = []
        rows.append(
            {
                "label": SOURCE_LABELS[source],
                "count": sum(row["count"] for row in mine),
                "names": names,
            }
        )
    return rows


def automated_versions(checks):
    """Return the catalog and rule-set versions of the automated checks, with check counts.

    Checks stored before the versions were recorded have empty fields, which
    print as "not recorded", and their row has ``recorded`` false.
    """
    rows = (
        checks.filter(source=CheckSource.AUTOMATED)
        .values("catalog_version", "rule_set_version")
        .annotate(count=Count("id"))
        .order_by("catalog_version", "rule_set_version")
    )
    return [
        {
            "catalog_version": row["catalog_version"] or "not recorded",
            "rule_set_version": row["rule_set_version"] or "not recorded",
            "count": row["count"],
            "recorded": bool(row["catalog_version"] and row["rule_set_version"]),
        }
        for row in rows
    ]


def _score_facts(summary):
    controls = summary.get("controls") or {}
    return {
        "passing": controls.get("passing", 0),
        "failing": controls.get("failing", 0),
        "not_applicable": controls.get("not_applicable", 0),
        "not_assessed": controls.get("not_assessed", 0),
        "value": summary.get("compliance_score"),
    }


def _period_facts(report, summary):
    """Return the period's first and after-last instant, local and in UTC.

    The report covers ``[start, end)``: from midnight at the start of
    ``period_start`` to midnight after ``period_end`` in the tenant's zone.
    """
    zone = report.tenant.zone
    lower, upper = period_bounds(report.period_start, report.period_end, zone)
    return {
        "time_zone": summary.get("time_zone") or report.tenant.time_zone,
        "start_local": _local_timestamp(lower, zone),
        "end_local": _local_timestamp(upper, zone),
        "start_utc": isoformat_z(lower),
        "end_utc": isoformat_z(upper),
    }


def _verification_facts(report):
    return {
        "attachment_name": JSON_ATTACHMENT_NAME,
        "report_path": reverse("api:report-detail", kwargs={"report_id": report.public_id}),
        "verification_path": reverse(
            "api:report-verification", kwargs={"report_id": report.public_id}
        ),
        "verify_page_path": reverse("web:report-verify"),
    }


def _keywords(report, regulation_label):
    """Return the PDF keywords: comma-separated, so no keyword may contain a comma."""
    words = [
        "compliance report",
        regulation_label,
        report.entity.name,
        report.tenant.name,
        report.public_id,
    ]
    return ", ".join(word.replace(",", " ") for word in words)


def _w3c_timestamp(value):
    """Format a datetime as ``2026-03-21T10:05:00Z``, the form WeasyPrint copies into the PDF."""
    if value is None:
        return ""
    return isoformat_z(value.replace(microsecond=0))


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


def _finding_rows(report, zone):
    requirements = _requirement_labels(report, [e.get("control_id") for e in report.findings or []])
    return [_finding_row(entry, zone, requirements) for entry in report.findings or []]


def _requirement_labels(report, control_ids):
    """Return ``{control ID: "Required" or "Addressable"}`` for the HIPAA controls that carry one.

    The marks come from the catalog at render time, like the titles of the
    controls without evidence, so they are not covered by the report digest.
    """
    if report.regulation != Regulation.HIPAA:
        return {}
    rows = (
        Control.objects.visible_to(report.tenant_id)
        .filter(regulation=report.regulation, control_id__in=control_ids)
        .exclude(requirement="")
        .values_list("control_id", "requirement")
    )
    return {control_id: Requirement(value).label for control_id, value in rows}


def _finding_row(entry, zone, requirements):
    return {
        "control_id": entry.get("control_id", ""),
        "requirement": requirements.get(entry.get("control_id"), ""),
        "control_title": entry.get("control_title", ""),
        "badge": _badge(entry.get("status"), _label(FindingStatus, entry.get("status"))),
        "severity": _label(Severity, entry.get("severity")),
        "title": entry.get("title", ""),
        "first_seen": _local_timestamp(_parse_timestamp(entry.get("first_seen")), zone),
        "last_seen": _local_timestamp(_parse_timestamp(entry.get("last_seen")), zone),
        "remediation": remediation_text(entry, zone),
    }


def _missing_controls(report, summary):
    """Return the ID and title of each catalog control without evidence, in catalog order."""
    control_ids = summary.get("controls_without_evidence") or []
    titles = dict(
        Control.objects.visible_to(report.tenant_id)
        .filter(regulation=report.regulation, control_id__in=control_ids)
        .values_list("control_id", "title")
    )
    requirements = _requirement_labels(report, control_ids)
    return [
        {
            "control_id": control_id,
            "title": titles.get(control_id, ""),
            "requirement": requirements.get(control_id, ""),
        }
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
