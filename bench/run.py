"""Measure report aggregation, the check list and PDF rendering on a generated data set.

Run ``bench/generate.py`` first, then, for each database in one run::

    .venv/bin/python bench/run.py \\
        --database-url postgres://root@127.0.0.1:5432/bench \\
        --database-url sqlite:////tmp/bench.sqlite3

Each database is measured in its own child process, one after the other.
Every case runs once to warm caches and then ``--runs`` times (fewer for the
slow baselines, and never past ``--budget`` seconds per case). The table
gives the median and minimum in milliseconds and each case's ratio to the
baseline measured in the same process:

* ``build_report`` of the big entity for 90 and 365 days, against the naive
  SQL (checks joined to findings, the latest finding per control by a
  window function) and the previous implementation that scans findings.
* The logic of ``GET /v1/compliance/reports`` (filtered count, a page of 25
  checks and their findings) at offset 0 and 100,000, against the same
  three statements as bare SQL through the database cursor.
* ``render_pdf`` of a stored ready report, against WeasyPrint rendering the
  same HTML without the PDF/A variant, attachment and finisher.

``--json FILE`` also writes the figures with the machine facts.
"""

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TENANT_SLUG = "bench"
BIG_ENTITY_NAME = "Big entity"
BIG_REGULATION = "EU_AI_ACT"
PAGE_SIZE = 25
OFFSETS = (0, 100_000)
REPORT_DAYS = (90, 365)
PDF_REPORT_DAYS = 365
TARGETS = {
    "report_json_365_ms": 50.0,
    "list_ratio": 2.0,
    "pdf_warm_ms": 1500.0,
}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        action="append",
        required=True,
        help="a database made by bench/generate.py; repeat the option to measure several",
    )
    parser.add_argument(
        "--end",
        type=dt.date.fromisoformat,
        default=dt.date(2026, 11, 30),
        help="last day of the measured reports, the generator's --end (default 2026-11-30)",
    )
    parser.add_argument("--runs", type=int, default=15, help="timed runs of a fast case")
    parser.add_argument("--slow-runs", type=int, default=5, help="timed runs of a slow case")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per case at most")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def measure(function, runs, budget):
    """Run ``function`` once to warm up, then up to ``runs`` times within ``budget`` seconds.

    Return the durations in milliseconds.
    """
    function()
    durations = []
    deadline = time.perf_counter() + budget
    while len(durations) < runs and (not durations or time.perf_counter() < deadline):
        started = time.perf_counter()
        function()
        durations.append((time.perf_counter() - started) * 1000)
    return durations


def summarise(durations):
    return {
        "median_ms": round(statistics.median(durations), 2),
        "min_ms": round(min(durations), 2),
        "runs": len(durations),
    }


# The child process: one database.


def setup_django(database_url):
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("COMPLIANCE_DEMO", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "compliance.settings")
    import django

    django.setup()


def naive_report(tenant, entity, regulation, start, end):
    """Run the report's per-control query as a plain join of checks and findings.

    This is the statement a straightforward implementation sends: every
    finding of the period's checks, ranked per control by a window function.
    """
    from django.db import connection

    from compliance.checks.models import Check, Finding
    from compliance.reports.aggregation import period_bounds

    lower, upper = period_bounds(start, end, tenant.zone)
    checks = connection.ops.quote_name(Check._meta.db_table)
    findings = connection.ops.quote_name(Finding._meta.db_table)
    status_rank = (
        "CASE f.status WHEN 'fail' THEN 0 WHEN 'not_assessed' THEN 1 WHEN 'pass' THEN 2 "
        "WHEN 'not_applicable' THEN 3 ELSE 4 END"
    )
    severity_rank = (
        "CASE f.severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 "
        "WHEN 'low' THEN 3 ELSE 4 END"
    )
    latest_sql = f"""
        SELECT control_id, status, severity, finding_id, title, description, remediation,
               compliance_check_id, first_seen, last_seen, observations
        FROM (
            SELECT f.control_id, f.status, f.severity, f.finding_id, f.title, f.description,
                   f.remediation, f.compliance_check_id,
                   ROW_NUMBER() OVER (
                       PARTITION BY f.control_id
                       ORDER BY f.observed_at DESC, {status_rank}, {severity_rank}, f.id DESC
                   ) AS position,
                   MIN(f.observed_at) OVER (PARTITION BY f.control_id) AS first_seen,
                   MAX(f.observed_at) OVER (PARTITION BY f.control_id) AS last_seen,
                   COUNT(*) OVER (PARTITION BY f.control_id) AS observations
            FROM {checks} c JOIN {findings} f ON f.compliance_check_id = c.id
            WHERE c.tenant_id = %s AND c.entity_id = %s AND c.regulation = %s
              AND c.created_at >= %s AND c.created_at < %s
        ) ranked
        WHERE position = 1
    """  # noqa: S608 - only table names are formatted in
    status_sql = f"""
        SELECT status, COUNT(*) FROM {checks}
        WHERE tenant_id = %s AND entity_id = %s AND regulation = %s
          AND created_at >= %s AND created_at < %s
        GROUP BY status
    """  # noqa: S608 - only table names are formatted in
    params = _params(Check, [tenant.pk, entity.pk, regulation, lower, upper])
    with connection.cursor() as cursor:
        cursor.execute(latest_sql, params)
        latest = cursor.fetchall()
        cursor.execute(status_sql, params)
        return latest, cursor.fetchall()


def _params(model, values):
    """Adapt tenant, entity, regulation and bounds as the ORM would for ``model``'s columns."""
    from django.db import connection

    tenant, entity, regulation, lower, upper = values
    meta = model._meta
    return [
        meta.get_field("tenant").get_db_prep_value(tenant, connection),
        meta.get_field("entity").get_db_prep_value(entity, connection),
        regulation,
        meta.get_field("created_at").get_db_prep_value(lower, connection),
        meta.get_field("created_at").get_db_prep_value(upper, connection),
    ]


def report_json(tenant, entity, regulation, start, end):
    """Build the report and encode it as canonical JSON, as generating a report does."""
    from compliance.lib.canonical_json import canonical_json
    from compliance.reports.aggregation import build_report

    summary, findings = build_report(tenant, entity, regulation, start, end)
    return canonical_json({"summary": summary, "findings": findings})


def list_page(tenant, offset):
    """Run the logic of ``GET /v1/compliance/reports``: filter, count, page, findings."""
    from django.http import QueryDict

    from compliance.api.params import limit_offset, validate_query
    from compliance.api.serializers import check_items
    from compliance.api.views import ComplianceReportsView
    from compliance.checks.filters import CheckFilter
    from compliance.checks.models import Check

    params = QueryDict(f"limit={PAGE_SIZE}&offset={offset}")
    filterset = CheckFilter(params, queryset=Check.objects.for_tenant(tenant))
    validate_query(params, ComplianceReportsView.list_parameters, filterset)
    limit, offset = limit_offset(params)
    checks = filterset.qs
    total = checks.count()
    page = list(checks.order_by("-created_at", "-id")[offset : offset + limit])
    return {"items": check_items(page), "total": total}


def list_page_sql(tenant, offset):
    """Send the list's three statements as bare SQL and fetch the rows."""
    from django.db import connection

    from compliance.checks.models import Check, Finding

    checks = connection.ops.quote_name(Check._meta.db_table)
    findings = connection.ops.quote_name(Finding._meta.db_table)
    tenant_id = Check._meta.get_field("tenant").get_db_prep_value(tenant.pk, connection)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {checks} WHERE tenant_id = %s", [tenant_id])  # noqa: S608
        total = cursor.fetchone()[0]
        cursor.execute(
            f"SELECT id, entity_id, regulation, scope, status, created_at FROM {checks} "  # noqa: S608
            "WHERE tenant_id = %s ORDER BY created_at DESC, id DESC LIMIT %s OFFSET %s",
            [tenant_id, PAGE_SIZE, offset],
        )
        page = cursor.fetchall()
        ids = [row[0] for row in page]
        placeholders = ", ".join(["%s"] * len(ids)) or "NULL"
        cursor.execute(
            "SELECT compliance_check_id, finding_id, severity, title, description, control_id, "  # noqa: S608
            f"status, evidence, remediation FROM {findings} "
            f"WHERE compliance_check_id IN ({placeholders}) ORDER BY control_id, id",
            ids,
        )
        return total, page, cursor.fetchall()


def ready_report(tenant, entity, end):
    """Return a stored ready report of the big entity, generating it once as the API does."""
    from compliance.reports.models import Report, ReportStatus
    from compliance.reports.services import request_report

    period = {
        "tenant": tenant,
        "entity": entity,
        "regulation": BIG_REGULATION,
        "period_start": end - dt.timedelta(days=PDF_REPORT_DAYS - 1),
        "period_end": end,
    }
    stored = Report.objects.filter(**period, status=ReportStatus.READY).first()
    return stored or request_report(**period, in_background=False)


def bare_pdf(html):
    """Render ``html`` with WeasyPrint alone: no PDF/A variant, attachment or finisher."""
    from weasyprint import HTML

    from compliance.reports.pdf import StaticFileFetcher

    return HTML(string=html, url_fetcher=StaticFileFetcher()).write_pdf()


def days_only(function):
    """Call ``function`` with the month rows switched off, so reports read day rows only."""
    from compliance.checks import rollup_queries

    original = rollup_queries._month_and_day_ranges
    rollup_queries._month_and_day_ranges = lambda first_day, ends: ([], [(first_day, ends[-1])])
    try:
        return function()
    finally:
        rollup_queries._month_and_day_ranges = original


def database_facts():
    from django.db import connection

    from compliance.checks.models import (
        Check,
        DailyControlRollup,
        Finding,
        MonthlyControlRollup,
    )

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            version = f"PostgreSQL {cursor.fetchone()[0]}"
        else:
            cursor.execute("SELECT sqlite_version()")
            version = f"SQLite {cursor.fetchone()[0]}"
    return {
        "vendor": connection.vendor,
        "version": version,
        "checks": Check.objects.count(),
        "findings": Finding.objects.count(),
        "control_days": DailyControlRollup.objects.count(),
        "control_months": MonthlyControlRollup.objects.count(),
    }


def run_child(args):
    """Measure every case on one database and print the results as JSON."""
    setup_django(args.database_url[0])
    from django.template.loader import render_to_string

    from bench.reference_report import build_report_from_findings
    from compliance.inventory.models import Entity
    from compliance.reports.aggregation import build_report
    from compliance.reports.pdf import TEMPLATE, pdf_context, render_pdf
    from compliance.tenancy.models import Tenant

    tenant = Tenant.objects.get(slug=TENANT_SLUG)
    entity = Entity.objects.get(tenant=tenant, name=BIG_ENTITY_NAME)
    results = {"facts": database_facts(), "load_before": os.getloadavg(), "cases": {}}
    cases = results["cases"]
    fast, slow, budget = args.runs, args.slow_runs, args.budget

    for days in REPORT_DAYS:
        start = args.end - dt.timedelta(days=days - 1)
        period = (tenant, entity, BIG_REGULATION, start, args.end)
        cases[f"report_{days}"] = summarise(
            measure(lambda p=period: build_report(*p), fast, budget)
        )
        cases[f"report_json_{days}"] = summarise(
            measure(lambda p=period: report_json(*p), fast, budget)
        )
        cases[f"report_json_days_{days}"] = summarise(
            measure(lambda p=period: days_only(lambda: report_json(*p)), fast, budget)
        )
        cases[f"naive_{days}"] = summarise(measure(lambda p=period: naive_report(*p), slow, budget))
        cases[f"previous_{days}"] = summarise(
            measure(lambda p=period: build_report_from_findings(*p), slow, budget)
        )

    for offset in OFFSETS:
        cases[f"list_{offset}"] = summarise(
            measure(lambda o=offset: list_page(tenant, o), fast, budget)
        )
        cases[f"list_sql_{offset}"] = summarise(
            measure(lambda o=offset: list_page_sql(tenant, o), fast, budget)
        )

    report = ready_report(tenant, entity, args.end)
    html = render_to_string(TEMPLATE, pdf_context(report))
    cases["pdf"] = summarise(measure(lambda: render_pdf(report), slow, budget))
    cases["pdf_bare"] = summarise(measure(lambda: bare_pdf(html), slow, budget))

    results["load_after"] = os.getloadavg()
    print(json.dumps(results))


# The parent process: machine facts, one child per database, the table.


def machine_facts():
    facts = {"nproc": os.cpu_count(), "python": platform.python_version()}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            facts["cpu"] = line.split(":", 1)[1].strip()
            break
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            facts["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
            break
    return facts


ROWS = [
    ("build_report, 90 days", "report_90", "naive_90"),
    ("build_report + JSON, 90 days", "report_json_90", "naive_90"),
    ("same, day rows only, 90 days", "report_json_days_90", "naive_90"),
    ("naive join SQL, 90 days", "naive_90", None),
    ("previous build_report, 90 days", "previous_90", "naive_90"),
    ("build_report, 365 days", "report_365", "naive_365"),
    ("build_report + JSON, 365 days", "report_json_365", "naive_365"),
    ("same, day rows only, 365 days", "report_json_days_365", "naive_365"),
    ("naive join SQL, 365 days", "naive_365", None),
    ("previous build_report, 365 days", "previous_365", "naive_365"),
    ("list logic, offset 0", "list_0", "list_sql_0"),
    ("bare list SQL, offset 0", "list_sql_0", None),
    ("list logic, offset 100,000", "list_100000", "list_sql_100000"),
    ("bare list SQL, offset 100,000", "list_sql_100000", None),
    ("render_pdf, 365-day report", "pdf", "pdf_bare"),
    ("bare WeasyPrint, same HTML", "pdf_bare", None),
]


def table(results):
    """Return a Markdown table: one row per case, one column pair per database."""
    names = [result["facts"]["version"] for result in results]
    header = "| case | " + " | ".join(f"{name} median ms (min) | ratio" for name in names) + " |"
    lines = [header, "|---" * (1 + 2 * len(names)) + "|"]
    for label, key, baseline in ROWS:
        cells = []
        for result in results:
            case = result["cases"][key]
            ratio = ""
            if baseline:
                ratio = f"{case['median_ms'] / result['cases'][baseline]['median_ms']:.2f}x"
            cells.append(f"{case['median_ms']:.1f} ({case['min_ms']:.1f}) | {ratio}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdicts(result):
    """Return which targets the measurements of one database met."""
    cases = result["cases"]
    return {
        "report JSON 365 days < 50 ms": cases["report_json_365"]["median_ms"]
        < TARGETS["report_json_365_ms"],
        "list offset 0 < 2x bare SQL": cases["list_0"]["median_ms"]
        < TARGETS["list_ratio"] * cases["list_sql_0"]["median_ms"],
        "list offset 100,000 < 2x bare SQL": cases["list_100000"]["median_ms"]
        < TARGETS["list_ratio"] * cases["list_sql_100000"]["median_ms"],
        "PDF warm < 1.5 s": cases["pdf"]["median_ms"] < TARGETS["pdf_warm_ms"],
    }


def run_parent(args):
    results = []
    for url in args.database_url:
        command = [sys.executable, __file__, "--child", "--database-url", url]
        command += ["--end", args.end.isoformat(), "--runs", str(args.runs)]
        command += ["--slow-runs", str(args.slow_runs), "--budget", str(args.budget)]
        completed = subprocess.run(  # noqa: S603 - our own script with our own arguments
            command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=3600
        )
        if completed.returncode != 0:
            raise SystemExit(f"Measuring {url} failed:\n{completed.stderr[-4000:]}")
        results.append(json.loads(completed.stdout.strip().splitlines()[-1]))

    print(json.dumps(machine_facts()))
    for result in results:
        print(
            json.dumps(
                {"facts": result["facts"], "load": [result["load_before"], result["load_after"]]}
            )
        )
        print(json.dumps(verdicts(result)))
    print(table(results))
    if args.json:
        document = {"machine": machine_facts(), "results": results}
        args.json.write_text(json.dumps(document, indent=2))


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        run_child(args)
    else:
        run_parent(args)


if __name__ == "__main__":
    main()
