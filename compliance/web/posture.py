"""Compliance posture of a tenant or one entity, for the overview and entity pages.

A control's status at an instant is the status of its latest finding before
that instant. Findings of the same instant are ranked as in
``compliance.reports.aggregation``: fail first, then not assessed, pass and
not applicable, then the higher severity, then the newer row. Only findings
inside the window count, so a control last observed before the window has
no status in it.

The posture is replayed from one ordered query of the window's findings, so
the latest statuses, the trend and the changes of the last week agree.
"""

import datetime as dt
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, replace

from django.db.models import OuterRef, Subquery

from compliance.catalog.models import Regulation, Severity
from compliance.checks.models import (
    Check,
    CheckStatus,
    DailyCheckRollup,
    Finding,
    FindingStatus,
    MonthlyControlRollup,
)
from compliance.checks.rollup_queries import bucket_states
from compliance.inventory.models import Entity
from compliance.reports.aggregation import (
    SEVERITY_ORDER,
    STATUS_PRECEDENCE,
    compliance_score,
    period_bounds,
)
from compliance.tenancy.scope import scope_of, visible_regulations

logger = logging.getLogger(__name__)

ASSESSED_STATUSES = (FindingStatus.PASS, FindingStatus.FAIL)
STATUS_RANK = {status.value: index for index, status in enumerate(STATUS_PRECEDENCE)}
SEVERITY_RANK = {severity.value: index for index, severity in enumerate(SEVERITY_ORDER)}


@dataclass(frozen=True)
class Observation:
    """One finding, reduced to what the posture needs."""

    regulation: str
    entity_id: object
    control_id: str
    observed_at: dt.datetime
    status: str
    severity: str
    check_id: object

    @property
    def key(self):
        return (self.regulation, self.entity_id, self.control_id)

    @property
    def regulation_label(self):
        return Regulation(self.regulation).label


# Trend bucket lengths in days and their names; any other length is a "period".
GRANULARITY_BY_DAYS = {1: "day", 7: "week"}


def observations(findings):
    """Yield ``findings`` as ``Observation`` objects in observation order, from one query."""
    rows = findings.order_by("observed_at", "id").values_list(
        "regulation",
        "entity_id",
        "control_id",
        "observed_at",
        "status",
        "severity",
        "compliance_check_id",
    )
    for row in rows.iterator(chunk_size=2000):
        yield Observation(*row)


def outranks(new, old):
    """Return whether ``new`` replaces ``old`` as the latest observation of its control.

    Observations arrive ordered by time and row id, so a later instant always
    wins, and at the same instant a newer row wins unless its status or
    severity ranks lower.
    """
    if new.observed_at != old.observed_at:
        return True
    unknown = len(STATUS_RANK) + len(SEVERITY_RANK)
    new_rank = (STATUS_RANK.get(new.status, unknown), SEVERITY_RANK.get(new.severity, unknown))
    old_rank = (STATUS_RANK.get(old.status, unknown), SEVERITY_RANK.get(old.severity, unknown))
    return new_rank <= old_rank


class Replay:
    """The latest observation per (regulation, entity, control), advanced through time.

    ``counts`` keeps the number of controls per regulation and status up to
    date on every step, so a trend point costs no rescan.
    """

    def __init__(self, ordered_observations, snapshot_at=None):
        self._pending = iter(ordered_observations)
        self._next = next(self._pending, None)
        self._snapshot_at = snapshot_at
        self._snapshot = None
        self.latest = {}
        self.counts = defaultdict(Counter)

    def advance(self, until):
        """Apply every observation made before the instant ``until``."""
        while self._next is not None and self._next.observed_at < until:
            self._snapshot_before(self._next.observed_at)
            self._apply(self._next)
            self._next = next(self._pending, None)

    def statuses_at_snapshot(self):
        """Return ``{key: status}`` as it was just before the ``snapshot_at`` instant.

        Valid once the replay has advanced past that instant, or to its end.
        """
        if self._snapshot is not None:
            return self._snapshot
        return self._statuses()

    def _statuses(self):
        return {key: observation.status for key, observation in self.latest.items()}

    def _snapshot_before(self, instant):
        if (
            self._snapshot is None
            and self._snapshot_at is not None
            and instant >= self._snapshot_at
        ):
            self._snapshot = self._statuses()

    def score(self, regulation):
        counts = self.counts[regulation]
        passing, failing = counts[FindingStatus.PASS], counts[FindingStatus.FAIL]
        return compliance_score(passing, passing + failing)

    def _apply(self, observation):
        previous = self.latest.get(observation.key)
        if previous is not None:
            if not outranks(observation, previous):
                return
            self.counts[previous.regulation][previous.status] -= 1
        self.latest[observation.key] = observation
        self.counts[observation.regulation][observation.status] += 1


def buckets(start, end, days):
    """Return ``(first day, last day)`` pairs of ``days`` days from ``start`` to ``end``.

    The last bucket ends at ``end`` and may be shorter.
    """
    pairs = []
    first = start
    while first <= end:
        last = min(first + dt.timedelta(days=days - 1), end)
        pairs.append((first, last))
        first = last + dt.timedelta(days=1)
    return pairs


def replay_trend(replay, day_ranges, zone, check_days=None):
    """Advance ``replay`` through ``day_ranges`` and return each regulation's trend points.

    The points have the shape of a report's ``summary["trend"]["points"]``,
    so ``trend_chart_svg`` draws them. ``check_days`` maps a regulation to a
    ``Counter`` of local dates with checks; without it every point counts 0 checks.
    """
    points = {regulation.value: [] for regulation in Regulation}
    for first, last in day_ranges:
        _, upper = period_bounds(first, last, zone)
        replay.advance(upper)
        for regulation, series in points.items():
            days = (check_days or {}).get(regulation, Counter())
            series.append(
                {
                    "start": first.isoformat(),
                    "end": last.isoformat(),
                    "score": replay.score(regulation),
                    "failing_controls": replay.counts[regulation][FindingStatus.FAIL],
                    "checks": sum(count for day, count in days.items() if first <= day <= last),
                }
            )
    return points


@dataclass(frozen=True)
class RegulationPosture:
    """One regulation's posture over the window: the overview's card of that regulation."""

    regulation: Regulation
    observed: int
    passing: int
    failing: int
    entities_assessed: int
    failing_controls: int
    open_by_severity: list
    trend: dict

    @property
    def score(self):
        return compliance_score(self.passing, self.passing + self.failing)

    @property
    def has_evidence(self):
        """Whether any finding of the regulation was recorded in the window, of any status."""
        return self.observed > 0

    @property
    def open_findings(self):
        return sum(count for _, _, count in self.open_by_severity)


@dataclass(frozen=True)
class StatusChange:
    """A control of one entity whose status flipped between pass and fail in the last week."""

    before: str
    after: Observation

    @property
    def is_regression(self):
        return self.after.status == FindingStatus.FAIL


@dataclass(frozen=True)
class EntityRisk:
    """An entity's failing controls of high or critical severity, across regulations."""

    entity_id: object
    critical: int
    high: int

    @property
    def total(self):
        return self.critical + self.high


@dataclass(frozen=True)
class TenantPosture:
    regulations: list
    changes: list
    at_risk: list


def regulation_posture(regulation, latest, trend):
    """Summarise the latest observations of one regulation, across the tenant's entities."""
    observed = [obs for obs in latest if obs.regulation == regulation.value]
    failing = [obs for obs in observed if obs.status == FindingStatus.FAIL]
    by_severity = Counter(obs.severity for obs in failing)
    return RegulationPosture(
        regulation=regulation,
        observed=len(observed),
        passing=sum(1 for obs in observed if obs.status == FindingStatus.PASS),
        failing=len(failing),
        entities_assessed=len(
            {obs.entity_id for obs in observed if obs.status in ASSESSED_STATUSES}
        ),
        failing_controls=len({obs.control_id for obs in failing}),
        open_by_severity=[
            (severity.value, severity.label, by_severity[severity.value])
            for severity in SEVERITY_ORDER
        ],
        trend={"granularity": "day", "points": trend},
    )


def status_changes(before, latest, cutoff):
    """Return controls whose status went from pass to fail or back since ``cutoff``.

    The comparison is between the state at ``cutoff`` and now, so a control
    that failed and recovered within the week is no change. Regressions come
    first, then the highest severity, then the newest.
    """
    changes = [
        StatusChange(before=before[obs.key], after=obs)
        for obs in latest
        if obs.observed_at >= cutoff
        and obs.status in ASSESSED_STATUSES
        and before.get(obs.key) in ASSESSED_STATUSES
        and before[obs.key] != obs.status
    ]
    changes.sort(key=lambda change: change.after.observed_at, reverse=True)
    changes.sort(key=lambda change: SEVERITY_RANK.get(change.after.severity, len(SEVERITY_RANK)))
    changes.sort(key=lambda change: not change.is_regression)
    return changes


def entities_at_risk(latest, limit):
    """Return up to ``limit`` entities with the most failing high and critical controls."""
    critical, high = Counter(), Counter()
    for obs in latest:
        if obs.status != FindingStatus.FAIL:
            continue
        if obs.severity == Severity.CRITICAL:
            critical[obs.entity_id] += 1
        elif obs.severity == Severity.HIGH:
            high[obs.entity_id] += 1

    risks = [
        EntityRisk(entity_id=entity_id, critical=critical[entity_id], high=high[entity_id])
        for entity_id in set(critical) | set(high)
    ]
    risks.sort(key=lambda risk: (-risk.critical, -risk.total, str(risk.entity_id)))
    return risks[:limit]


def tenant_posture(tenant, today, now, *, window_days, change_days, at_risk_limit):
    """Return the tenant's posture per regulation over the last ``window_days`` local days.

    Reads the window's findings in one query.
    NOTE: it replays every finding of the window in memory, which suits
    thousands of findings a month; a far larger tenant needs stored daily
    snapshots instead.
    """
    start = today - dt.timedelta(days=window_days - 1)
    lower, _ = period_bounds(start, today, tenant.zone)
    cutoff = now - dt.timedelta(days=change_days)
    findings = Finding.objects.for_tenant(tenant).filter(
        observed_at__gte=lower, observed_at__lte=now
    )

    replay = Replay(observations(findings), snapshot_at=cutoff)
    trends = replay_trend(replay, buckets(start, today, 1), tenant.zone)
    replay.advance(now + dt.timedelta(microseconds=1))

    latest = list(replay.latest.values())
    before = replay.statuses_at_snapshot()
    return TenantPosture(
        regulations=[
            regulation_posture(regulation, latest, trends[regulation.value])
            for regulation in visible_regulations(tenant)
        ],
        changes=status_changes(before, latest, cutoff),
        at_risk=entities_at_risk(latest, at_risk_limit),
    )


def entity_trends(entity, today, *, window_days, bucket_days):
    """Return ``{regulation value: trend}`` of one entity over the last ``window_days`` days.

    A point counts the controls of that regulation, each once, as a report of
    the same period would at the end of the point's bucket. The points come
    from the daily and monthly rollups that reports read, one query per
    regulation and one for the check counts, so the cost follows the days and
    controls of the window, not the number of findings.
    """
    start = today - dt.timedelta(days=window_days - 1)
    day_ranges = buckets(start, today, bucket_days)
    bucket_ends = [last for _, last in day_ranges]
    granularity = GRANULARITY_BY_DAYS.get(bucket_days, "period")

    # The rollups are read with raw SQL, which for_tenant does not reach, so the
    # caller's access scope is applied here. Rows before its first day and rows of
    # other regulations are not read, and states after its last day are dropped.
    scope = scope_of(entity.tenant)
    first_day = max(start, scope.start) if scope.start else start
    last_day = min(today, scope.end) if scope.end else today

    check_days = defaultdict(Counter)
    check_rows = DailyCheckRollup.objects.filter(
        tenant=entity.tenant, entity=entity, day__gte=first_day, day__lte=last_day
    ).values_list("regulation", "day", *CheckStatus.values)
    for regulation, day, *counts in check_rows:
        check_days[regulation][day] += sum(counts)

    trends = {}
    for regulation in Regulation:
        states = []
        if scope.allows_regulation(regulation) and first_day <= last_day:
            states = scoped_bucket_states(entity, regulation, first_day, last_day, bucket_ends)
        points = trend_points(states, day_ranges, check_days[regulation.value])
        trends[regulation.value] = {"granularity": granularity, "points": points}
    return trends


def scoped_bucket_states(entity, regulation, first_day, last_day, bucket_ends):
    """Return ``bucket_states`` of the days from ``first_day`` to ``last_day`` only.

    Buckets that end before ``first_day`` are left out of the query, because
    a whole month inside such a bucket would be read from its month row,
    days before ``first_day`` included. Their indices stay those of
    ``bucket_ends``.
    """
    skipped = sum(1 for end in bucket_ends if end < first_day)
    kept_ends = bucket_ends[skipped:]
    states = bucket_states(entity.tenant, entity, regulation.value, first_day, kept_ends)
    # NOTE: a bucket that spans ``last_day`` loses a control whose latest row in
    # it is after that day, even when an earlier row of it lies inside.
    return [
        replace(state, bucket=state.bucket + skipped)
        for state in states
        if state.last_day <= last_day
    ]


def trend_points(states, day_ranges, check_days):
    """Return one trend point per bucket from ``bucket_states`` rows of one regulation.

    A control keeps the status of its latest bucket with rows, so a bucket
    without new findings shows the state carried over from the buckets before.
    """
    states_by_bucket = defaultdict(list)
    for state in states:
        states_by_bucket[state.bucket].append(state)

    statuses = {}
    points = []
    for index, (first, last) in enumerate(day_ranges):
        for state in states_by_bucket[index]:
            statuses[state.control_id] = state.status
        counts = Counter(statuses.values())
        passing, failing = counts[FindingStatus.PASS], counts[FindingStatus.FAIL]
        points.append(
            {
                "start": first.isoformat(),
                "end": last.isoformat(),
                "score": compliance_score(passing, passing + failing),
                "failing_controls": failing,
                "checks": sum(count for day, count in check_days.items() if first <= day <= last),
            }
        )
    return points


def latest_checks(tenant, entity_ids):
    """Return ``{entity_id: {regulation value: Check}}``: each entity's newest check per regulation.

    Two queries, whatever the number of entities. The first finds the newest
    check of each entity and regulation with one subquery per regulation,
    which reads a few rows of the (tenant, entity, regulation, created_at)
    index, where ranking every check of an entity with 50,000 checks took
    about 180 ms on PostgreSQL. The second loads those checks.
    """
    newest = {
        f"newest_{regulation.value.lower()}": Subquery(
            Check.objects.for_tenant(tenant)
            .filter(entity=OuterRef("pk"), regulation=regulation.value)
            .order_by("-created_at", "-id")
            .values("pk")[:1]
        )
        for regulation in Regulation
    }
    rows = (
        Entity.objects.for_tenant(tenant)
        .filter(pk__in=list(entity_ids))
        .annotate(**newest)
        .values_list(*newest)
    )
    check_ids = [check_id for row in rows for check_id in row if check_id is not None]
    checks = (
        Check.objects.for_tenant(tenant)
        .filter(pk__in=check_ids)
        .only("id", "entity_id", "regulation", "status", "source", "created_at", "is_demo")
    )
    by_entity = defaultdict(dict)
    for check in checks:
        by_entity[check.entity_id][check.regulation] = check
    return by_entity


def latest_findings(entity):
    """Return the latest finding of each (regulation, control) of ``entity``, in two queries.

    Unlike the posture window this reads the whole history, because a failing
    control stays open until a newer finding of it shows otherwise. The newest
    month rollup of a control names that finding, ranked at one instant as
    reports rank findings, so no query scans the entity's findings.
    """
    months = MonthlyControlRollup.objects.filter(tenant=entity.tenant, entity=entity)
    scope_end = scope_of(entity.tenant).end
    if scope_end is not None:
        # NOTE: a month whose latest row is after the scope's last day is skipped
        # whole, so the control shows its finding of an earlier month, if any.
        months = months.filter(last_day__lte=scope_end)
    months = months.order_by("regulation", "control_id", "-month").values_list(
        "regulation", "control_id", "latest_finding_id"
    )
    latest_ids = {}
    for regulation, control_id, finding_id in months:
        latest_ids.setdefault((regulation, control_id), finding_id)
    return list(
        Finding.objects.for_tenant(entity.tenant)
        .filter(entity=entity, pk__in=list(latest_ids.values()))
        .defer("evidence", "description")
    )
