"""Bulk loading for ``bench/generate.py``: COPY on PostgreSQL, executemany on SQLite.

The rows bypass the ORM, so each value is converted here the way Django
stores it. On SQLite a UUID is 32 hex digits and an aware datetime is naive
UTC text. On PostgreSQL psycopg adapts the Python values itself.
"""

import datetime as dt
import uuid

from django.core.management import call_command
from django.db import connection, transaction

SQLITE_BATCH_SIZE = 50_000
ENTITY_TYPES = ["agent", "model", "dataset", "workflow"]


def prepare_database(slug, time_zone, args, big_entity_name):
    """Migrate, load the catalog, and create the tenant and its entities.

    Return ``(tenant, entities, {regulation: [control IDs in catalog order]})``.
    Exits when the tenant exists already, because a second load would mix
    two data sets.
    """
    from compliance.catalog.loader import sync_catalog
    from compliance.catalog.models import Control
    from compliance.inventory.models import Entity
    from compliance.tenancy.models import Tenant

    call_command("migrate", verbosity=0)
    if not Control.objects.exists():
        sync_catalog()
    if Tenant.objects.filter(slug=slug).exists():
        raise SystemExit(
            f"Tenant {slug!r} exists already in this database. Drop and recreate the "
            "database (or delete the SQLite file) before generating again."
        )

    namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"bench-seed-{args.seed}")
    tenant = Tenant.objects.create(
        id=uuid.uuid5(namespace, "tenant"), slug=slug, name="Benchmark tenant", time_zone=time_zone
    )
    entities = [
        Entity(
            id=uuid.uuid5(namespace, str(index)),
            tenant=tenant,
            entity_type=ENTITY_TYPES[index % len(ENTITY_TYPES)],
            name=big_entity_name if index == 0 else f"Entity {index:04d}",
        )
        for index in range(args.entities)
    ]
    Entity.objects.bulk_create(entities, batch_size=1000)

    catalog = {}
    for regulation, control_id in Control.objects.order_by("regulation", "sort_key").values_list(
        "regulation", "control_id"
    ):
        catalog.setdefault(regulation, []).append(control_id)
    return tenant, entities, catalog


def _sqlite_value(internal_type):
    """Return the converter of one column's Python value to its SQLite storage."""
    if internal_type == "UUIDField":
        return lambda value: value.hex
    if internal_type == "DateTimeField":
        return lambda value: str(value.astimezone(dt.UTC).replace(tzinfo=None))
    if internal_type == "DateField":
        return lambda value: value.isoformat()
    if internal_type == "BooleanField":
        return int
    return None


def _internal_type(field):
    target = field.target_field if field.is_relation else field
    return target.get_internal_type()


class BulkWriter:
    """A writer of generated rows in one transaction; ``finish`` moves the id sequence."""

    def __enter__(self):
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA cache_size = -1000000")
        return self

    def __exit__(self, *exc_info):
        return self.atomic.__exit__(*exc_info)

    def write_checks(self, rows):
        from compliance.checks.models import Check

        self._write(Check, [name for name in rows[0]._fields] if rows else [], rows)

    def write_findings(self, rows):
        from compliance.checks.models import Finding

        self._write(Finding, list(rows[0]._fields) if rows else [], rows)

    def write_rollups(self, control_rows, check_rows, month_rows):
        from compliance.checks.models import (
            DailyCheckRollup,
            DailyControlRollup,
            MonthlyControlRollup,
        )
        from compliance.checks.rollups import (
            CHECK_DAY_COLUMNS,
            CONTROL_DAY_COLUMNS,
            CONTROL_MONTH_COLUMNS,
        )

        self._write(
            DailyControlRollup, self._columns(DailyControlRollup, CONTROL_DAY_COLUMNS), control_rows
        )
        self._write(
            MonthlyControlRollup,
            self._columns(MonthlyControlRollup, CONTROL_MONTH_COLUMNS),
            month_rows,
        )
        self._write(
            DailyCheckRollup, self._columns(DailyCheckRollup, CHECK_DAY_COLUMNS), check_rows
        )

    def finish(self, last_finding_id):
        """Move the finding id sequence past the loaded rows (SQLite moves its own)."""
        from compliance.checks.models import Finding

        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)",
                [Finding._meta.db_table, max(last_finding_id, 1)],
            )

    @staticmethod
    def _columns(model, field_names):
        return [model._meta.get_field(name).column for name in field_names]

    def _write(self, model, columns, rows):
        if not rows:
            return
        if connection.vendor == "postgresql":
            self._copy(model, columns, rows)
        else:
            self._executemany(model, columns, rows)

    def _copy(self, model, columns, rows):
        quote = connection.ops.quote_name
        sql = f"COPY {quote(model._meta.db_table)} ({', '.join(map(quote, columns))}) FROM STDIN"
        with connection.connection.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)

    def _executemany(self, model, columns, rows):
        fields = {field.column: field for field in model._meta.concrete_fields}
        converters = [_sqlite_value(_internal_type(fields[column])) for column in columns]
        quote = connection.ops.quote_name
        placeholders = ", ".join("?" * len(columns))
        table = quote(model._meta.db_table)
        sql = f"INSERT INTO {table} ({', '.join(map(quote, columns))}) VALUES ({placeholders})"  # noqa: S608
        converted = (
            [
                value if convert is None else convert(value)
                for convert, value in zip(converters, row, strict=True)
            ]
            for row in rows
        )
        cursor = connection.connection.cursor()
        try:
            batch = []
            for row in converted:
                batch.append(row)
                if len(batch) >= SQLITE_BATCH_SIZE:
                    cursor.executemany(sql, batch)
                    batch = []
            if batch:
                cursor.executemany(sql, batch)
        finally:
            cursor.close()


def vacuum_and_analyze():
    """Refresh planner statistics, and on PostgreSQL the visibility map too.

    Autovacuum does the same on a live database after a bulk insert. Without
    it, index-only scans still read the table right after the load.
    """
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
