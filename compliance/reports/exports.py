"""CSV and XLSX exports of a ready report's findings, rendered from the stored report JSON.

The exports read ``report.summary`` and ``report.findings`` as stored, which
the report digest covers, and never aggregate again. So a download cannot
disagree with the page, the API or the PDF of the same report.
"""

import logging

from compliance.catalog.models import Severity
from compliance.checks.exports import csv_response, write_xlsx_sheet, xlsx_response
from compliance.checks.models import CheckStatus
from compliance.reports.aggregation import isoformat_z
from compliance.reports.downloads import set_report_headers
from compliance.reports.models import ReportStatus

logger = logging.getLogger(__name__)

# Column titles and the keys of the stored finding entries they show, in order.
FINDING_COLUMNS = [
    ("Control ID", "control_id"),
    ("Control title", "control_title"),
    ("Status", "status"),
    ("Severity", "severity"),
    ("Finding title", "title"),
    ("Description", "description"),
    ("Remediation", "remediation"),
    ("First seen", "first_seen"),
    ("Last seen", "last_seen"),
    ("Observations", "observations"),
    ("Check ID", "check_id"),
    ("Remediation state", "remediation_state"),
    ("Failing since", "failing_since"),
    ("Remediated at", "remediated_at"),
    ("Time to remediate (s)", "time_to_remediate_seconds"),
]
FINDING_WIDTHS = [14, 40, 14, 10, 50, 60, 60, 22, 22, 12, 38, 16, 22, 22, 20]
SUMMARY_HEADER = ["Field", "Value"]
SUMMARY_WIDTHS = [34, 74]
CONTROL_COUNTS = [
    ("Controls in scope", "total"),
    ("Controls assessed", "assessed"),
    ("Controls passing", "passing"),
    ("Controls failing", "failing"),
    ("Controls not assessed", "not_assessed"),
    ("Controls not applicable", "not_applicable"),
]
SEVERITIES_HIGHEST_FIRST = [Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW]


def require_ready(report):
    """Raise ``ValueError`` unless the report is ready, because only ready reports have findings."""
    if report.status != ReportStatus.READY:
        raise ValueError(
            f"Report {report.public_id} is {report.status}, not ready. "
            "Export its findings once the report is ready."
        )


def finding_rows(report):
    """Return one row per control in the report's stored findings, in the columns above."""
    return [[entry.get(key) for _, key in FINDING_COLUMNS] for entry in report.findings or []]


def summary_rows(report):
    """Return ``(field, value)`` rows of the report facts and the stored summary numbers.

    Counts and scores are numbers. A score that the report does not have
    (nothing assessed, or no previous period) is ``None`` and exports as an
    empty cell.
    """
    return [
        *_fact_rows(report),
        *_score_rows(report.summary),
        *_count_rows(report.summary),
        *_remediation_rows(report.summary),
    ]


def _fact_rows(report):
    return [
        ("Report ID", report.public_id),
        ("Digest", report.digest),
        ("Regulation", report.regulation),
        ("Entity", report.entity.name),
        ("Entity type", report.entity.entity_type),
        ("Entity ID", str(report.entity_id)),
        ("Period start", report.period_start.isoformat()),
        ("Period end", report.period_end.isoformat()),
        ("Time zone", report.summary.get("time_zone", "")),
        ("Generated at", isoformat_z(report.generated_at)),
    ]


def _score_rows(summary):
    previous = summary.get("previous_period") or {}
    return [
        ("Compliance score (%)", summary.get("compliance_score")),
        ("Previous period start", previous.get("period_start")),
        ("Previous period end", previous.get("period_end")),
        ("Previous period score (%)", previous.get("compliance_score")),
        ("Score change (points)", previous.get("change")),
    ]


def _count_rows(summary):
    controls = summary["controls"]
    checks = summary["checks"]
    open_findings = summary["open_findings_by_severity"]
    rows = [(label, controls.get(key, 0)) for label, key in CONTROL_COUNTS]
    rows.append(("Checks", checks["total"]))
    rows += [
        (f"Checks {status.label.lower()}", checks["by_status"].get(status.value, 0))
        for status in CheckStatus
    ]
    rows.append(("Open findings", sum(open_findings.values())))
    rows += [
        (f"Open findings, {severity.label.lower()}", open_findings.get(severity.value, 0))
        for severity in SEVERITIES_HIGHEST_FIRST
    ]
    return rows


def _remediation_rows(summary):
    """Return the remediation rows, or none for reports generated before they existed."""
    remediation = summary.get("remediation")
    if remediation is None:
        return []
    return [
        ("Controls remediated", remediation["remediated_controls"]),
        ("Controls still failing", remediation["still_failing_controls"]),
        ("Median time to remediate (s)", remediation["median_time_to_remediate_seconds"]),
    ]


def export_filename(report, file_format):
    """Return the download name, e.g. ``maip-report-01J...-findings.csv``, with ``-`` for ``:``.

    Windows rejects ``:`` in file names.
    """
    return f"{report.public_id.replace(':', '-')}-findings.{file_format}"


def report_findings_response(report, file_format):
    """Return the findings of a ready report as a CSV or XLSX attachment.

    The CSV contains the findings alone. The XLSX puts a summary sheet first. Both
    carry the report digest in ``X-Report-Digest``, so a download can be tied
    to the report it came from.
    """
    require_ready(report)
    filename = export_filename(report, file_format)
    logger.info(
        "exporting %d findings of report %s as %s",
        len(report.findings or []),
        report.public_id,
        file_format,
    )

    header = [title for title, _ in FINDING_COLUMNS]
    if file_format == "csv":
        response = csv_response(filename, header, finding_rows(report))
    elif file_format == "xlsx":
        title = f"Findings of {report.public_id}"
        response = xlsx_response(filename, title, lambda book: _fill(book, report, header))
    else:
        raise ValueError(f"Unknown export format {file_format!r}; expected csv or xlsx.")
    return set_report_headers(response, report)


def _fill(workbook, report, header):
    write_xlsx_sheet(workbook, "Summary", SUMMARY_HEADER, summary_rows(report), SUMMARY_WIDTHS)
    write_xlsx_sheet(workbook, "Findings", header, finding_rows(report), FINDING_WIDTHS)
