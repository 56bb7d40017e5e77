"""The daily rollups: written by every save path, merged by the report's ranking, rebuildable."""

import datetime as dt

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
)
from compliance.checks.rollups import rebuild_rollups, record_rollups
from compliance.demo.seed import seed_demo
from compliance.tenancy.models import Role, Tenant
from tests.conftest import assert_status
from tests.test_aggregation_equivalence import save_check

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
