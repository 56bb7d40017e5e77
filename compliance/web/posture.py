"""Compliance posture of a tenant or one entity, for the overview and entity pages.

Both read the control rollups. A day row keeps a control's latest finding
of a local day in the tenant's time zone, ranked as in
``compliance.reports.aggregation``: the later instant, then fail before not
assessed, pass and not applicable, then the higher severity, then the newer
row. So the cost follows entities, controls and days, not findings.

For the tenant, a control of an entity has on a day the status of its
latest day row from the window's first day up to that day. A control last
observed before the window has no status in it. The overview's numbers
follow from that:

* the score, failing controls and open findings count each control of each
  entity once, with the status of its latest day row in the window;
* the trend has one point per day, with the statuses at the end of that day;
* "what changed" compares the statuses at the end of the local day
  ``change_days`` days before today with the latest ones, and lists a
  control whose latest row is from a later day. So a control that failed
  and recovered in that time is no change. This is the state at the end of
  a day, not at the instant ``change_days`` times 24 hours ago.

Today's rows count whole, so a finding stamped later today already counts.
"""

import datetime as dt
import logging
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, replace

from django.db import connection
from django.db.models import OuterRef, Subquery

from compliance.catalog.models import Regulation
from compliance.checks.models import (
    Check,
    CheckStatus,
    DailyCheckRollup,
    DailyControlRollup,
    Finding,
    FindingStatus,
    MonthlyControlRollup,
)
from compliance.checks.rollup_queries import KEY_SPAN, bucket_states
from compliance.checks.rollups import tie_rank
from compliance.inventory.models import Entity
from compliance.reports.aggregation import SEVERITY_ORDER, compliance_score
from compliance.tenancy.scope import scope_of, visible_regulations

logger = logging.getLogger(__name__)

ASSESSED_STATUSES = (FindingStatus.PASS, FindingStatus.FAIL)
# Plain strings, because reading an enum member's value is slow in loops over many rows.
PASS, FAIL = FindingStatus.PASS.value, FindingStatus.FAIL.value
SEVERITY_RANK = {severity.value: index for index, severity in enumerate(SEVERITY_ORDER)}
# A status's tie ranks run from its critical rank to its rank for an unknown severity.
STATUS_RANKS = {
    status.value: (tie_rank(status, SEVERITY_ORDER[0]), tie_rank(status, None))
    for status in FindingStatus
}
STATUS_OF_RANK = {
    rank: status for status, (low, high) in STATUS_RANKS.items() for rank in range(low, high + 1)
}
SEVERITY_OF_RANK = {
    tie_rank(status, severity): severity.value
    for status in FindingStatus
    for severity in SEVERITY_ORDER
}
# The days of the window are bits of a signed 32-bit sum, so the window has at most 31 days.
MAX_WINDOW_DAYS = 31
# The number of days from ``%s`` to ``{day}``, as an integer.
DAY_INDEX_SQL = {
    "postgresql": "({day} - %s)",
    "sqlite": "CAST(julianday({day}) - julianday(%s) AS INTEGER)",
}

# Trend bucket lengths in days and their names; any other length is a "period".
GRANULARITY_BY_DAYS = {1: "day", 7: "week"}


@dataclass(frozen=True)
class Observation:
    """The latest day row of one control of one entity: its winning finding's outcome."""

    regulation: str
    entity_id: object
    control_id: str
    observed_at: dt.datetime
    status: str
    severity: str
    check_id: object

    @property
    def regulation_label(self):
        return Regulation(self.regulation).label


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
    """A control of one entity whose status flipped between pass and fail in the last days."""

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


@dataclass(frozen=True)
class DayStatuses:
    """The days of the window on which a control has a day row, as bit masks.

    Bit ``i`` is the window's day ``i``. ``fail_days`` and
    ``pass_days`` mark the days whose row failed or passed, and
    ``observed_days`` every day with a row, of any status.
    """

    fail_days: int
    pass_days: int
    observed_days: int

    def steps(self):
        """Yield ``(day index, status)`` for each day with a row, oldest first.

        The status is ``None`` for a row that neither passed nor failed.
        """
        days = self.observed_days
        while days:
            lowest = days & -days
            status = None
            if self.fail_days & lowest:
                status = FAIL
            elif self.pass_days & lowest:
                status = PASS
            yield lowest.bit_length() - 1, status
            days ^= lowest

    def status_before(self, day_index):
        """Return the status of the last row before the window's day ``day_index``.

        Return ``None`` when no row lies before it, or when that row neither
        passed nor failed.
        """
        earlier = self.observed_days & ((1 << day_index) - 1)
        if not earlier:
            return None
        latest = 1 << (earlier.bit_length() - 1)
        if self.fail_days & latest:
            return FAIL
        if self.pass_days & latest:
            return PASS
        return None


def tenant_posture(tenant, today, *, window_days, change_days, at_risk_limit):
    """Return the tenant's posture per regulation over the last ``window_days`` local days.

    Reads the window's day rows in one statement. Only the regulations that
    the caller's scope shows get a card.
    """
    if not 0 < change_days < window_days <= MAX_WINDOW_DAYS:
        raise ValueError(
            f"Invalid posture window: {window_days} days with changes over {change_days} "
            f"days. Expected 0 < change_days < window_days <= {MAX_WINDOW_DAYS}."
        )
    start = today - dt.timedelta(days=window_days - 1)
    change_index = window_days - change_days

    # The rollups are read with raw SQL, which for_tenant does not reach, so the
    # caller's access scope is applied here as in entity_trends.
    scope = scope_of(tenant)
    first_day = max(start, scope.start) if scope.start else start
    last_day = min(today, scope.end) if scope.end else today
    rows = []
    if first_day <= last_day:
        rows = posture_rows(tenant, start, first_day, last_day, change_index, at_risk_limit)

    parts = defaultdict(list)
    for row in rows:
        parts[row[0]].append(row[1:])

    trends = tenant_trends(parts["history"], start, window_days)
    regulations = [
        regulation_posture(regulation, parts, trends[regulation.value])
        for regulation in visible_regulations(tenant)
    ]
    return TenantPosture(
        regulations=regulations,
        changes=status_changes(parts["change"], change_index),
        at_risk=entities_at_risk(parts["risk"], at_risk_limit),
    )


def posture_rows(tenant, start, first_day, last_day, change_index, at_risk_limit):
    """Return the rows of the posture statement: ``(part, regulation, ...)`` per part.

    The statement groups the day rows from ``first_day`` to ``last_day`` into
    one state per control and entity (``key_states``), then reads these
    parts of it, each a branch of one ``UNION ALL`` with the same columns:

    * ``change``: each control whose latest row is from the window's day
      ``change_index`` or later, passes or fails, and has an earlier row,
      with that latest row's time and check. It comes first because
      PostgreSQL resolves the column types of a ``UNION`` pairwise from the
      left, and this branch types every column;
    * ``statuses``: the number of controls per regulation and latest tie rank;
    * ``history``: the number of controls per regulation and ``DayStatuses``;
    * ``entities``: per regulation, the entities with a passing or failing control;
    * ``controls``: per regulation, the control IDs failing on any entity;
    * ``risk``: the failing critical and high controls of the ``at_risk_limit``
      entities with the most of them, per entity and tie rank.

    Each state takes one pass over its rows: a day index packed above the tie
    rank lets ``MAX`` pick the latest day's rank, and the days of each
    status are summed as bits.
    """
    table, column = _names(DailyControlRollup)
    day_index = DAY_INDEX_SQL[connection.vendor].format(day=column["day"])
    conditions = [f"{column['tenant']} = %s", f"{column['day']} BETWEEN %s AND %s"]
    params = [
        _date(start),
        _tenant_value(tenant),
        _date(first_day),
        _date(last_day),
    ]
    scope = scope_of(tenant)
    if scope.entity_ids is not None:
        conditions.append(f"{column['entity']} IN ({', '.join(['%s'] * len(scope.entity_ids))})")
        entity_field = DailyControlRollup._meta.get_field("entity")
        params += [entity_field.get_db_prep_value(pk, connection) for pk in scope.entity_ids]
    if scope.regulations is not None:
        regulations = sorted(scope.regulations)
        conditions.append(f"{column['regulation']} IN ({', '.join(['%s'] * len(regulations))})")
        params += regulations

    fail_low, fail_high = STATUS_RANKS[FindingStatus.FAIL]
    pass_low, pass_high = STATUS_RANKS[FindingStatus.PASS]
    is_failing = f"latest_rank BETWEEN {fail_low} AND {fail_high}"
    is_assessed = f"({is_failing} OR latest_rank BETWEEN {pass_low} AND {pass_high})"
    critical = tie_rank(FindingStatus.FAIL, SEVERITY_ORDER[0])
    high = tie_rank(FindingStatus.FAIL, SEVERITY_ORDER[1])
    earlier_days = (1 << change_index) - 1
    sql = f"""
        WITH window_rows AS (
            SELECT {column["regulation"]} AS regulation, {column["entity"]} AS entity_id,
                   {column["control_id"]} AS control_id, {column["day"]} AS day_value,
                   {column["tie_rank"]} AS tie_rank, {day_index} AS day_index
            FROM {table}
            WHERE {" AND ".join(conditions)}
        ),
        key_states AS (
            SELECT regulation, entity_id, control_id, MAX(day_value) AS latest_day,
                   MAX(day_index * {KEY_SPAN} + tie_rank) %% {KEY_SPAN} AS latest_rank,
                   SUM(CASE WHEN tie_rank BETWEEN {fail_low} AND {fail_high}
                       THEN 1 << day_index ELSE 0 END) AS fail_days,
                   SUM(CASE WHEN tie_rank BETWEEN {pass_low} AND {pass_high}
                       THEN 1 << day_index ELSE 0 END) AS pass_days,
                   SUM(1 << day_index) AS observed_days
            FROM window_rows
            GROUP BY regulation, entity_id, control_id
        )
        SELECT 'change' AS part, k.regulation, k.entity_id, k.control_id, k.latest_rank,
               k.fail_days, k.pass_days, k.observed_days,
               r.{column["observed_at"]} AS observed_at,
               r.{column["compliance_check"]} AS check_id, 1 AS number
        FROM key_states k
        JOIN {table} r
          ON r.{column["tenant"]} = %s AND r.{column["entity"]} = k.entity_id
         AND r.{column["regulation"]} = k.regulation AND r.{column["day"]} = k.latest_day
         AND r.{column["control_id"]} = k.control_id
        WHERE k.latest_day >= %s AND (k.observed_days & {earlier_days}) <> 0 AND {is_assessed}
        UNION ALL
        SELECT 'statuses', regulation, NULL, NULL, latest_rank, NULL, NULL, NULL, NULL, NULL,
               COUNT(*)
        FROM key_states
        GROUP BY regulation, latest_rank
        UNION ALL
        SELECT 'history', regulation, NULL, NULL, NULL, fail_days, pass_days, observed_days,
               NULL, NULL, COUNT(*)
        FROM key_states
        GROUP BY regulation, fail_days, pass_days, observed_days
        UNION ALL
        SELECT 'entities', regulation, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, COUNT(*)
        FROM (SELECT DISTINCT regulation, entity_id FROM key_states WHERE {is_assessed}) AS assessed
        GROUP BY regulation
        UNION ALL
        SELECT 'controls', regulation, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, COUNT(*)
        FROM (SELECT DISTINCT regulation, control_id FROM key_states WHERE {is_failing}) AS failing
        GROUP BY regulation
        UNION ALL
        SELECT 'risk', NULL, entity_id, NULL, latest_rank, NULL, NULL, NULL, NULL, NULL, COUNT(*)
        FROM key_states
        WHERE latest_rank IN ({critical}, {high}) AND entity_id IN (
            SELECT entity_id FROM key_states
            WHERE latest_rank IN ({critical}, {high})
            GROUP BY entity_id
            ORDER BY SUM(CASE WHEN latest_rank = {critical} THEN 1 ELSE 0 END) DESC,
                     COUNT(*) DESC, entity_id
            LIMIT {int(at_risk_limit)}
        )
        GROUP BY entity_id, latest_rank
    """  # noqa: S608 - only quoted names and integers are formatted in; values are parameters
    change_start = start + dt.timedelta(days=change_index)
    params += [_tenant_value(tenant), _date(change_start)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def tenant_trends(history_rows, start, window_days):
    """Return ``{regulation value: trend}`` with one point per day of the window.

    Each ``history`` row adds its controls to the status of each of its days
    and takes them from the status of the day row before, so a day's passing
    and failing counts are the running sums of these changes.
    """
    changes = Counter()
    for regulation, _, _, _, fail_days, pass_days, observed_days, _, _, number in history_rows:
        days = DayStatuses(int(fail_days), int(pass_days), int(observed_days))
        # None is both "no row yet" and a row that neither passed nor failed.
        previous = None
        for index, status in days.steps():
            if status != previous:
                if status is not None:
                    changes[regulation, index, status] += number
                if previous is not None:
                    changes[regulation, index, previous] -= number
            previous = status

    trends = {}
    for regulation in Regulation:
        passing = failing = 0
        points = []
        for index in range(window_days):
            passing += changes[regulation.value, index, PASS]
            failing += changes[regulation.value, index, FAIL]
            day = (start + dt.timedelta(days=index)).isoformat()
            points.append(
                {
                    "start": day,
                    "end": day,
                    "score": compliance_score(passing, passing + failing),
                    "failing_controls": failing,
                    "checks": 0,
                }
            )
        trends[regulation.value] = {"granularity": "day", "points": points}
    return trends


def regulation_posture(regulation, parts, trend):
    """Summarise one regulation's ``statuses``, ``entities`` and ``controls`` rows."""
    by_status, by_severity = Counter(), Counter()
    observed = 0
    for row_regulation, _, _, rank, *_, number in parts["statuses"]:
        if row_regulation != regulation.value:
            continue
        observed += number
        status = STATUS_OF_RANK.get(rank)
        by_status[status] += number
        if status == FindingStatus.FAIL:
            by_severity[SEVERITY_OF_RANK.get(rank)] += number
    entities = {row[0]: row[-1] for row in parts["entities"]}
    controls = {row[0]: row[-1] for row in parts["controls"]}
    return RegulationPosture(
        regulation=regulation,
        observed=observed,
        passing=by_status[FindingStatus.PASS],
        failing=by_status[FindingStatus.FAIL],
        entities_assessed=entities.get(regulation.value, 0),
        failing_controls=controls.get(regulation.value, 0),
        open_by_severity=[
            (severity.value, severity.label, by_severity[severity.value])
            for severity in SEVERITY_ORDER
        ],
        trend=trend,
    )


def status_changes(change_rows, change_index):
    """Return controls whose status went from pass to fail or back since ``change_index``.

    The comparison is between the last row before the window's day
    ``change_index`` and the latest row. Regressions come first, then the
    highest severity, then the newest.
    """
    changes = []
    for row in change_rows:
        regulation, entity_id, control_id, rank, fail_days, pass_days, observed_days = row[:7]
        observed_at, check_id = row[7:9]
        days = DayStatuses(int(fail_days), int(pass_days), int(observed_days))
        before = days.status_before(change_index)
        status = STATUS_OF_RANK.get(rank)
        if before not in ASSESSED_STATUSES or status not in ASSESSED_STATUSES or before == status:
            continue
        after = Observation(
            regulation=regulation,
            entity_id=_uuid(entity_id),
            control_id=control_id,
            observed_at=_datetime(observed_at),
            status=status,
            severity=SEVERITY_OF_RANK.get(rank),
            check_id=_uuid(check_id),
        )
        changes.append(StatusChange(before=before, after=after))
    changes.sort(key=lambda change: change.after.observed_at, reverse=True)
    changes.sort(key=lambda change: SEVERITY_RANK.get(change.after.severity, len(SEVERITY_RANK)))
    changes.sort(key=lambda change: not change.is_regression)
    return changes


def entities_at_risk(risk_rows, limit):
    """Return up to ``limit`` entities with the most failing high and critical controls."""
    critical, high = Counter(), Counter()
    for _, entity_id, _, rank, *_, number in risk_rows:
        if SEVERITY_OF_RANK.get(rank) == SEVERITY_ORDER[0]:
            critical[_uuid(entity_id)] += number
        else:
            high[_uuid(entity_id)] += number

    risks = [
        EntityRisk(entity_id=entity_id, critical=critical[entity_id], high=high[entity_id])
        for entity_id in set(critical) | set(high)
    ]
    risks.sort(key=lambda risk: (-risk.critical, -risk.total, str(risk.entity_id)))
    return risks[:limit]


def _names(model):
    """Return the quoted table and ``{field name: quoted column}`` of ``model``."""
    quote = connection.ops.quote_name
    columns = {field.name: quote(field.column) for field in model._meta.concrete_fields}
    return quote(model._meta.db_table), columns


def _tenant_value(tenant):
    return DailyControlRollup._meta.get_field("tenant").get_db_prep_value(tenant.pk, connection)


def _date(value):
    return connection.ops.adapt_datefield_value(value)


def _uuid(value):
    """Return a UUID from the driver's value: a UUID on PostgreSQL, hex text on SQLite."""
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)


def _datetime(value):
    """Return an aware datetime: psycopg returns one, SQLite returns naive UTC text."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)


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
