"""The report aggregation rules, on the real database."""

import datetime as dt
import zoneinfo

import pytest

from compliance.catalog.models import Control, Severity
from compliance.checks.models import FindingStatus
from compliance.checks.rollups import record_rollups
from compliance.reports.aggregation import build_report, compliance_score, period_bounds
from tests.test_aggregation_equivalence import save_check

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
PASS, FAIL = FindingStatus.PASS, FindingStatus.FAIL


def make_check(entity, regulation, when, results):
    """Create a check with findings and record its rollups, as the save paths do."""
    check, findings = save_check(entity, when, results, regulation)
    record_rollups([check], findings)
    return check


def at(day, hour=12, zone=BERLIN):
    return dt.datetime.combine(day, dt.time(hour), tzinfo=zone)


@pytest.mark.parametrize(
    ("passing", "assessed", "expected"),
    [(0, 0, None), (1, 3, 33.3), (2, 3, 66.7), (1, 8, 12.5), (3, 3, 100.0), (0, 5, 0.0)],
)
def test_compliance_score_rounding(passing, assessed, expected):
    assert compliance_score(passing, assessed) == expected


def test_period_bounds_cover_whole_end_day():
    lower, upper = period_bounds(dt.date(2026, 3, 1), dt.date(2026, 3, 31), BERLIN)

    assert lower == dt.datetime(2026, 3, 1, tzinfo=BERLIN)
    assert upper == dt.datetime(2026, 4, 1, tzinfo=BERLIN)
    elapsed = upper.astimezone(dt.UTC) - lower.astimezone(dt.UTC)
    assert elapsed == dt.timedelta(days=31, hours=-1), "Berlin switches to summer time on 29 March"


@pytest.mark.django_db
class TestBuildReport:
    def test_nothing_assessed_scores_none(self, tenant, entity):
        summary, findings = build_report(
            tenant, entity, "SOC2", dt.date(2026, 1, 1), dt.date(2026, 1, 31)
        )

        assert summary["compliance_score"] is None
        assert summary["controls"]["assessed"] == 0
        assert (
            summary["controls"]["not_assessed"] == Control.objects.filter(regulation="SOC2").count()
        )
        assert summary["previous_period"]["change"] is None
        assert findings == []

    def test_latest_status_wins(self, tenant, entity):
        make_check(entity, "SOC2", at(dt.date(2026, 1, 5)), [("CC6.1", FAIL, Severity.HIGH)])
        make_check(entity, "SOC2", at(dt.date(2026, 1, 20)), [("CC6.1", PASS, Severity.HIGH)])

        summary, findings = build_report(
            tenant, entity, "SOC2", dt.date(2026, 1, 1), dt.date(2026, 1, 31)
        )

        assert [entry["status"] for entry in findings] == ["pass"]
        assert findings[0]["first_seen"] == "2026-01-05T11:00:00Z"
        assert findings[0]["last_seen"] == "2026-01-20T11:00:00Z"
        assert findings[0]["observations"] == 2
        assert summary["compliance_score"] == 100.0
        assert summary["open_findings_by_severity"] == {
            "low": 0,
            "medium": 0,
            "high": 0,
            "critical": 0,
        }

    def test_tie_on_time_prefers_failure(self, tenant, entity):
        same = at(dt.date(2026, 1, 10))
        make_check(entity, "SOC2", same, [("CC6.1", PASS, Severity.LOW)])
        make_check(entity, "SOC2", same, [("CC6.1", FAIL, Severity.MEDIUM)])
        make_check(entity, "SOC2", same, [("CC6.1", PASS, Severity.CRITICAL)])

        summary, findings = build_report(
            tenant, entity, "SOC2", dt.date(2026, 1, 1), dt.date(2026, 1, 31)
        )

        assert findings[0]["status"] == "fail"
        assert findings[0]["severity"] == "medium"
        assert summary["open_findings_by_severity"]["medium"] == 1

    def test_end_day_counts_whole_day(self, tenant, entity):
        late = dt.datetime(2026, 1, 31, 23, 59, 59, tzinfo=BERLIN)
        make_check(entity, "SOC2", late, [("CC6.1", FAIL, Severity.LOW)])

        summary, _ = build_report(tenant, entity, "SOC2", dt.date(2026, 1, 1), dt.date(2026, 1, 31))

        assert summary["checks"]["total"] == 1
        assert summary["controls"]["failing"] == 1

    def test_outside_period_ignored(self, tenant, entity):
        make_check(entity, "SOC2", at(dt.date(2026, 2, 1), hour=0), [("CC6.1", FAIL, Severity.LOW)])

        summary, _ = build_report(tenant, entity, "SOC2", dt.date(2026, 1, 1), dt.date(2026, 1, 31))

        assert summary["checks"]["total"] == 0

    def test_counts_keep_invariants(self, tenant, entity):
        make_check(
            entity,
            "SOC2",
            at(dt.date(2026, 1, 3)),
            [
                ("CC6.1", FAIL, Severity.CRITICAL),
                ("CC6.2", FAIL, Severity.LOW),
                ("CC6.3", PASS, Severity.LOW),
                ("A1.1", FindingStatus.NOT_APPLICABLE, Severity.LOW),
                ("CC9.9", PASS, Severity.LOW),
            ],
        )

        summary, findings = build_report(
            tenant, entity, "SOC2", dt.date(2026, 1, 1), dt.date(2026, 1, 31)
        )
        controls = summary["controls"]

        assert controls["failing"] <= controls["assessed"] <= controls["total"]
        assert (
            controls["assessed"] + controls["not_applicable"] + controls["not_assessed"]
            == (controls["total"])
        )
        assert sum(summary["open_findings_by_severity"].values()) == controls["failing"]
        assert controls["assessed"] == 4
        assert summary["compliance_score"] == 50.0
        assert findings[-1]["control_id"] == "CC9.9", "controls outside the catalog come last"
        assert findings[-1]["control_title"] == ""

    def test_other_entities_and_regulations_excluded(self, tenant, entity, other_entity):
        from compliance.inventory.models import Entity

        sibling = Entity.objects.create(tenant=tenant, entity_type="model", name="Sibling")
        make_check(sibling, "SOC2", at(dt.date(2026, 1, 3)), [("CC6.1", FAIL, Severity.LOW)])
        make_check(entity, "GDPR", at(dt.date(2026, 1, 3)), [("Art. 32", FAIL, Severity.LOW)])

        summary, findings = build_report(
            tenant, entity, "SOC2", dt.date(2026, 1, 1), dt.date(2026, 1, 31)
        )

        assert summary["checks"]["total"] == 0
        assert findings == []

    def test_previous_period_change(self, tenant, entity):
        make_check(
            entity,
            "SOC2",
            at(dt.date(2025, 12, 20)),
            [("CC6.1", FAIL, Severity.LOW), ("CC6.2", PASS, Severity.LOW)],
        )
        make_check(
            entity,
            "SOC2",
            at(dt.date(2026, 1, 20)),
            [("CC6.1", PASS, Severity.LOW), ("CC6.2", PASS, Severity.LOW)],
        )

        summary, _ = build_report(tenant, entity, "SOC2", dt.date(2026, 1, 1), dt.date(2026, 1, 31))
        previous = summary["previous_period"]

        assert previous["period_start"] == "2025-12-01"
        assert previous["period_end"] == "2025-12-31"
        assert previous["compliance_score"] == 50.0
        assert previous["change"] == 50.0

    def test_daily_trend_in_tenant_time_zone(self, tenant, entity):
        # 23:30 UTC on 28 March is already 29 March in Berlin.
        late = dt.datetime(2026, 3, 28, 23, 30, tzinfo=dt.UTC)
        make_check(entity, "SOC2", late, [("CC6.1", FAIL, Severity.LOW)])
        make_check(entity, "SOC2", at(dt.date(2026, 3, 30)), [("CC6.1", PASS, Severity.LOW)])

        summary, _ = build_report(
            tenant, entity, "SOC2", dt.date(2026, 3, 27), dt.date(2026, 3, 31)
        )
        points = {point["start"]: point for point in summary["trend"]["points"]}

        assert summary["trend"]["granularity"] == "day"
        assert list(points) == [
            "2026-03-27",
            "2026-03-28",
            "2026-03-29",
            "2026-03-30",
            "2026-03-31",
        ]
        assert points["2026-03-28"]["score"] is None
        assert points["2026-03-29"]["score"] == 0.0
        assert points["2026-03-29"]["checks"] == 1
        assert points["2026-03-30"]["score"] == 100.0
        assert points["2026-03-31"]["score"] == 100.0, "posture carries forward"

    @pytest.mark.parametrize(
        ("days", "granularity", "buckets"),
        [(31, "day", 31), (90, "week", 14), (365, "month", 12), (400, "month", 14)],
    )
    def test_trend_granularity(self, tenant, entity, days, granularity, buckets):
        end = dt.date(2026, 6, 30)
        start = end - dt.timedelta(days=days - 1)

        summary, _ = build_report(tenant, entity, "SOC2", start, end)
        points = summary["trend"]["points"]

        assert summary["trend"]["granularity"] == granularity
        assert len(points) == buckets
        assert points[0]["start"] == start.isoformat()
        assert points[-1]["end"] == end.isoformat()
