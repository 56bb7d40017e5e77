"""Reads of the daily control rollups for report aggregation, in plain SQL.

A year of one entity and regulation is up to one row per control and day
(about 47,000 rows for 130 controls). Sorting them per control, as a window
function would, dominates the report's time, so ``bucket_states`` reduces
them with one hash aggregate instead. Its key packs a row's day number and
tie rank, so ``MAX`` over a bucket picks the row of the bucket's last day
and carries that row's status without a sort. The texts of the period's
latest findings are then read by key, about one row per control.

The statements are written for the two supported databases, PostgreSQL and
SQLite; only the day number expression differs between them.
"""

import datetime as dt
import uuid
from dataclasses import dataclass

from django.db import connection

from compliance.checks.models import DailyControlRollup, Finding
from compliance.checks.rollups import SEVERITY_ORDER, STATUS_PRECEDENCE, tie_rank

# Larger than every tie rank, so a packed key orders by day first.
KEY_SPAN = 32
DAY_NUMBER_SQL = {
    "postgresql": "({day} - DATE '2000-01-01')",
    "sqlite": "CAST(julianday({day}) AS INTEGER)",
}
_STATUS_OF_RANK = {
    tie_rank(status, severity): status.value
    for status in STATUS_PRECEDENCE
    for severity in [*SEVERITY_ORDER, None]
}
if max(_STATUS_OF_RANK) >= KEY_SPAN:
    raise ValueError("KEY_SPAN must exceed every tie rank.")


@dataclass(frozen=True)
class BucketState:
    """A control's state at the end of one bucket of days, and its history in the bucket."""

    control_id: str
    bucket: int
    last_day: dt.date
    # ``None`` for a stored status outside ``FindingStatus``, which counts as neither pass nor fail.
    status: str | None
    first_observed_at: dt.datetime
    observations: int


@dataclass(frozen=True)
class LatestFinding:
    """The latest finding of a control in a period, with the texts a report shows."""

    control_id: str
    status: str
    severity: str
    observed_at: dt.datetime
    finding_id: str
    title: str
    description: str
    remediation: str
    check_id: uuid.UUID


def bucket_states(tenant, entity, regulation, first_day, bucket_ends):
    """Return a ``BucketState`` per control and bucket that has day rows.

    Bucket ``i`` covers the days after ``bucket_ends[i - 1]`` (or from
    ``first_day`` for the first) up to ``bucket_ends[i]``, which ascend.
    """
    table, column = _names(DailyControlRollup)
    day = column["day"]
    day_number = DAY_NUMBER_SQL[connection.vendor].format(day=day)
    whens = " ".join(f"WHEN {day} <= %s THEN {index}" for index in range(len(bucket_ends)))
    sql = f"""
        SELECT {column["control_id"]}, CASE {whens} END,
               MAX({day}), MAX({day_number} * {KEY_SPAN} + {column["tie_rank"]}),
               MIN({column["first_observed_at"]}), SUM({column["observations"]})
        FROM {table}
        WHERE {column["tenant"]} = %s AND {column["entity"]} = %s AND {column["regulation"]} = %s
          AND {day} >= %s AND {day} <= %s
        GROUP BY 1, 2
    """  # noqa: S608 - only quoted names are formatted in; values are parameters
    params = [_date(end) for end in bucket_ends]
    params += _scope(tenant, entity, regulation)
    params += [_date(first_day), _date(bucket_ends[-1])]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [
        BucketState(
            control_id=control_id,
            bucket=bucket,
            last_day=_to_date(last_day),
            status=_STATUS_OF_RANK.get(key % KEY_SPAN),
            first_observed_at=_to_datetime(first_observed_at),
            observations=int(observations),
        )
        for control_id, bucket, last_day, key, first_observed_at, observations in rows
    ]


def latest_findings(tenant, entity, regulation, last_days):
    """Return ``{control: LatestFinding}`` for the day rows ``{control: day}``."""
    if not last_days:
        return {}
    table, column = _names(DailyControlRollup)
    findings, finding_column = _names(Finding)
    values = ", ".join(["(%s, %s)"] * len(last_days))
    sql = f"""
        SELECT r.{column["control_id"]}, r.{column["status"]}, r.{column["severity"]},
               r.{column["observed_at"]}, f.{finding_column["finding_id"]},
               f.{finding_column["title"]}, f.{finding_column["description"]},
               f.{finding_column["remediation"]}, f.{finding_column["compliance_check"]}
        FROM {table} r
        JOIN {findings} f ON f.{finding_column["id"]} = r.{column["latest_finding"]}
        WHERE r.{column["tenant"]} = %s AND r.{column["entity"]} = %s
          AND r.{column["regulation"]} = %s
          AND (r.{column["day"]}, r.{column["control_id"]}) IN (VALUES {values})
    """  # noqa: S608 - only quoted names are formatted in; values are parameters
    params = _scope(tenant, entity, regulation)
    for control_id, day in last_days.items():
        params += [_date(day), control_id]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return {row[0]: _latest_finding(row) for row in rows}


def _latest_finding(row):
    control_id, status, severity, observed_at, finding_id, title, description, remediation = row[:8]
    check_id = row[8]
    return LatestFinding(
        control_id=control_id,
        status=status,
        severity=severity,
        observed_at=_to_datetime(observed_at),
        finding_id=finding_id,
        title=title,
        description=description,
        remediation=remediation,
        check_id=check_id if isinstance(check_id, uuid.UUID) else uuid.UUID(check_id),
    )


def _names(model):
    """Return the quoted table and ``{field name: quoted column}`` of ``model``."""
    quote = connection.ops.quote_name
    columns = {field.name: quote(field.column) for field in model._meta.concrete_fields}
    return quote(model._meta.db_table), columns


def _scope(tenant, entity, regulation):
    """Return the tenant, entity and regulation as the database stores them."""
    meta = DailyControlRollup._meta
    return [
        meta.get_field("tenant").get_db_prep_value(tenant.pk, connection),
        meta.get_field("entity").get_db_prep_value(entity.pk, connection),
        str(regulation),
    ]


def _date(value):
    return connection.ops.adapt_datefield_value(value)


def _to_date(value):
    """Return a date from the driver's value: a date on PostgreSQL, ISO text on SQLite."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def _to_datetime(value):
    """Return an aware datetime: psycopg returns one, SQLite returns naive UTC text."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
