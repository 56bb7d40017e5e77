"""Generate a large, deterministic data set for ``bench/run.py`` and load it in bulk.

One tenant (Europe/Berlin) with ``--entities`` entities and ``--checks``
checks over the ``--days`` days up to ``--end``. Entity 0 is the big
entity: ``--big-checks`` EU AI Act checks with ``--big-findings`` findings
over ``--big-controls`` controls (those of the catalog, then controls
outside it named ``X.1``, ``X.2`` and so on, at least 4), with a
realistic status mix and a share of checks that share their instant with
the previous one. The other checks are spread over the other entities and
the five regulations, with ``--background-findings`` findings each.

Checks and findings are written with PostgreSQL ``COPY`` through psycopg,
or with SQLite ``executemany`` in large transactions. The daily rollups are
computed with the same functions that the save paths use and loaded the
same way. The same ``--seed`` gives the same rows. Run it on an empty
database, for example::

    createdb -h 127.0.0.1 -U root bench
    .venv/bin/python bench/generate.py --database-url postgres://root@127.0.0.1:5432/bench
    .venv/bin/python bench/generate.py --database-url sqlite:////tmp/bench.sqlite3

``--scale 0.1`` divides every count by ten for a quick run.
"""

import argparse
import datetime as dt
import os
import random
import sys
import time
import uuid
from collections import namedtuple
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TENANT_SLUG = "bench"
TENANT_TIME_ZONE = "Europe/Berlin"
BIG_ENTITY_NAME = "Big entity"
BIG_REGULATION = "EU_AI_ACT"
# Controls outside the catalog that the big entity always has evidence for.
MIN_EXTRA_CONTROLS = 4
# Share of checks that reuse the previous check's instant, so reports meet ties on time.
TIE_RATE = 0.1
STATUS_WEIGHTS = {"pass": 70, "fail": 15, "not_assessed": 8, "not_applicable": 7}
SEVERITY_WEIGHTS = {"low": 30, "medium": 38, "high": 22, "critical": 10}
SOURCES = ["automated", "imported", "api"]
PROGRESS_EVERY = 100

CHECK_COLUMNS = (
    "id",
    "tenant_id",
    "entity_id",
    "regulation",
    "scope",
    "status",
    "source",
    "source_name",
    "source_digest",
    "is_demo",
    "catalog_version",
    "rule_set_version",
    "created_at",
    "completed_at",
)
FINDING_COLUMNS = (
    "id",
    "compliance_check_id",
    "tenant_id",
    "entity_id",
    "regulation",
    "observed_at",
    "finding_id",
    "control_id",
    "status",
    "severity",
    "title",
    "description",
    "evidence",
    "remediation",
)


class FindingRow(namedtuple("FindingRow", FINDING_COLUMNS)):
    """A generated finding in column order, readable by the rollup functions."""

    __slots__ = ()

    @property
    def pk(self):
        return self.id


CheckRow = namedtuple("CheckRow", CHECK_COLUMNS)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="postgres://... or sqlite:////path")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--scale", type=float, default=1.0, help="factor on every count")
    parser.add_argument("--entities", type=int, default=1000)
    parser.add_argument(
        "--checks", type=int, default=1_000_000, help="all checks, big entity's too"
    )
    parser.add_argument("--big-checks", type=int, default=50_000)
    parser.add_argument("--big-findings", type=int, default=500_000)
    parser.add_argument(
        "--big-controls",
        type=int,
        default=130,
        help="controls of the big entity, padded with controls outside the catalog (default 130)",
    )
    parser.add_argument(
        "--background-findings", type=int, default=1, help="findings per other check (default 1)"
    )
    parser.add_argument("--days", type=int, default=365, help="length of the history in days")
    parser.add_argument(
        "--end", type=dt.date.fromisoformat, default=dt.date(2026, 11, 30), help="last day"
    )
    args = parser.parse_args(argv)
    for name in ("entities", "checks", "big_checks", "big_findings"):
        setattr(args, name, max(1, round(getattr(args, name) * args.scale)))
    return args


def setup_django(database_url):
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("COMPLIANCE_DEMO", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "compliance.settings")
    import django

    django.setup()


class Timer:
    """Print the seconds each phase took, and the total at the end."""

    def __init__(self):
        self.started = self.last = time.perf_counter()

    def lap(self, label):
        now = time.perf_counter()
        print(f"{label}: {now - self.last:.1f} s", flush=True)
        self.last = now

    def total(self):
        return time.perf_counter() - self.started


def main(argv=None):
    args = parse_args(argv)
    setup_django(args.database_url)
    from bench.loader import BulkWriter, prepare_database, vacuum_and_analyze

    timer = Timer()
    tenant, entities, catalog = prepare_database(
        TENANT_SLUG, TENANT_TIME_ZONE, args, BIG_ENTITY_NAME
    )
    timer.lap("schema, catalog, tenant and entities")

    rng = random.Random(args.seed)  # noqa: S311 - reproducible benchmark data, not security
    start = dt.datetime.combine(
        args.end - dt.timedelta(days=args.days - 1), dt.time.min, tzinfo=tenant.zone
    )
    span_seconds = int(
        (dt.datetime.combine(args.end, dt.time.max, tzinfo=tenant.zone) - start).total_seconds()
    )
    counter = iter(range(1, 2**62))
    totals = {"checks": 0, "findings": 0, "control_days": 0, "check_days": 0}

    with BulkWriter() as writer:
        big = generate_big_entity(rng, tenant, entities[0], catalog, start, span_seconds, args)
        write_entity(writer, tenant, *big, counter, totals)
        timer.lap(f"big entity: {args.big_checks} checks, {totals['findings']} findings")

        background = args.checks - args.big_checks
        per_entity = split_evenly(background, len(entities) - 1)
        for index, (entity, count) in enumerate(zip(entities[1:], per_entity, strict=True)):
            rows = generate_background_entity(
                rng, tenant, entity, catalog, start, span_seconds, count, args
            )
            write_entity(writer, tenant, *rows, counter, totals)
            if (index + 1) % PROGRESS_EVERY == 0:
                timer.lap(f"{index + 1} background entities, {totals['checks']} checks so far")
        timer.lap("last background entities")
        writer.finish(totals["findings"])
    timer.lap("commit")
    vacuum_and_analyze()
    timer.lap("vacuum and statistics")

    print(
        f"loaded {totals['checks']} checks, {totals['findings']} findings, "
        f"{totals['control_days']} control days, {totals['check_days']} check days "
        f"for {len(entities)} entities with seed {args.seed} in {timer.total():.1f} s"
    )
    print(f"big entity: {entities[0].pk}")


def split_evenly(total, parts):
    """Return ``parts`` counts that add up to ``total`` and differ by at most one."""
    if parts <= 0:
        return []
    base, extra = divmod(total, parts)
    return [base + (1 if index < extra else 0) for index in range(parts)]


def weighted(rng, weights):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def check_times(rng, count, start, span_seconds):
    """Return ``count`` sorted instants in the span, a ``TIE_RATE`` share repeating the previous."""
    times = sorted(start + dt.timedelta(seconds=rng.randrange(span_seconds)) for _ in range(count))
    for index in range(1, count):
        if rng.random() < TIE_RATE:
            times[index] = times[index - 1]
    return [moment.astimezone(dt.UTC) for moment in times]


def check_status(findings):
    """Return the check status as ``status_from_findings`` does, for generated findings."""
    from compliance.checks.models import status_from_findings

    return str(status_from_findings(findings))


def new_check(rng, tenant, entity, regulation, created_at, status):
    return CheckRow(
        id=uuid.UUID(int=rng.getrandbits(128), version=4),
        tenant_id=tenant.pk,
        entity_id=entity.pk,
        regulation=regulation,
        scope="{}",
        status=status,
        source=rng.choice(SOURCES),
        source_name="",
        source_digest="",
        is_demo=False,
        catalog_version="",
        rule_set_version="",
        created_at=created_at,
        completed_at=created_at + dt.timedelta(seconds=rng.randint(5, 900)),
    )


def new_finding(check_id, tenant, entity, regulation, created_at, control_id, status, severity):
    return FindingRow(
        id=None,
        compliance_check_id=check_id,
        tenant_id=tenant.pk,
        entity_id=entity.pk,
        regulation=regulation,
        observed_at=created_at,
        finding_id=f"bench:{control_id}:{created_at:%Y%m%d%H%M%S}",
        control_id=control_id,
        status=status,
        severity=severity,
        title=f"{control_id} evaluated",
        description=f"{control_id} is {status}",
        evidence="{}",
        remediation="" if status == "pass" else f"Close the gap in {control_id}.",
    )


def generate_big_entity(rng, tenant, entity, catalog, start, span_seconds, args):
    """Return ``(checks, findings)`` of the big entity over ``--big-controls`` controls."""
    extra = max(MIN_EXTRA_CONTROLS, args.big_controls - len(catalog[BIG_REGULATION]))
    controls = [*catalog[BIG_REGULATION], *(f"X.{number}" for number in range(1, extra + 1))]
    severity_of = {control_id: weighted(rng, SEVERITY_WEIGHTS) for control_id in controls}
    per_check = split_evenly(args.big_findings, args.big_checks)

    checks, findings = [], []
    for created_at, count in zip(
        check_times(rng, args.big_checks, start, span_seconds), per_check, strict=True
    ):
        check_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        rows = [
            new_finding(
                check_id,
                tenant,
                entity,
                BIG_REGULATION,
                created_at,
                control_id,
                weighted(rng, STATUS_WEIGHTS),
                severity_of[control_id],
            )
            for control_id in rng.sample(controls, min(count, len(controls)))
        ]
        check = new_check(rng, tenant, entity, BIG_REGULATION, created_at, check_status(rows))
        checks.append(check._replace(id=check_id))
        findings.extend(rows)
    return checks, findings


def generate_background_entity(rng, tenant, entity, catalog, start, span_seconds, count, args):
    """Return ``(checks, findings)`` of an ordinary entity over all five regulations."""
    checks, findings = [], []
    regulations = sorted(catalog)
    for created_at in check_times(rng, count, start, span_seconds):
        regulation = rng.choice(regulations)
        check_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        rows = [
            new_finding(
                check_id,
                tenant,
                entity,
                regulation,
                created_at,
                rng.choice(catalog[regulation]),
                weighted(rng, STATUS_WEIGHTS),
                weighted(rng, SEVERITY_WEIGHTS),
            )
            for _ in range(args.background_findings)
        ]
        status = check_status(rows) if rows else "pending"
        check = new_check(rng, tenant, entity, regulation, created_at, status)
        checks.append(check._replace(id=check_id))
        findings.extend(rows)
    return checks, findings


def write_entity(writer, tenant, checks, findings, counter, totals):
    """Number the findings, write the entity's rows and its rollups."""
    from compliance.checks.rollups import (
        check_day_rows,
        check_days,
        control_day_rows,
        control_days,
        control_month_rows,
        control_months,
    )

    findings = [finding._replace(id=next(counter)) for finding in findings]
    zones = {tenant.pk: tenant.zone}
    days = control_days(findings, zones)
    control_rows = control_day_rows(days)
    month_rows = control_month_rows(control_months(days))
    check_rows = check_day_rows(check_days(checks, zones))

    writer.write_checks(checks)
    writer.write_findings(findings)
    writer.write_rollups(control_rows, check_rows, month_rows)
    totals["checks"] += len(checks)
    totals["findings"] += len(findings)
    totals["control_days"] += len(control_rows)
    totals["check_days"] += len(check_rows)


if __name__ == "__main__":
    main()
