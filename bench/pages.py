"""Time the server side of the main pages on the data set of ``bench/generate.py``.

Run ``bench/generate.py`` first, then::

    .venv/bin/python bench/pages.py --database-url postgres://root@127.0.0.1:5432/bench

The script logs in a tenant admin of the ``bench`` tenant. The first run
creates that admin and a ready 365-day report of the big entity. Each page is
requested through Django's test client, so a time covers the middleware, the
view, the queries and the template, but no network or browser. Every page runs once
to warm caches and then ``--runs`` times, never past ``--budget`` seconds.

The baseline of a page is its main query: the slowest ``SELECT`` that the
page sent, executed again as bare SQL through the database cursor in the same
run. The table also gives the page's query count and the bare time of all its
``SELECT`` statements together, so the rest of the page time is Python:
ORM, forms and template rendering.
"""

import argparse
import datetime as dt
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import measure, ready_report, setup_django  # noqa: E402

TENANT_SLUG = "bench"
BIG_ENTITY_NAME = "Big entity"
BENCH_USERNAME = "bench-pages-admin"
PAGE_SIZE = 25
DEEP_OFFSET = 100_000
BUDGET_MS = 200.0
# A statement with common table expressions starts with WITH, and it is a read too.
READ_PREFIXES = ("SELECT", "WITH")
# Django runs ``QuerySet.iterator()`` on PostgreSQL through a server-side cursor,
# so the captured statement is the query behind a ``DECLARE``.
SERVER_CURSOR_PREFIX = re.compile(r'^DECLARE\s+"[^"]+"\s.*?\sCURSOR\s.*?\bFOR\s+', re.S)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", required=True, help="a database made by bench/generate.py"
    )
    parser.add_argument(
        "--end",
        type=dt.date.fromisoformat,
        default=dt.date(2026, 11, 30),
        help="last day of the report, the generator's --end (default 2026-11-30)",
    )
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each page")
    parser.add_argument(
        "--budget", type=float, default=30.0, help="seconds per page and per baseline at most"
    )
    parser.add_argument(
        "--only", help="measure only the pages whose name contains this text (default all)"
    )
    return parser.parse_args(argv)


def bench_admin(tenant):
    """Return the benchmark's admin user of ``tenant``, creating it on the first run."""
    from django.contrib.auth import get_user_model

    from compliance.tenancy.models import Membership, Role

    user, _ = get_user_model().objects.get_or_create(username=BENCH_USERNAME)
    Membership.objects.get_or_create(user=user, tenant=tenant, defaults={"role": Role.ADMIN})
    return user


def page_urls(entity, report):
    """Return ``[(name, url)]`` of the measured pages."""
    from django.urls import reverse

    deep_page = DEEP_OFFSET // PAGE_SIZE + 1
    return [
        ("overview", reverse("web:overview")),
        ("entities list", reverse("web:entity-list")),
        ("big entity detail", reverse("web:entity-detail", kwargs={"entity_id": entity.pk})),
        ("checks list, page 1", reverse("web:check-list")),
        (f"checks list, page {deep_page:,}", f"{reverse('web:check-list')}?page={deep_page}"),
        ("controls list", reverse("web:control-list")),
        ("reports list", reverse("web:report-list")),
        ("365-day report detail", reverse("web:report-detail", kwargs={"report_id": report.pk})),
    ]


def fetch(client, url):
    response = client.get(url)
    if response.status_code != 200:
        raise SystemExit(f"GET {url} returned {response.status_code}, expected 200.")
    return response


def select_statements(client, url):
    """Request ``url`` once and return the query count and the SQL of every read it sent.

    A read is a ``SELECT`` or a ``WITH`` statement.
    """
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        fetch(client, url)
    statements = [
        SERVER_CURSOR_PREFIX.sub("", query["sql"].lstrip()) for query in captured.captured_queries
    ]
    reads = [sql for sql in statements if sql.upper().startswith(READ_PREFIXES)]
    return len(statements), reads


def run_bare(sql):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql)
        cursor.fetchall()


def measure_page(client, name, url, runs, budget):
    """Time one page, its query count and the bare SQL of its ``SELECT`` statements."""
    page_ms = measure(lambda: fetch(client, url), runs, budget)
    query_count, selects = select_statements(client, url)
    # Every statement runs bare, and the slowest of them is the main query.
    bare_medians = []
    deadline = time.perf_counter() + budget
    for sql in selects:
        remaining = max(deadline - time.perf_counter(), 0.0)
        bare_medians.append(
            (statistics.median(measure(lambda s=sql: run_bare(s), runs, remaining)), sql)
        )
    main_ms, main_sql = max(bare_medians, default=(0.0, ""))
    return {
        "page": name,
        "url": url,
        "median_ms": round(statistics.median(page_ms), 1),
        "min_ms": round(min(page_ms), 1),
        "runs": len(page_ms),
        "queries": query_count,
        "main_sql_ms": round(main_ms, 1),
        "all_sql_ms": round(sum(median for median, _ in bare_medians), 1),
        "main_sql": main_sql,
    }


def machine_facts():
    from django.db import connection

    facts = {"nproc": os.cpu_count(), "python": platform.python_version()}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            facts["cpu"] = line.split(":", 1)[1].strip()
            break
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            facts["database"] = f"PostgreSQL {cursor.fetchone()[0]}"
        else:
            cursor.execute("SELECT sqlite_version()")
            facts["database"] = f"SQLite {cursor.fetchone()[0]}"
    facts["load_average"] = os.getloadavg()
    return facts


def table(results):
    lines = [
        "| page | median ms (min) | queries | main query, bare SQL ms | all SELECTs, bare SQL ms | "
        f"within {BUDGET_MS:.0f} ms |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        verdict = "yes" if result["median_ms"] < BUDGET_MS else "**no**"
        lines.append(
            f"| {result['page']} | {result['median_ms']:.1f} ({result['min_ms']:.1f}) | "
            f"{result['queries']} | {result['main_sql_ms']:.1f} | {result['all_sql_ms']:.1f} | "
            f"{verdict} |"
        )
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    setup_django(args.database_url)
    from django.test import Client

    from compliance.inventory.models import Entity
    from compliance.tenancy.models import Tenant

    tenant = Tenant.objects.get(slug=TENANT_SLUG)
    entity = Entity.objects.get(tenant=tenant, name=BIG_ENTITY_NAME)
    report = ready_report(tenant, entity, args.end)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(bench_admin(tenant))

    pages = page_urls(entity, report)
    if args.only:
        pages = [(name, url) for name, url in pages if args.only in name]

    results = []
    for name, url in pages:
        result = measure_page(client, name, url, args.runs, args.budget)
        print(f"{name}: {result['median_ms']} ms, {result['queries']} queries", file=sys.stderr)
        results.append(result)

    print(machine_facts())
    print(table(results))
    for result in results:
        print(f"\n{result['page']}, main query ({result['main_sql_ms']} ms):\n{result['main_sql']}")


if __name__ == "__main__":
    main()
