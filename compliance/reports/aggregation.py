"""Compute a period report: the one function behind the API, the pages and the PDF.

Rules, applied in this order:

* The period runs from the start of ``period_start`` to the end of
  ``period_end`` (both inclusive) in the tenant's time zone.
* A control's status is that of its latest finding in the period. Findings
  observed at the same instant are ranked fail, not assessed, pass, not
  applicable (the most conservative first), then by severity (highest
  first), then by finding row id (newest first), so the choice is
  deterministic.
* Controls are counted over the catalog plus any control that has evidence.
  "Not applicable" controls leave the denominator; a control with no
  evidence is "not assessed", never passing.
* The compliance score is passing / (passing + failing) as a percentage
  rounded half up to one decimal, or ``None`` when nothing was assessed.
* A control is remediated when a passing finding follows its last failing
  finding in the period. Its failing run starts at the first failing finding
  after the latest earlier instant at which it passed (a pass at the same
  instant as a fail does not count), or at its first failing finding in the
  period, so a run that began before the period is counted from the period's
  start. The time to remediate is from that start to the first passing
  finding, in whole seconds. The summary gives the median over the
  remediated controls, rounded half up to whole seconds.

The numbers come from the rollups (``compliance.checks.rollups``), not from
the findings. One row per control and local day keeps that day's latest
finding under the ranking above, so the latest day row of a control in a
period contains the period's latest finding. One row per control and
month folds the month's day rows. Only the failing runs read findings, with
a few index seeks per control. The cost of a report grows with the controls
and trend buckets of its period, not with the number of checks.
"""

import datetime as dt
import statistics
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

from compliance.catalog.loader import CATALOG_VERSION
from compliance.catalog.models import Control
from compliance.checks.models import CheckStatus, DailyCheckRollup, FindingStatus
from compliance.checks.rollup_queries import bucket_states, failure_runs, latest_findings
from compliance.checks.rollups import SEVERITY_ORDER, STATUS_PRECEDENCE

__all__ = [
    "SEVERITY_ORDER",
    "STATUS_PRECEDENCE",
    "build_report",
    "compliance_score",
    "isoformat_z",
    "period_bounds",
    "remediation_fields",
    "remediation_summary",
]

CHECK_STATUSES = CheckStatus.values
# Bucket indices of ``bucket_states``: the previous period, then the trend's buckets.
PREVIOUS_PERIOD = 0
FIRST_TREND_BUCKET = 1


class RemediationState:
    """Values of a finding entry's ``remediation_state``."""

    REMEDIATED = "remediated"
    STILL_FAILING = "still_failing"
    # Failed, then only not assessed or not applicable: no pass confirms a fix.
    NOT_REMEDIATED = "not_remediated"
    NO_FAILURE = "no_failure"


def compliance_score(passing, assessed):
    """Return passing/assessed as a percentage with one decimal, or ``None`` if unassessed."""
    if assessed == 0:
        return None
    ratio = Decimal(passing) * 100 / Decimal(assessed)
    return float(ratio.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def period_bounds(start, end, zone):
    """Return the aware datetimes [start of ``start``, start of the day after ``end``)."""
    lower = dt.datetime.combine(start, dt.time.min, tzinfo=zone)
    upper = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    return lower, upper


def isoformat_z(value):
    """Format an aware datetime as ISO 8601 in UTC with a ``Z`` suffix."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


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


def _buckets(start, end, granularity):
    """Return the trend's ``(first day, last day)`` buckets, cut to the period."""
    buckets = []
    bucket = _bucket_start(start, granularity)
    while bucket <= end:
        bucket_end = min(_next_bucket(bucket, granularity) - dt.timedelta(days=1), end)
        buckets.append((max(bucket, start), bucket_end))
        bucket = _next_bucket(bucket, granularity)
    return buckets


def _checks_per_day(tenant, entity, regulation, start, end):
    """Return ``{day: {status: count}}`` of the checks created in the period."""
    rows = DailyCheckRollup.objects.filter(
        tenant=tenant, entity=entity, regulation=regulation, day__gte=start, day__lte=end
    ).values_list("day", *CHECK_STATUSES)
    return {day: dict(zip(CHECK_STATUSES, counts, strict=True)) for day, *counts in rows}


def _trend(states, checks_per_day, buckets, granularity):
    """Return the posture at the end of each day, week or month bucket of the period.

    Each point's score uses every finding from the period start up to the end
    of its bucket, so it shows the state an auditor would have seen then.
    Buckets follow the tenant's local calendar, so DST changes do not shift them.
    """
    by_bucket = defaultdict(list)
    for state in states:
        by_bucket[state.bucket].append(state)

    points = []
    posture = {}
    for index, (bucket_start, bucket_end) in enumerate(buckets, start=FIRST_TREND_BUCKET):
        for state in by_bucket[index]:
            posture[state.control_id] = state.status
        statuses = list(posture.values())
        passing = statuses.count(FindingStatus.PASS)
        failing = statuses.count(FindingStatus.FAIL)
        check_count = sum(
            sum(counts.values())
            for day, counts in checks_per_day.items()
            if bucket_start <= day <= bucket_end
        )
        points.append(
            {
                "start": bucket_start.isoformat(),
                "end": bucket_end.isoformat(),
                "score": compliance_score(passing, passing + failing),
                "failing_controls": failing,
                "checks": check_count,
            }
        )
    return {"granularity": granularity, "points": points}


def _period_history(states):
    """Return ``({control: last day}, {control: (first seen, observations)})`` of the period."""
    last_days, history = {}, {}
    for state in states:
        if state.bucket == PREVIOUS_PERIOD:
            continue
        if state.control_id not in last_days or state.last_day > last_days[state.control_id]:
            last_days[state.control_id] = state.last_day
        first, count = history.get(state.control_id, (state.first_observed_at, 0))
        history[state.control_id] = (
            min(first, state.first_observed_at),
            count + state.observations,
        )
    return last_days, history


def remediation_fields(status, run):
    """Return the remediation fields of a finding entry from its latest status and failing run.

    ``run`` is the control's ``FailureRun`` in the period, or ``None`` when
    it did not fail there.
    """
    if run is None:
        state = RemediationState.NO_FAILURE
    elif run.remediated_at is not None:
        state = RemediationState.REMEDIATED
    elif status == FindingStatus.FAIL:
        state = RemediationState.STILL_FAILING
    else:
        state = RemediationState.NOT_REMEDIATED

    seconds = None
    if state == RemediationState.REMEDIATED:
        seconds = int((run.remediated_at - run.failing_since).total_seconds())
    return {
        "remediation_state": state,
        "failing_since": isoformat_z(run.failing_since) if run else None,
        "remediated_at": isoformat_z(run.remediated_at)
        if state == RemediationState.REMEDIATED
        else None,
        "time_to_remediate_seconds": seconds,
    }


def remediation_summary(entries):
    """Return the summary's remediation counts and median from the finding entries."""
    times = [
        entry["time_to_remediate_seconds"]
        for entry in entries
        if entry["remediation_state"] == RemediationState.REMEDIATED
    ]
    median = None
    if times:
        median = int(
            Decimal(str(statistics.median(times))).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        )
    still_failing = sum(
        1 for entry in entries if entry["remediation_state"] == RemediationState.STILL_FAILING
    )
    return {
        "remediated_controls": len(times),
        "still_failing_controls": still_failing,
        "median_time_to_remediate_seconds": median,
    }


def _previous_score(states):
    """Return the compliance score of the previous period from its last day rows."""
    statuses = [state.status for state in states if state.bucket == PREVIOUS_PERIOD]
    passing = statuses.count(FindingStatus.PASS)
    failing = statuses.count(FindingStatus.FAIL)
    return compliance_score(passing, passing + failing)


def build_report(tenant, entity, regulation, start, end):
    """Return ``(summary, findings)`` for one entity, regulation and period.

    ``findings`` contains one entry per control with evidence in the period,
    in catalog order (controls outside the catalog last, by ID).
    """
    days = (end - start).days + 1
    previous_end = start - dt.timedelta(days=1)
    previous_start = previous_end - dt.timedelta(days=days - 1)
    granularity = _bucket_size(days)
    buckets = _buckets(start, end, granularity)

    # Bucket 0 is the whole previous period, and the trend's buckets follow it.
    bucket_ends = [previous_end, *(bucket_end for _, bucket_end in buckets)]
    states = bucket_states(tenant, entity, regulation, previous_start, bucket_ends)
    checks_per_day = _checks_per_day(tenant, entity, regulation, start, end)
    catalog = {
        control.control_id: control
        for control in Control.objects.visible_to(tenant)
        .filter(regulation=regulation)
        .order_by("sort_key", "control_id")
    }

    last_days, history = _period_history(states)
    latest = latest_findings(tenant, entity, regulation, last_days)
    lower, upper = period_bounds(start, end, tenant.zone)
    runs = failure_runs(tenant, entity, regulation, lower, upper, latest)
    latest_statuses = {control_id: finding.status for control_id, finding in latest.items()}
    controls = _control_counts(latest_statuses, catalog)
    by_status = dict.fromkeys(CHECK_STATUSES, 0)
    for counts in checks_per_day.values():
        for status, count in counts.items():
            by_status[status] += count
    open_by_severity = dict.fromkeys(reversed(SEVERITY_ORDER), 0)
    for finding in latest.values():
        if finding.status == FindingStatus.FAIL:
            open_by_severity[finding.severity] += 1

    score = compliance_score(controls["passing"], controls["assessed"])
    previous_score = _previous_score(states)

    summary = {
        "checks": {"total": sum(by_status.values()), "by_status": by_status},
        "controls": controls,
        "compliance_score": score,
        "open_findings_by_severity": open_by_severity,
        "controls_without_evidence": [
            control_id for control_id in catalog if control_id not in latest_statuses
        ],
        "trend": _trend(states, checks_per_day, buckets, granularity),
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
    entries = _finding_entries(latest, history, runs, catalog)
    summary["remediation"] = remediation_summary(entries)
    return summary, entries


def _finding_entries(latest, history, runs, catalog):
    """Return the per-control entries in catalog order (controls outside it last, by ID)."""
    order = {control_id: index for index, control_id in enumerate(catalog)}
    control_ids = sorted(
        latest, key=lambda control_id: (order.get(control_id, len(order)), control_id)
    )

    entries = []
    for control_id in control_ids:
        finding = latest[control_id]
        control = catalog.get(control_id)
        first_seen, observations = history[control_id]
        entries.append(
            {
                "control_id": control_id,
                "control_title": control.title if control else "",
                "status": finding.status,
                "severity": finding.severity,
                "finding_id": finding.finding_id,
                "title": finding.title,
                "description": finding.description,
                "remediation": finding.remediation,
                "check_id": str(finding.check_id),
                "first_seen": isoformat_z(first_seen),
                "last_seen": isoformat_z(finding.observed_at),
                "observations": observations,
                **remediation_fields(finding.status, runs.get(control_id)),
            }
        )
    return entries
