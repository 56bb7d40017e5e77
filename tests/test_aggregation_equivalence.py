"""The rollup-based report equals the report computed from every finding, on random histories.

Each history is generated from a fixed seed, so a failure reproduces. Its
instants cluster around the DST changes of the tenant's time zone and
around local midnight, and many findings share an instant, so the
tie-break rules and the local-day boundaries are exercised on every run.
"""

import datetime as dt
import random
import zoneinfo

import pytest

from bench.reference_report import build_report_from_findings
from compliance.catalog.models import Severity
from compliance.checks.models import (
    Check,
    CheckSource,
    Finding,
    FindingStatus,
    status_from_findings,
)
from compliance.checks.rollups import record_rollups
from compliance.inventory.models import Entity
from compliance.reports.aggregation import build_report
from compliance.tenancy.models import Tenant

REGULATION = "SOC2"
# Catalog controls plus two outside the catalog, which reports list last.
CONTROLS = ["CC6.1", "CC6.2", "CC6.3", "CC7.2", "CC8.1", "A1.2", "X.1", "X.2"]
STATUSES = list(FindingStatus)
SEVERITIES = list(Severity)
CHECKS_PER_HISTORY = 60
MAX_FINDINGS_PER_CHECK = 6
TIE_RATE = 0.35

# Local dates of the spring and autumn DST changes in 2026.
DST_DAYS = {
    "Europe/Berlin": [dt.date(2026, 3, 29), dt.date(2026, 10, 25)],
    "America/New_York": [dt.date(2026, 3, 8), dt.date(2026, 11, 1)],
}


def random_instant(rng, zone):
    """Return an aware UTC instant near a DST change, a local midnight or anywhere in 2026."""
    kind = rng.random()
    if kind < 0.5:
        day = rng.choice(DST_DAYS[zone.key]) + dt.timedelta(days=rng.randint(-2, 2))
        # Whole UTC hours and minutes cover both passes of the repeated autumn hour.
        midnight = dt.datetime.combine(day, dt.time.min, tzinfo=zone).astimezone(dt.UTC)
        return midnight + dt.timedelta(minutes=rng.randrange(0, 26 * 60, 30))
    if kind < 0.75:
        day = dt.date(2026, 1, 1) + dt.timedelta(days=rng.randint(0, 364))
        midnight = dt.datetime.combine(day, dt.time.min, tzinfo=zone).astimezone(dt.UTC)
        return midnight + dt.timedelta(seconds=rng.choice([-1, 0, 1]))
    start = dt.datetime(2025, 12, 1, tzinfo=dt.UTC)
    return start + dt.timedelta(seconds=rng.randrange(0, 400 * 86400))


def random_results(rng):
    """Return ``(control, status, severity)`` rows; a control may repeat within one check."""
    count = rng.randint(1, MAX_FINDINGS_PER_CHECK)
    return [
        (rng.choice(CONTROLS), rng.choice(STATUSES), rng.choice(SEVERITIES)) for _ in range(count)
    ]


def save_check(entity, when, results, regulation=REGULATION):
    """Insert one check with findings, without rollups; return ``(check, findings)``."""
    check = Check(
        tenant=entity.tenant,
        entity=entity,
        regulation=regulation,
        source=CheckSource.API,
        created_at=when,
        completed_at=when,
    )
    findings = [
        Finding(
            compliance_check=check,
            tenant=entity.tenant,
            entity=entity,
            regulation=regulation,
            observed_at=when,
            finding_id=f"{control_id}-{index}",
            control_id=control_id,
            status=status,
            severity=severity,
            title=f"{control_id} {status}",
            description=f"{severity} finding",
        )
        for index, (control_id, status, severity) in enumerate(results)
    ]
    check.status = status_from_findings(findings)
    check.save()
    Finding.objects.bulk_create(findings)
    return check, findings


def build_history(entity, rng):
    """Store a random history, rolling it up in random batches as the save paths do."""
    instants = []
    pending = []
    for _ in range(CHECKS_PER_HISTORY):
        if instants and rng.random() < TIE_RATE:
            when = rng.choice(instants)
        else:
            when = random_instant(rng, entity.tenant.zone)
            instants.append(when)
        pending.append(save_check(entity, when, random_results(rng)))
        # Roll up one check at a time or several at once, like an import of many checks.
        if rng.random() < 0.6:
            record_rollups([check for check, _ in pending], [f for _, fs in pending for f in fs])
            pending = []
    record_rollups([check for check, _ in pending], [f for _, fs in pending for f in fs])


def periods(rng, zone_name):
    """Return report periods of every trend granularity, some starting or ending on a DST day."""
    spring, autumn = DST_DAYS[zone_name]
    fixed = [
        (spring - dt.timedelta(days=3), spring + dt.timedelta(days=3)),
        (autumn, autumn),
        (autumn - dt.timedelta(days=1), autumn + dt.timedelta(days=29)),
        (spring - dt.timedelta(days=45), spring + dt.timedelta(days=44)),
        (dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
        (dt.date(2026, 2, 10), dt.date(2026, 8, 10)),
    ]
    start = dt.date(2026, 1, 1) + dt.timedelta(days=rng.randint(0, 300))
    random_period = (start, start + dt.timedelta(days=rng.randint(0, 200)))
    return [*fixed, random_period]


@pytest.mark.django_db
@pytest.mark.parametrize("zone_name", ["Europe/Berlin", "America/New_York"])
@pytest.mark.parametrize("seed", range(4))
def test_rollup_report_matches_findings(zone_name, seed):
    rng = random.Random(f"{zone_name}|{seed}")  # noqa: S311 - reproducible test data
    tenant = Tenant.objects.create(slug=f"t{seed}", name="Random history", time_zone=zone_name)
    entity = Entity.objects.create(tenant=tenant, entity_type="agent", name="Agent")
    build_history(entity, rng)

    for start, end in periods(rng, zone_name):
        expected = build_report_from_findings(tenant, entity, REGULATION, start, end)
        actual = build_report(tenant, entity, REGULATION, start, end)

        assert actual[0] == expected[0], f"summary differs for {start}..{end}"
        assert actual[1] == expected[1], f"findings differ for {start}..{end}"


@pytest.mark.django_db
def test_rollup_report_matches_on_instant_ties():
    """Many checks at one instant across the repeated autumn hour, with every status."""
    zone = zoneinfo.ZoneInfo("Europe/Berlin")
    tenant = Tenant.objects.create(slug="ties", name="Ties", time_zone=zone.key)
    entity = Entity.objects.create(tenant=tenant, entity_type="agent", name="Agent")
    rng = random.Random("ties")  # noqa: S311 - reproducible test data
    # 00:30 and 01:30 UTC on 25 October 2026 are both 02:30 in Berlin.
    instants = [
        dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC),
        dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.UTC),
        dt.datetime(2026, 10, 24, 22, 0, tzinfo=dt.UTC),
    ]
    for _ in range(40):
        check, findings = save_check(entity, rng.choice(instants), random_results(rng))
        record_rollups([check], findings)

    for start, end in [
        (dt.date(2026, 10, 24), dt.date(2026, 10, 25)),
        (dt.date(2026, 10, 25), dt.date(2026, 10, 25)),
    ]:
        expected = build_report_from_findings(tenant, entity, REGULATION, start, end)

        assert build_report(tenant, entity, REGULATION, start, end) == expected
