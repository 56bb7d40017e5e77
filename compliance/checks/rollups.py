"""Daily rollups of findings and checks, written with the findings in one transaction.

Report aggregation needs, per control, the latest finding of a period with
its first and last observation time and the number of observations, and
the checks of the period by status. The rollups keep exactly that per
local day in the tenant's time zone:

* ``DailyControlRollup``: each control's latest finding of the day, ranked
  as report aggregation ranks findings (observation time, then status
  precedence, then severity, then finding row id), with the day's earliest
  observation time and number of findings.
* ``DailyCheckRollup``: the day's checks counted by status.
* ``MonthlyControlRollup``: the fold of a control's day rows over one local
  calendar month, with the day of the month's winner, so that long reports
  read whole months as one row.

The ranking's first key is the observation time, and a later local day
holds only later instants, so a period's latest finding of a control is
the winner of its last day row in the period. Ties on time never span two
days, and within a day the stored winner is the one the full ranking picks.
Counts add up and the earliest time is a minimum, so merging findings into
an existing day row gives the same row in any order of writes.

Every path that stores findings calls ``record_rollups`` inside the
transaction that inserts them. A check's status must be final by then,
because the day counts do not follow a later change of it.
"""

import dataclasses
import datetime as dt
import zoneinfo
from collections import Counter
from dataclasses import dataclass
from itertools import batched

from django.db import connection, transaction

from compliance.catalog.models import Severity
from compliance.checks.models import (
    Check,
    CheckStatus,
    DailyCheckRollup,
    DailyControlRollup,
    Finding,
    FindingStatus,
    MonthlyControlRollup,
)
from compliance.tenancy.models import Tenant

# Findings observed at the same instant are ranked by status (the most
# conservative first), then by severity (highest first).
STATUS_PRECEDENCE = [
    FindingStatus.FAIL,
    FindingStatus.NOT_ASSESSED,
    FindingStatus.PASS,
    FindingStatus.NOT_APPLICABLE,
]
SEVERITY_ORDER = [Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW]

UPSERT_BATCH_SIZE = 500
REBUILD_CHUNK_SIZE = 5000

_STATUS_POSITION = {status.value: index for index, status in enumerate(STATUS_PRECEDENCE)}
_SEVERITY_POSITION = {severity.value: index for index, severity in enumerate(SEVERITY_ORDER)}


def tie_rank(status, severity):
    """Return the position of ``(status, severity)`` in the tie-break order; lower wins.

    An unknown status or severity ranks after the known ones, as in the
    report's ``CASE`` ranking.
    """
    status_position = _STATUS_POSITION.get(str(status), len(STATUS_PRECEDENCE))
    severity_position = _SEVERITY_POSITION.get(str(severity), len(SEVERITY_ORDER))
    return status_position * (len(SEVERITY_ORDER) + 1) + severity_position


def local_day(moment, zone):
    """Return the calendar date of the aware datetime ``moment`` in ``zone``.

    NOTE: this agrees with ``period_bounds`` unless a zone's clock steps back
    across midnight, which Europe/Berlin and America/New_York never do.
    """
    return moment.astimezone(zone).date()


@dataclass
class ControlDay:
    """The rollup of one control on one day, before it is merged into the table."""

    status: str
    severity: str
    tie_rank: int
    observed_at: dt.datetime
    finding_pk: int
    check_pk: object
    first_observed_at: dt.datetime
    observations: int
    # The local day of the winning finding.
    day: dt.date | None = None

    def sort_key(self):
        """Return a key that is larger for the finding the report ranks first."""
        return (self.observed_at, -self.tie_rank, self.finding_pk)

    def merge(self, other):
        """Fold ``other`` of the same control and day into this one."""
        if other.sort_key() > self.sort_key():
            self.status, self.severity, self.tie_rank = other.status, other.severity, other.tie_rank
            self.observed_at, self.finding_pk = other.observed_at, other.finding_pk
            self.check_pk = other.check_pk
            self.day = other.day
        self.first_observed_at = min(self.first_observed_at, other.first_observed_at)
        self.observations += other.observations


def control_days(findings, zones):
    """Return ``{(tenant, entity, regulation, day, control): ControlDay}`` for ``findings``.

    ``findings`` are saved ``Finding`` rows or objects with the same
    attributes (``pk`` included); ``zones`` maps tenant ids to time zones.
    """
    days = {}
    for finding in findings:
        day = local_day(finding.observed_at, zones[finding.tenant_id])
        key = (finding.tenant_id, finding.entity_id, str(finding.regulation), day)
        key += (finding.control_id,)
        rolled = ControlDay(
            status=str(finding.status),
            severity=str(finding.severity),
            tie_rank=tie_rank(finding.status, finding.severity),
            observed_at=finding.observed_at,
            finding_pk=finding.pk,
            check_pk=finding.compliance_check_id,
            first_observed_at=finding.observed_at,
            observations=1,
            day=day,
        )
        if key in days:
            days[key].merge(rolled)
        else:
            days[key] = rolled
    return days


def control_months(days):
    """Return ``{(tenant, entity, regulation, month, control): ControlDay}`` folded from ``days``.

    ``month`` is the first day of the local month. The fold uses the same
    merge as the days, so a month row equals the fold of its day rows.
    """
    months = {}
    for (tenant_id, entity_id, regulation, day, control_id), rolled in days.items():
        key = (tenant_id, entity_id, regulation, day.replace(day=1), control_id)
        if key in months:
            months[key].merge(rolled)
        else:
            months[key] = dataclasses.replace(rolled)
    return months


def check_days(checks, zones):
    """Return ``{(tenant, entity, regulation, day): Counter of statuses}`` for ``checks``."""
    days = {}
    for check in checks:
        day = local_day(check.created_at, zones[check.tenant_id])
        key = (check.tenant_id, check.entity_id, str(check.regulation), day)
        days.setdefault(key, Counter())[str(check.status)] += 1
    return days


def tenant_zones(tenant_ids):
    """Return ``{tenant id: ZoneInfo}`` for the given tenants, in one query."""
    rows = Tenant.objects.filter(pk__in=set(tenant_ids)).values_list("pk", "time_zone")
    return {pk: zoneinfo.ZoneInfo(name) for pk, name in rows}


def record_rollups(checks, findings):
    """Merge newly saved ``checks`` and their ``findings`` into the daily rollups.

    Call it in the transaction that inserted them, after the insert, so that
    the findings have their row ids. Raises ``TransactionManagementError`` outside a
    transaction, because a rollup written apart from its findings could
    outlive a rolled-back import.
    """
    if not transaction.get_connection().in_atomic_block:
        raise transaction.TransactionManagementError(
            "record_rollups was called outside a transaction. Call it inside the "
            "transaction.atomic() block that inserts the findings."
        )
    checks, findings = list(checks), list(findings)
    if not checks and not findings:
        return

    zones = tenant_zones([row.tenant_id for row in [*checks, *findings]])
    upsert_control_days(control_days(findings, zones))
    upsert_check_days(check_days(checks, zones))


CONTROL_DAY_COLUMNS = [
    "tenant",
    "entity",
    "regulation",
    "day",
    "control_id",
    "status",
    "severity",
    "tie_rank",
    "observed_at",
    "latest_finding",
    "compliance_check",
    "first_observed_at",
    "observations",
]
CONTROL_DAY_KEY = CONTROL_DAY_COLUMNS[:5]
# Columns that follow the day's winner when a newer finding arrives.
CONTROL_DAY_WINNER = [
    "status",
    "severity",
    "tie_rank",
    "observed_at",
    "latest_finding",
    "compliance_check",
]
CONTROL_MONTH_COLUMNS = [
    "tenant",
    "entity",
    "regulation",
    "month",
    "control_id",
    "last_day",
    *CONTROL_DAY_COLUMNS[5:],
]
CONTROL_MONTH_KEY = CONTROL_MONTH_COLUMNS[:5]
CHECK_DAY_COLUMNS = ["tenant", "entity", "regulation", "day", *CheckStatus.values]
CHECK_DAY_KEY = CHECK_DAY_COLUMNS[:4]


def control_day_rows(days):
    """Return the ``CONTROL_DAY_COLUMNS`` values of each rolled-up control day."""
    return [
        (
            *key,
            rolled.status,
            rolled.severity,
            rolled.tie_rank,
            rolled.observed_at,
            rolled.finding_pk,
            rolled.check_pk,
            rolled.first_observed_at,
            rolled.observations,
        )
        for key, rolled in days.items()
    ]


def control_month_rows(months):
    """Return the ``CONTROL_MONTH_COLUMNS`` values of each rolled-up control month."""
    return [
        (
            *key,
            rolled.day,
            rolled.status,
            rolled.severity,
            rolled.tie_rank,
            rolled.observed_at,
            rolled.finding_pk,
            rolled.check_pk,
            rolled.first_observed_at,
            rolled.observations,
        )
        for key, rolled in months.items()
    ]


def check_day_rows(days):
    """Return the ``CHECK_DAY_COLUMNS`` values of each rolled-up check day."""
    return [
        (*key, *(counts[status] for status in CheckStatus.values)) for key, counts in days.items()
    ]


def upsert_control_days(days):
    """Insert control days, or merge them into the stored rows of the same key, then their months.

    The ``CASE`` mirrors ``ControlDay.merge``: the stored winner is replaced
    only by a finding the ranking puts first. The database evaluates it under
    the row lock of the conflicting row, so concurrent imports merge safely.
    The month rows take the same merge, so they stay the fold of their days.
    """
    _upsert(
        DailyControlRollup,
        CONTROL_DAY_COLUMNS,
        CONTROL_DAY_KEY,
        _merge_assignments(DailyControlRollup, CONTROL_DAY_WINNER),
        control_day_rows(days),
    )
    _upsert(
        MonthlyControlRollup,
        CONTROL_MONTH_COLUMNS,
        CONTROL_MONTH_KEY,
        _merge_assignments(MonthlyControlRollup, [*CONTROL_DAY_WINNER, "last_day"]),
        control_month_rows(control_months(days)),
    )


def _merge_assignments(model, winner_columns):
    """Return the ``SET`` clauses that merge an ``excluded`` control row into the stored one."""
    table = _table(model)
    column_of = _column_map(model)
    stored = {name: f"{table}.{column}" for name, column in column_of.items()}
    new = {name: f"excluded.{column}" for name, column in column_of.items()}
    newer = (
        f"({new['observed_at']} > {stored['observed_at']} OR ("
        f"{new['observed_at']} = {stored['observed_at']} AND ("
        f"{new['tie_rank']} < {stored['tie_rank']} OR ("
        f"{new['tie_rank']} = {stored['tie_rank']} AND "
        f"{new['latest_finding']} > {stored['latest_finding']}))))"
    )
    assignments = [
        f"{column_of[name]} = CASE WHEN {newer} THEN {new[name]} ELSE {stored[name]} END"
        for name in winner_columns
    ]
    assignments.append(
        f"{column_of['first_observed_at']} = CASE WHEN "
        f"{new['first_observed_at']} < {stored['first_observed_at']} "
        f"THEN {new['first_observed_at']} ELSE {stored['first_observed_at']} END"
    )
    assignments.append(
        f"{column_of['observations']} = {stored['observations']} + {new['observations']}"
    )
    return assignments


def upsert_check_days(days):
    """Insert check days, or add their counts to the stored rows of the same key."""
    table = _table(DailyCheckRollup)
    column_of = _column_map(DailyCheckRollup)
    assignments = [
        f"{column_of[status]} = {table}.{column_of[status]} + excluded.{column_of[status]}"
        for status in CheckStatus.values
    ]
    _upsert(DailyCheckRollup, CHECK_DAY_COLUMNS, CHECK_DAY_KEY, assignments, check_day_rows(days))


def _column_map(model):
    """Return ``{field name: quoted column}`` for the concrete fields of ``model``."""
    quote = connection.ops.quote_name
    return {field.name: quote(field.column) for field in model._meta.concrete_fields}


def _table(model):
    return connection.ops.quote_name(model._meta.db_table)


def _upsert(model, names, key_names, assignments, rows):
    """Run ``INSERT ... ON CONFLICT (key) DO UPDATE SET assignments`` for ``rows``.

    Values go through each field's ``get_db_prep_save``, so UUIDs, dates and
    aware datetimes are stored exactly as the ORM stores them on either backend.
    """
    if not rows:
        return
    column_of = _column_map(model)
    columns = [column_of[name] for name in names]
    keys = [column_of[name] for name in key_names]
    placeholders = ", ".join(["%s"] * len(columns))
    # Only quoted table and column names from the model are formatted in; values are parameters.
    sql = (
        f"INSERT INTO {_table(model)} ({', '.join(columns)}) VALUES ({placeholders}) "  # noqa: S608
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(assignments)}"
    )
    fields = [model._meta.get_field(name) for name in names]
    with connection.cursor() as cursor:
        for batch in batched(rows, UPSERT_BATCH_SIZE, strict=False):
            params = [
                [
                    field.get_db_prep_save(value, connection)
                    for field, value in zip(fields, row, strict=True)
                ]
                for row in batch
            ]
            cursor.executemany(sql, params)


def rebuild_rollups(tenant):
    """Recompute every rollup row of ``tenant`` from its findings and checks.

    Needed after a change of the tenant's time zone, which moves findings to
    other local days, and for data written before the rollups existed.
    """
    with transaction.atomic():
        DailyControlRollup.objects.filter(tenant=tenant).delete()
        MonthlyControlRollup.objects.filter(tenant=tenant).delete()
        DailyCheckRollup.objects.filter(tenant=tenant).delete()
        zones = {tenant.pk: tenant.zone}
        for entity_id in _entity_ids_with_checks(tenant):
            _rebuild_entity(tenant, entity_id, zones)


def _entity_ids_with_checks(tenant):
    return list(
        Check.objects.filter(tenant=tenant)
        .values_list("entity_id", flat=True)
        .order_by()
        .distinct()
    )


def _rebuild_entity(tenant, entity_id, zones):
    checks = Check.objects.filter(tenant=tenant, entity_id=entity_id).only(
        "tenant_id", "entity_id", "regulation", "created_at", "status"
    )
    upsert_check_days(check_days(checks.iterator(chunk_size=REBUILD_CHUNK_SIZE), zones))

    findings = Finding.objects.filter(tenant=tenant, entity_id=entity_id).only(
        "tenant_id",
        "entity_id",
        "regulation",
        "control_id",
        "observed_at",
        "status",
        "severity",
        "compliance_check_id",
    )
    upsert_control_days(control_days(findings.iterator(chunk_size=REBUILD_CHUNK_SIZE), zones))
