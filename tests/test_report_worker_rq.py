"""The RQ tasks backend: the real ``rqworker`` in a child process against Redis on this machine.

These tests need the test process itself to enqueue into Redis, so they run
only under ``TASKS_BACKEND=rq`` with ``REDIS_URL`` naming a Redis server on
127.0.0.1 (``.ci/run`` uses database 7). Each test flushes that Redis
database before and after it, so point ``REDIS_URL`` at a database that
contains no other data.
"""

import datetime as dt
import os
import subprocess
import sys
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.utils import timezone

from compliance.reports.models import Report, ReportStatus
from compliance.reports.services import reap_reports
from compliance.reports.tasks import generate_report_task
from tests.conftest import ROOT, assert_status, database_url

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
WORKER_TIMEOUT_SECONDS = 180

pytestmark = [
    pytest.mark.skipif(
        settings.TASKS_BACKEND != "rq",
        reason="needs TASKS_BACKEND=rq and REDIS_URL=redis://127.0.0.1:6379/7 (.ci/run sets both)",
    ),
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def redis_queue():
    """Return the RQ queue of the default task queue, on an empty Redis database."""
    import django_rq
    import redis

    host = urlsplit(settings.REDIS_URL).hostname
    if host not in LOOPBACK_HOSTS:
        pytest.skip(f"REDIS_URL names host {host!r}; these tests use only a Redis on 127.0.0.1")
    queue = django_rq.get_queue("default")
    try:
        queue.connection.ping()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        pytest.skip(f"no Redis answers at {settings.REDIS_URL}: {exc}")

    queue.connection.flushdb()
    yield queue
    queue.connection.flushdb()


def run_rq_worker(*arguments):
    """Run ``manage.py rqworker`` on the default queue in a child process on the test database."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "TASKS_BACKEND": "rq",
        "REDIS_URL": settings.REDIS_URL,
    }
    command = [
        sys.executable,
        "manage.py",
        "rqworker",
        "--job-class",
        "django_tasks_rq.Job",
        *arguments,
        "default",
    ]
    # The arguments are constants of these tests.
    completed = subprocess.run(  # noqa: S603
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=WORKER_TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return completed


def make_generating(entity, days, **fields):
    end = entity.tenant.today()
    return Report.objects.create(
        tenant=entity.tenant,
        entity=entity,
        regulation="SOC2",
        period_start=end - dt.timedelta(days=days - 1),
        period_end=end,
        **fields,
    )


def ago(seconds):
    return timezone.now() - dt.timedelta(seconds=seconds)


def test_queued_report_generated(api, entity, soc2_history, redis_queue):
    end = entity.tenant.today()
    body = {
        "entity_type": entity.entity_type,
        "entity_id": str(entity.pk),
        "regulation": "SOC2",
        "period_start": (end - dt.timedelta(days=89)).isoformat(),
        "period_end": end.isoformat(),
    }
    created = api.post("/v1/compliance/reports", json=body)
    assert_status(created, 202)
    repeated = api.post("/v1/compliance/reports", json=body)
    assert_status(repeated, 202)
    assert repeated.json()["id"] == created.json()["id"]
    assert redis_queue.count == 1

    run_rq_worker("--burst")

    report = Report.objects.get()
    assert report.status == ReportStatus.READY
    assert report.attempts == 1
    assert report.digest.startswith("sha256:")
    assert report.pdf_sha256
    assert redis_queue.count == 0
    fetched = api.get(f"/v1/compliance/reports/{created.json()['id']}")
    assert fetched.json()["status"] == "ready"


def test_lost_task_enqueued_again(entity, soc2_history, redis_queue):
    lost = make_generating(entity, 90, enqueued_at=ago(settings.REPORT_REQUEUE_AFTER_SECONDS + 5))

    result = reap_reports()

    assert result.requeued == [lost.public_id]
    assert redis_queue.count == 1
    run_rq_worker("--burst")
    lost.refresh_from_db()
    assert lost.status == ReportStatus.READY


def test_worker_recovers_abandoned_report(entity, soc2_history, redis_queue):
    expired = ago(settings.REPORT_CLAIM_LEASE_SECONDS + 5)
    abandoned = make_generating(entity, 120, attempts=1, claimed_at=expired, enqueued_at=expired)
    queued = make_generating(entity, 90)
    generate_report_task.enqueue(str(queued.pk))

    run_rq_worker("--burst")

    abandoned.refresh_from_db()
    queued.refresh_from_db()
    assert queued.status == ReportStatus.READY
    assert abandoned.status == ReportStatus.READY
    assert abandoned.attempts == 2


def test_max_jobs_stops_worker(entity, soc2_history, redis_queue):
    reports = [make_generating(entity, days) for days in (60, 90)]
    for report in reports:
        generate_report_task.enqueue(str(report.pk))

    run_rq_worker("--max-jobs", "1")

    statuses = sorted(Report.objects.values_list("status", flat=True))
    assert statuses == [ReportStatus.GENERATING, ReportStatus.READY]
    assert redis_queue.count == 1
