"""Time to remediate per control and its median, in the report JSON."""

import datetime as dt

import pytest

from compliance.catalog.models import Severity
from compliance.checks.models import FindingStatus
from compliance.reports.aggregation import build_report
from tests.conftest import make_check

FAIL, PASS = FindingStatus.FAIL, FindingStatus.PASS
NOT_ASSESSED = FindingStatus.NOT_ASSESSED
START = dt.date(2026, 3, 1)
END = dt.date(2026, 3, 31)


def at(day, hour=12):
    return dt.datetime(2026, 3, day, hour, tzinfo=dt.UTC)


def record(entity, when, *results):
    make_check(
        entity, "SOC2", when, [(control, status, Severity.HIGH) for control, status in results]
    )


def entries_by_control(entity):
    summary, entries = build_report(entity.tenant, entity, "SOC2", START, END)
    return summary, {entry["control_id"]: entry for entry in entries}


@pytest.mark.django_db
class TestTimeToRemediate:
    def test_fail_then_pass(self, entity):
        record(entity, at(2), ("CC6.1", FAIL))
        record(entity, at(3), ("CC6.1", FAIL))
        record(entity, at(5, 18), ("CC6.1", PASS))
        record(entity, at(6), ("CC6.1", PASS))

        _, entries = entries_by_control(entity)

        entry = entries["CC6.1"]
        assert entry["remediation_state"] == "remediated"
        assert entry["failing_since"] == "2026-03-02T12:00:00Z"
        assert entry["remediated_at"] == "2026-03-05T18:00:00Z"
        assert entry["time_to_remediate_seconds"] == 3 * 86400 + 6 * 3600

    def test_still_failing_has_none(self, entity):
        record(entity, at(2), ("CC6.1", PASS))
        record(entity, at(4), ("CC6.1", FAIL))

        _, entries = entries_by_control(entity)

        entry = entries["CC6.1"]
        assert entry["remediation_state"] == "still_failing"
        assert entry["failing_since"] == "2026-03-04T12:00:00Z"
        assert entry["remediated_at"] is None
        assert entry["time_to_remediate_seconds"] is None

    def test_never_failed(self, entity):
        record(entity, at(2), ("CC6.1", PASS))

        _, entries = entries_by_control(entity)

        assert entries["CC6.1"]["remediation_state"] == "no_failure"
        assert entries["CC6.1"]["failing_since"] is None

    def test_not_assessed_after_fail_is_not_remediated(self, entity):
        record(entity, at(2), ("CC6.1", FAIL))
        record(entity, at(3), ("CC6.1", NOT_ASSESSED))

        _, entries = entries_by_control(entity)

        assert entries["CC6.1"]["remediation_state"] == "not_remediated"
        assert entries["CC6.1"]["time_to_remediate_seconds"] is None

    def test_last_run_counts(self, entity):
        record(entity, at(2), ("CC6.1", FAIL))
        record(entity, at(3), ("CC6.1", PASS))
        record(entity, at(10), ("CC6.1", FAIL))
        record(entity, at(11), ("CC6.1", PASS))

        _, entries = entries_by_control(entity)

        assert entries["CC6.1"]["failing_since"] == "2026-03-10T12:00:00Z"
        assert entries["CC6.1"]["time_to_remediate_seconds"] == 86400

    def test_pass_tied_with_fail_keeps_run(self, entity):
        record(entity, at(2), ("CC6.1", FAIL))
        record(entity, at(3), ("CC6.1", PASS), ("CC6.1", FAIL))
        record(entity, at(4), ("CC6.1", PASS))

        _, entries = entries_by_control(entity)

        assert entries["CC6.1"]["failing_since"] == "2026-03-02T12:00:00Z"
        assert entries["CC6.1"]["remediated_at"] == "2026-03-04T12:00:00Z"

    def test_failure_before_period_not_counted(self, entity):
        make_check(entity, "SOC2", at(1) - dt.timedelta(days=5), [("CC6.1", FAIL, Severity.LOW)])
        record(entity, at(2), ("CC6.1", PASS))

        _, entries = entries_by_control(entity)

        assert entries["CC6.1"]["remediation_state"] == "no_failure"

    def test_summary_median(self, entity):
        record(entity, at(2), ("CC6.1", FAIL), ("CC7.2", FAIL), ("CC8.1", FAIL))
        record(entity, at(3), ("CC6.1", PASS))
        record(entity, at(2, 13), ("CC7.2", PASS))

        summary, _ = entries_by_control(entity)

        remediation = summary["remediation"]
        assert remediation["remediated_controls"] == 2
        assert remediation["still_failing_controls"] == 1
        # The median of 3,600 s and 86,400 s is 45,000 s.
        assert remediation["median_time_to_remediate_seconds"] == 45000

    def test_summary_without_remediation(self, entity):
        record(entity, at(2), ("CC6.1", PASS))

        summary, _ = entries_by_control(entity)

        assert summary["remediation"]["remediated_controls"] == 0
        assert summary["remediation"]["median_time_to_remediate_seconds"] is None
