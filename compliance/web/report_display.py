"""Turn a ready report's stored ``summary`` and ``findings`` into rows for the detail page.

The report digest covers the stored JSON, so this module never changes it.
It orders the counts for people and parses the ISO timestamps, so templates can
show them in the tenant's time zone. It also looks up the titles of controls
without evidence.
"""

import datetime as dt

from compliance.catalog.models import Control, Severity
from compliance.checks.models import CheckStatus
from compliance.reports.charts import trend_chart_svg
from compliance.reports.presentation import remediation_summary_text, remediation_text

SEVERITIES_HIGHEST_FIRST = [Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW]
CONTROL_COUNTS = [
    ("assessed", "Assessed"),
    ("passing", "Passing"),
    ("failing", "Failing"),
    ("not_assessed", "Not assessed"),
    ("not_applicable", "Not applicable"),
]


def parse_timestamp(value):
    """Return an aware datetime for an ISO 8601 string such as ``2026-03-02T10:00:00Z``."""
    if not value:
        return None
    return dt.datetime.fromisoformat(value)


def check_rows(summary):
    """Return ``(status, label, count)`` for each check status, in the order of ``CheckStatus``."""
    by_status = summary["checks"]["by_status"]
    return [(status, status.label, by_status.get(status.value, 0)) for status in CheckStatus]


def control_rows(summary):
    controls = summary["controls"]
    return [(label, controls.get(key, 0)) for key, label in CONTROL_COUNTS]


def severity_rows(summary):
    """Return ``(severity, label, count)`` of open findings, highest severity first."""
    counts = summary["open_findings_by_severity"]
    return [
        (severity.value, severity.label, counts.get(severity.value, 0))
        for severity in SEVERITIES_HIGHEST_FIRST
    ]


def finding_rows(findings, zone):
    """Return the report's per-control findings with timestamps parsed and remediation worded."""
    return [
        {
            **finding,
            "first_seen": parse_timestamp(finding["first_seen"]),
            "last_seen": parse_timestamp(finding["last_seen"]),
            "remediation_text": remediation_text(finding, zone),
        }
        for finding in findings
    ]


def controls_without_evidence(report):
    """Return ``(control_id, title)`` for each catalog control the report found no evidence for."""
    control_ids = report.summary.get("controls_without_evidence", [])
    controls = Control.objects.visible_to(report.tenant_id).filter(
        regulation=report.regulation, control_id__in=control_ids
    )
    titles = dict(controls.values_list("control_id", "title"))
    return [(control_id, titles.get(control_id, "")) for control_id in control_ids]


def ready_report_context(report):
    """Return the template context of a ready report's executive summary, chart and findings."""
    summary = report.summary
    return {
        "score": summary["compliance_score"],
        "previous_period": summary["previous_period"],
        "checks_total": summary["checks"]["total"],
        "check_rows": check_rows(summary),
        "controls_total": summary["controls"]["total"],
        "control_rows": control_rows(summary),
        "severity_rows": severity_rows(summary),
        "open_findings_total": sum(count for _, _, count in severity_rows(summary)),
        "trend_chart": trend_chart_svg(summary["trend"]),
        "trend_granularity": summary["trend"]["granularity"],
        "finding_rows": finding_rows(report.findings or [], report.tenant.zone),
        "remediation_summary": remediation_summary_text(summary),
        "controls_without_evidence": controls_without_evidence(report),
    }
