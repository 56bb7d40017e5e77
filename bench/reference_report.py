"""The report aggregation as it was before the daily rollups: every finding of the period.

``build_report_from_findings`` is kept unchanged as the reference that the
rollup-based ``compliance.reports.aggregation.build_report`` must match
exactly (``tests/test_aggregation_equivalence.py``) and as a baseline of
``bench/run.py``. It scans every finding of the period, so its cost grows
with the number of checks.
"""

import datetime as dt
from collections import Counter

from django.db.models import Case, Count, F, IntegerField, Max, Min, Value, When, Window
from django.db.models.functions import RowNumber

from compliance.catalog.loader import CATALOG_VERSION
from compliance.catalog.models import Control
from compliance.checks.models import Check, CheckStatus, Finding, FindingStatus
from compliance.checks.rollup_queries import FailureRun
from compliance.reports.aggregation import (
    SEVERITY_ORDER,
    STATUS_PRECEDENCE,
    compliance_score,
    isoformat_z,
    period_bounds,
    remediation_fields,
    remediation_summary,
)


def _rank(field, ordered_values):
    whens = [
        When(**{field: value}, then=Value(index)) for index, value in enumerate(ordered_values)
    ]
    return Case(*whens, default=Value(len(ordered_values)), output_field=IntegerField())


def _findings_in(tenant, entity, regulation, lower, upper):
    return Finding.objects.filter(
        tenant=tenant,
        entity=entity,
        regulation=regulation,
        observed_at__gte=lower,
        observed_at__lt=upper,
    )


def latest_per_control(findings):
    """Return the latest finding of each control in ``findings``.

    Findings are ranked as the ``compliance.reports.aggregation`` docstring states.
    """
    ranked = findings.annotate(
        position=Window(
            RowNumber(),
            partition_by=[F("control_id")],
            order_by=[
                F("observed_at").desc(),
                _rank("status", STATUS_PRECEDENCE).asc(),
                _rank("severity", SEVERITY_ORDER).asc(),
                F("id").desc(),
            ],
        )
    )
    return ranked.filter(position=1)


def _control_counts(latest_statuses, catalog_ids):
    """Count controls by their latest status over the catalog plus evidenced controls."""
    all_ids = set(catalog_ids) | set(latest_statuses)
    passing = sum(1 for status in latest_statuses.values() if status == FindingStatus.PASS)
    failing = sum(1 for status in latest_statuses.values() if status == FindingStatus.FAIL)
    not_applicable = sum(
        1 for status in latest_statuses.values() if status == FindingStatus.NOT_APPLICABLE
    )
    assessed = passing + failing
    return {
        "total": len(all_ids),
        "assessed": assessed,
        "passing": passing,
        "failing": failing,
        "not_applicable": not_applicable,
        "not_assessed": len(all_ids) - assessed - not_applicable,
    }


def _bucket_size(days):
    if days <= 31:
        return "day"
    if days <= 183:
        return "week"
    return "month"


def _bucket_start(day, granularity):
    if granularity == "week":
        return day - dt.timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day


def _next_bucket(start, granularity):
    if granularity == "day":
        return start + dt.timedelta(days=1)
    if granularity == "week":
        return start + dt.timedelta(days=7)
    return (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _trend(findings, checks, start, end, zone):
    """Return the posture at the end of each day, week or month bucket of the period.

    Each point's score uses every finding from the period start up to the end
    of its bucket, so it shows the state an auditor would have seen then.
    Buckets follow the tenant's local calendar, so DST changes do not shift them.
    """
    granularity = _bucket_size((end - start).days + 1)
    rows = findings.order_by("observed_at", "id").values_list("control_id", "observed_at", "status")
    check_days = Counter(
        created.astimezone(zone).date() for created in checks.values_list("created_at", flat=True)
    )

    points = []
    state = {}
    pending = iter(rows)
    row = next(pending, None)
    bucket = _bucket_start(start, granularity)
    while bucket <= end:
        bucket_end = min(_next_bucket(bucket, granularity) - dt.timedelta(days=1), end)
        while row is not None and row[1].astimezone(zone).date() <= bucket_end:
            control_id, observed_at, status = row
            previous = state.get(control_id)
            # Within one instant the conservative status wins, as in latest_per_control.
            if (
                previous is None
                or previous[0] != observed_at
                or STATUS_PRECEDENCE.index(status) < STATUS_PRECEDENCE.index(previous[1])
            ):
                state[control_id] = (observed_at, status)
            row = next(pending, None)
        statuses = [status for _, status in state.values()]
        passing = statuses.count(FindingStatus.PASS)
        failing = statuses.count(FindingStatus.FAIL)
        check_count = sum(
            count for day, count in check_days.items() if max(bucket, start) <= day <= bucket_end
        )
        points.append(
            {
                "start": max(bucket, start).isoformat(),
                "end": bucket_end.isoformat(),
                "score": compliance_score(passing, passing + failing),
                "failing_controls": failing,
                "checks": check_count,
            }
        )
        bucket = _next_bucket(bucket, granularity)
    return {"granularity": granularity, "points": points}


def _period_score(tenant, entity, regulation, start, end, zone):
    lower, upper = period_bounds(start, end, zone)
    latest = latest_per_control(_findings_in(tenant, entity, regulation, lower, upper))
    statuses = list(latest.values_list("status", flat=True))
    passing = statuses.count(FindingStatus.PASS)
    failing = statuses.count(FindingStatus.FAIL)
    return compliance_score(passing, passing + failing)


def build_report_from_findings(tenant, entity, regulation, start, end):
    """Return ``(summary, findings)`` for one entity, regulation and period.

    ``findings`` contains one entry per control with evidence in the period,
    in catalog order (controls outside the catalog last, by ID).
    """
    zone = tenant.zone
    lower, upper = period_bounds(start, end, zone)
    findings = _findings_in(tenant, entity, regulation, lower, upper)
    checks = Check.objects.filter(
        tenant=tenant,
        entity=entity,
        regulation=regulation,
        created_at__gte=lower,
        created_at__lt=upper,
    )

    latest = list(latest_per_control(findings))
    seen = {
        row["control_id"]: row
        for row in findings.values("control_id").annotate(
            first_seen=Min("observed_at"), last_seen=Max("observed_at"), observations=Count("id")
        )
    }
    catalog = {
        control.control_id: control
        for control in Control.objects.filter(regulation=regulation).order_by("sort_key")
    }

    latest_statuses = {finding.control_id: finding.status for finding in latest}
    controls = _control_counts(latest_statuses, catalog)
    by_status = dict.fromkeys(CheckStatus.values, 0)
    for row in checks.values("status").annotate(count=Count("id")):
        by_status[row["status"]] = row["count"]
    open_by_severity = dict.fromkeys(reversed(SEVERITY_ORDER), 0)
    for finding in latest:
        if finding.status == FindingStatus.FAIL:
            open_by_severity[finding.severity] += 1

    days = (end - start).days + 1
    previous_end = start - dt.timedelta(days=1)
    previous_start = previous_end - dt.timedelta(days=days - 1)
    score = compliance_score(controls["passing"], controls["assessed"])
    previous_score = _period_score(tenant, entity, regulation, previous_start, previous_end, zone)

    summary = {
        "checks": {"total": sum(by_status.values()), "by_status": by_status},
        "controls": controls,
        "compliance_score": score,
        "open_findings_by_severity": open_by_severity,
        "controls_without_evidence": [
            control_id for control_id in catalog if control_id not in latest_statuses
        ],
        "trend": _trend(findings, checks, start, end, zone),
        "previous_period": {
            "period_start": previous_start.isoformat(),
            "period_end": previous_end.isoformat(),
            "compliance_score": previous_score,
            "change": None
            if score is None or previous_score is None
            else round(score - previous_score, 1),
        },
        "time_zone": tenant.time_zone,
        "catalog_version": CATALOG_VERSION,
    }

    order = {control_id: index for index, control_id in enumerate(catalog)}
    latest.sort(key=lambda finding: (order.get(finding.control_id, len(order)), finding.control_id))
    entries = [_finding_entry(finding, catalog.get(finding.control_id), seen) for finding in latest]
    runs = failure_runs_from_findings(findings)
    for entry in entries:
        entry.update(remediation_fields(entry["status"], runs.get(entry["control_id"])))
    summary["remediation"] = remediation_summary(entries)
    return summary, entries


def failure_runs_from_findings(findings):
    """Return ``{control: FailureRun}`` by walking every finding of the period in time order."""
    instants = {}
    for control_id, observed_at, status in findings.values_list(
        "control_id", "observed_at", "status"
    ):
        instants.setdefault(control_id, {}).setdefault(observed_at, set()).add(status)

    runs = {}
    for control_id, statuses_at in instants.items():
        failing_since = last_failed_at = remediated_at = None
        passed_since_failure = False
        for moment in sorted(statuses_at):
            statuses = statuses_at[moment]
            if FindingStatus.FAIL in statuses:
                # A fail outranks a pass at the same instant, so only a pass alone ends a run.
                if failing_since is None or passed_since_failure:
                    failing_since = moment
                last_failed_at, remediated_at = moment, None
                passed_since_failure = False
            elif FindingStatus.PASS in statuses:
                passed_since_failure = True
                if last_failed_at is not None and remediated_at is None:
                    remediated_at = moment
        if last_failed_at is not None:
            runs[control_id] = FailureRun(control_id, failing_since, last_failed_at, remediated_at)
    return runs


def _finding_entry(finding, control, seen):
    history = seen[finding.control_id]
    return {
        "control_id": finding.control_id,
        "control_title": control.title if control else "",
        "status": finding.status,
        "severity": finding.severity,
        "finding_id": finding.finding_id,
        "title": finding.title,
        "description": finding.description,
        "remediation": finding.remediation,
        "check_id": str(finding.compliance_check_id),
        "first_seen": isoformat_z(history["first_seen"]),
        "last_seen": isoformat_z(history["last_seen"]),
        "observations": history["observations"],
    }
