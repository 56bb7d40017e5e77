"""The daily rollups: written by every save path, merged by the report's ranking, rebuildable."""

import datetime as dt
import random

import pytest
from django.db import transaction

from compliance.catalog.models import Regulation, Severity
from compliance.checks.automated import run_automated_check
from compliance.checks.importers.base import ImportedFinding, ParsedImport, save_import
from compliance.checks.models import (
    Check,
    DailyCheckRollup,
    DailyControlRollup,
    FindingStatus,
    MonthlyControlRollup,
)
from compliance.checks.rollup_queries import _month_and_day_ranges
from compliance.checks.rollups import rebuild_rollups, record_rollups
from compliance.demo.seed import seed_demo
from compliance.inventory.models import Entity
from compliance.tenancy.models import Role, Tenant
from tests.conftest import assert_status
from tests.test_aggregation_equivalence import build_history, save_check

PASS, FAIL = FindingStatus.PASS, FindingStatus.FAIL
NOT_ASSESSED = FindingStatus.NOT_ASSESSED
NOON_UTC = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)


def snapshot(tenant):
    """Return every rollup row of ``tenant`` as comparable tuples, without row ids."""
    control_days = DailyControlRollup.objects.filter(tenant=tenant).order_by(
        "entity_id", "regulation", "day", "control_id"
    )
    check_days = DailyCheckRollup.objects.filter(tenant=tenant).order_by(
        "entity_id", "regulation", "day"
    )
    return (
        list(
            control_days.values_list(
                "entity_id",
                "regulation",
                "day",
                "control_id",
                "status",
                "severity",
                "tie_rank",
                "observed_at",
                "latest_finding_id",
                "compliance_check_id",
                "first_observed_at",
                "observations",
            )
        ),
        list(
            check_days.values_list(
                "entity_id", "regulation", "day", "pending", "passed", "failed", "partial"
            )
        ),
    )


def assert_matches_rebuild(tenant):
    """Assert that the rollups written on the way equal a rebuild from the findings."""
    written = snapshot(tenant)
    rebuild_rollups(tenant)

    assert written[0] == snapshot(tenant)[0], "control days differ from a rebuild"
    assert written[1] == snapshot(tenant)[1], "check days differ from a rebuild"


def make_check(entity, when, results, regulation="SOC2"):
    check, findings = save_check(entity, when, results, regulation)
    record_rollups([check], findings)
    return check


def control_day(entity, control_id, regulation="SOC2"):
    return DailyControlRollup.objects.get(
        entity=entity, regulation=regulation, control_id=control_id
    )


def parsed(started_at, findings):
    return ParsedImport(
        source_name="scanner",
        format="json",
        started_at=started_at,
        finished_at=started_at,
        findings=findings,
        record_count=len(findings),
        unmapped_count=0,
    )


def imported(regulation, control_id, status, severity=Severity.HIGH):
    return ImportedFinding(
        regulation=regulation,
        control_id=control_id,
        finding_id=f"{regulation}:{control_id}:{status}",
        status=status,
        severity=severity,
        title=f"{control_id} {status}",
    )


@pytest.mark.django_db
class TestMerge:
    def test_same_instant_keeps_failure(self, tenant, entity):
        make_check(entity, NOON_UTC, [("CC6.1", FAIL, Severity.LOW)])
        make_check(entity, NOON_UTC, [("CC6.1", PASS, Severity.CRITICAL)])

        row = control_day(entity, "CC6.1")

        assert row.status == FAIL
        assert row.observations == 2

    def test_same_instant_prefers_higher_severity(self, tenant, entity):
        make_check(entity, NOON_UTC, [("CC6.1", FAIL, Severity.LOW)])
        high = make_check(entity, NOON_UTC, [("CC6.1", FAIL, Severity.HIGH)])
        make_check(entity, NOON_UTC, [("CC6.1", FAIL, Severity.MEDIUM)])

        row = control_day(entity, "CC6.1")

        assert row.severity == Severity.HIGH
        assert row.compliance_check_id == high.pk

    def test_full_tie_prefers_newest_row(self, tenant, entity):
        make_check(entity, NOON_UTC, [("CC6.1", PASS, Severity.LOW)])
        newest = make_check(entity, NOON_UTC, [("CC6.1", PASS, Severity.LOW)])

        row = control_day(entity, "CC6.1")

        assert row.latest_finding_id == newest.findings.get().pk

    def test_older_finding_keeps_winner(self, tenant, entity):
        later = make_check(entity, NOON_UTC, [("CC6.1", PASS, Severity.LOW)])
        make_check(entity, NOON_UTC - dt.timedelta(hours=3), [("CC6.1", FAIL, Severity.HIGH)])

        row = control_day(entity, "CC6.1")

        assert row.status == PASS
        assert row.compliance_check_id == later.pk
        assert row.first_observed_at == NOON_UTC - dt.timedelta(hours=3)
        assert row.observed_at == NOON_UTC

    def test_later_finding_replaces_winner(self, tenant, entity):
        make_check(entity, NOON_UTC, [("CC6.1", FAIL, Severity.HIGH)])
        make_check(entity, NOON_UTC + dt.timedelta(hours=1), [("CC6.1", PASS, Severity.LOW)])

        row = control_day(entity, "CC6.1")

        assert row.status == PASS
        assert row.first_observed_at == NOON_UTC
        assert row.observations == 2

    def test_repeated_control_in_one_check(self, tenant, entity):
        make_check(
            entity,
            NOON_UTC,
            [("CC6.1", PASS, Severity.LOW), ("CC6.1", NOT_ASSESSED, Severity.LOW)],
        )

        row = control_day(entity, "CC6.1")

        assert row.status == NOT_ASSESSED
        assert row.observations == 2

    def test_day_in_tenant_time_zone(self, tenant, entity):
        # 23:30 UTC on 28 March 2026 is 00:30 on 29 March in Berlin.
        make_check(
            entity, dt.datetime(2026, 3, 28, 23, 30, tzinfo=dt.UTC), [("CC6.1", FAIL, "low")]
        )

        assert control_day(entity, "CC6.1").day == dt.date(2026, 3, 29)
        assert DailyCheckRollup.objects.get(entity=entity).day == dt.date(2026, 3, 29)

    def test_check_counts_by_status(self, tenant, entity):
        make_check(entity, NOON_UTC, [("CC6.1", FAIL, Severity.HIGH)])
        make_check(entity, NOON_UTC, [("CC6.1", FAIL, Severity.LOW)])
        make_check(entity, NOON_UTC + dt.timedelta(hours=2), [("CC6.1", PASS, Severity.LOW)])

        counts = DailyCheckRollup.objects.get(entity=entity)

        assert (counts.pending, counts.passed, counts.failed, counts.partial) == (0, 1, 1, 1)

    def test_rebuild_follows_time_zone_change(self, tenant, entity):
        make_check(entity, dt.datetime(2026, 3, 29, 2, 0, tzinfo=dt.UTC), [("CC6.1", FAIL, "low")])
        tenant.time_zone = "America/New_York"
        tenant.save(update_fields=["time_zone"])

        rebuild_rollups(tenant)

        assert control_day(entity, "CC6.1").day == dt.date(2026, 3, 28)
        assert DailyCheckRollup.objects.get(entity=entity).day == dt.date(2026, 3, 28)

    def test_entity_deletion_removes_rollups(self, tenant, entity):
        make_check(entity, NOON_UTC, [("CC6.1", FAIL, Severity.HIGH)])

        entity.delete()

        assert not DailyControlRollup.objects.exists()
        assert not DailyCheckRollup.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_record_outside_transaction_raises(tenant, entity):
    check, findings = save_check(entity, NOON_UTC, [("CC6.1", FAIL, Severity.HIGH)])

    with pytest.raises(transaction.TransactionManagementError):
        record_rollups([check], findings)
    assert not DailyControlRollup.objects.exists()


@pytest.mark.django_db
class TestSavePaths:
    def test_import_writes_rollups(self, tenant, entity):
        findings = [
            imported(Regulation.SOC2, "CC6.1", FAIL),
            imported(Regulation.SOC2, "CC6.1", PASS),
            imported(Regulation.SOC2, "CC7.2", PASS),
            imported(Regulation.GDPR, "Art. 32", FAIL, Severity.LOW),
        ]

        save_import(tenant, entity, parsed(NOON_UTC, findings), "a" * 64)

        assert control_day(entity, "CC6.1").status == FAIL
        assert control_day(entity, "CC6.1").observations == 2
        assert control_day(entity, "Art. 32", regulation="GDPR").status == FAIL
        assert DailyCheckRollup.objects.filter(entity=entity).count() == 2
        assert_matches_rebuild(tenant)

    def test_repeated_import_counts_once(self, tenant, entity):
        findings = [imported(Regulation.SOC2, "CC6.1", FAIL)]

        save_import(tenant, entity, parsed(NOON_UTC, findings), "b" * 64)
        save_import(tenant, entity, parsed(NOON_UTC, findings), "b" * 64)

        assert control_day(entity, "CC6.1").observations == 1
        assert DailyCheckRollup.objects.get(entity=entity).failed == 1

    def test_automated_check_writes_rollups(self, tenant, entity):
        check = run_automated_check(entity, "SOC2")

        controls = set(check.findings.values_list("control_id", flat=True))
        rolled = set(
            DailyControlRollup.objects.filter(entity=entity).values_list("control_id", flat=True)
        )
        counts = DailyCheckRollup.objects.get(entity=entity)

        assert rolled == controls
        assert getattr(counts, check.status) == 1
        assert_matches_rebuild(tenant)

    def test_api_ingestion_writes_rollups(self, client, tenant, entity, issue_key):
        key = issue_key(tenant, role=Role.OFFICER)
        body = {
            "entity_id": str(entity.pk),
            "regulation": "soc2",
            "source": "ci-pipeline",
            "observed_at": "2026-01-10T08:00:00Z",
            "findings": [
                {"control_id": "CC6.1", "status": "fail", "severity": "high", "title": "MFA off"}
            ],
        }

        response = client.post(
            "/v1/compliance/results",
            body,
            content_type="application/json",
            headers={"X-API-Key": key},
        )

        assert_status(response, 201)
        assert control_day(entity, "CC6.1").status == FAIL
        assert DailyCheckRollup.objects.get(entity=entity).failed == 1

    def test_seed_demo_writes_rollups(self):
        seed_demo(today=dt.date(2026, 3, 31))
        tenant = Tenant.objects.get(slug="demo")

        assert DailyControlRollup.objects.filter(tenant=tenant).exists()
        assert DailyCheckRollup.objects.filter(tenant=tenant).count() > 0
        checks = Check.objects.filter(tenant=tenant).count()
        rolled_checks = sum(
            sum(row)
            for row in DailyCheckRollup.objects.filter(tenant=tenant).values_list(
                "pending", "passed", "failed", "partial"
            )
        )
        assert rolled_checks == checks
        assert_matches_rebuild(tenant)

    def test_other_tenant_rollups_untouched_by_rebuild(self, tenant, entity, other_entity):
        make_check(entity, NOON_UTC, [("CC6.1", FAIL, Severity.HIGH)])
        make_check(other_entity, NOON_UTC, [("CC6.1", PASS, Severity.HIGH)])

        rebuild_rollups(tenant)

        assert control_day(other_entity, "CC6.1").status == PASS


def folded_months(tenant):
    """Return the month rows that folding ``tenant``'s day rows gives, keyed like ``stored_months``.

    Days are read in order, so the last day row of a month carries its winner.
    """
    months = {}
    days = DailyControlRollup.objects.filter(tenant=tenant).order_by(
        "entity_id", "regulation", "control_id", "day"
    )
    for row in days:
        key = (row.entity_id, row.regulation, row.day.replace(day=1), row.control_id)
        first, count = row.first_observed_at, row.observations
        if key in months:
            first = min(first, months[key][5])
            count += months[key][6]
        winner = (row.day, row.status, row.tie_rank, row.observed_at, row.latest_finding_id)
        months[key] = (*winner, first, count)
    return months


def stored_months(tenant):
    rows = MonthlyControlRollup.objects.filter(tenant=tenant).order_by(
        "entity_id", "regulation", "month", "control_id"
    )
    return {
        (row.entity_id, row.regulation, row.month, row.control_id): (
            row.last_day,
            row.status,
            row.tie_rank,
            row.observed_at,
            row.latest_finding_id,
            row.first_observed_at,
            row.observations,
        )
        for row in rows
    }


@pytest.mark.django_db
@pytest.mark.parametrize("seed", range(3))
def test_month_rows_fold_day_rows(seed):
    rng = random.Random(f"months|{seed}")  # noqa: S311 - reproducible test data
    tenant = Tenant.objects.create(slug=f"m{seed}", name="Months", time_zone="Europe/Berlin")
    entity = Entity.objects.create(tenant=tenant, entity_type="agent", name="Agent")
    build_history(entity, rng)

    assert stored_months(tenant) == folded_months(tenant)

    rebuild_rollups(tenant)

    assert stored_months(tenant) == folded_months(tenant)


@pytest.mark.parametrize(
    ("first_day", "bucket_ends", "months", "days"),
    [
        # A year of monthly buckets after a previous year: whole months only.
        (
            dt.date(2024, 12, 1),
            [dt.date(2025, 11, 30), dt.date(2025, 12, 31), dt.date(2026, 11, 30)],
            [(dt.date(2024, 12, 1), dt.date(2026, 11, 1))],
            [],
        ),
        # Cut months at both ends are read from day rows.
        (
            dt.date(2026, 1, 15),
            [dt.date(2026, 3, 10)],
            [(dt.date(2026, 2, 1), dt.date(2026, 2, 1))],
            [
                (dt.date(2026, 1, 15), dt.date(2026, 1, 31)),
                (dt.date(2026, 3, 1), dt.date(2026, 3, 10)),
            ],
        ),
        # A month split by a bucket end is read from day rows.
        (
            dt.date(2026, 1, 1),
            [dt.date(2026, 1, 20), dt.date(2026, 2, 28)],
            [(dt.date(2026, 2, 1), dt.date(2026, 2, 1))],
            [(dt.date(2026, 1, 1), dt.date(2026, 1, 31))],
        ),
    ],
)
def test_month_and_day_ranges(first_day, bucket_ends, months, days):
    assert _month_and_day_ranges(first_day, bucket_ends) == (months, days)
