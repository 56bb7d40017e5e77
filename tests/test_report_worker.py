"""Background generation: claims, the reaper, duplicate requests and the real db_worker.

The worker tests start ``manage.py db_worker`` in a child process against
the test database, so they run on SQLite and, with ``DATABASE_URL``, on
PostgreSQL. tests/test_report_worker_rq.py covers the RQ backend.
"""

import datetime as dt
import os
import subprocess
import sys
import threading

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.tasks import TaskResultStatus
from django.utils import timezone

from compliance.audit.models import AuditAction, AuditEvent, AuditOutcome
from compliance.reports.models import Report, ReportStatus
from compliance.reports.services import (
    claim_report,
    generate,
    reap_reports,
    request_report,
    save_under_claim,
    stopped_reason,
)
from compliance.reports.tasks import generate_report_task
from tests.conftest import ROOT, assert_status, database_url

WORKER_TIMEOUT_SECONDS = 180


def long_period(tenant, days=90):
    end = tenant.today()
    return end - dt.timedelta(days=days - 1), end


def make_generating(entity, *, days=90, **fields):
    """Create a generating report row directly, as a request that queued it would."""
    start, end = long_period(entity.tenant, days)
    return Report.objects.create(
        tenant=entity.tenant,
        entity=entity,
        regulation="SOC2",
        period_start=start,
        period_end=end,
        **fields,
    )


def ago(seconds):
    return timezone.now() - dt.timedelta(seconds=seconds)


def expire_claim(report):
    """Move the report's claim back past the lease, as if its worker had died."""
    expired = ago(settings.REPORT_CLAIM_LEASE_SECONDS + 5)
    Report.objects.filter(pk=report.pk).update(claimed_at=expired)
    report.refresh_from_db()


@pytest.fixture
def queued_report_ids():
    """Return a function listing the report ids waiting in the database task queue."""
    if settings.TASKS_BACKEND != "db":
        pytest.skip("reads the django-tasks-db queue, so it needs TASKS_BACKEND=db")
    from django_tasks_db.models import DBTaskResult

    def queued():
        waiting = DBTaskResult.objects.filter(status=TaskResultStatus.READY).order_by("enqueued_at")
        return [result.args_kwargs["args"][0] for result in waiting]

    return queued


def request_long(entity, **kwargs):
    start, end = long_period(entity.tenant)
    return request_report(
        tenant=entity.tenant,
        entity=entity,
        regulation="SOC2",
        period_start=start,
        period_end=end,
        **kwargs,
    )


class TestClaim:
    def test_second_claim_loses(self, entity):
        report = make_generating(entity)
        first = Report.objects.get(pk=report.pk)
        second = Report.objects.get(pk=report.pk)

        assert claim_report(first) is True
        assert claim_report(second) is False
        report.refresh_from_db()
        assert report.attempts == 1
        assert report.claimed_at == first.claimed_at

    def test_expired_claim_can_be_taken(self, entity):
        report = make_generating(entity)
        assert claim_report(report)
        expire_claim(report)

        assert claim_report(Report.objects.get(pk=report.pk)) is True
        report.refresh_from_db()
        assert report.attempts == 2

    def test_no_claim_without_attempts_left(self, entity, settings):
        settings.REPORT_GENERATION_RETRIES = 0
        report = make_generating(entity, attempts=1)

        assert claim_report(report) is False

    def test_no_claim_of_ready_report(self, entity):
        report = make_generating(entity, status=ReportStatus.READY)

        assert claim_report(report) is False

    @pytest.mark.django_db(transaction=True)
    def test_concurrent_claims_one_wins(self, entity):
        report = make_generating(entity)
        contenders = 4
        barrier = threading.Barrier(contenders, timeout=30)
        outcomes = []
        errors = []

        def contend():
            try:
                mine = Report.objects.get(pk=report.pk)
                barrier.wait()
                outcomes.append(claim_report(mine))
            except Exception as exc:
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=contend) for _ in range(contenders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert not errors
        assert sorted(outcomes) == [False, False, False, True]
        report.refresh_from_db()
        assert report.attempts == 1

    def test_lost_claim_discards_result(self, entity):
        report = make_generating(entity)
        assert claim_report(report)
        expire_claim(report)
        other = Report.objects.get(pk=report.pk)
        assert claim_report(other)

        report.status = ReportStatus.FAILED
        report.error = "late result"
        assert save_under_claim(report, ["status", "error"]) is False

        assert report.status == ReportStatus.GENERATING
        assert report.error == ""


class TestReaper:
    def test_expired_claim_retried_then_failed(self, entity, settings, queued_report_ids):
        settings.REPORT_GENERATION_RETRIES = 2
        report = make_generating(entity)
        report_id = str(report.pk)

        for attempt in (1, 2):
            assert claim_report(report)
            expire_claim(report)
            result = reap_reports()
            assert result.retried == [report.public_id], f"attempt {attempt}"
            report.refresh_from_db()
            assert report.status == ReportStatus.GENERATING
            assert report.claimed_at is None
            assert report.enqueued_at is not None
            assert queued_report_ids().count(report_id) == attempt

        assert claim_report(report)
        expire_claim(report)
        result = reap_reports()

        assert result.failed == [report.public_id]
        assert result.retried == []
        report.refresh_from_db()
        assert report.status == ReportStatus.FAILED
        assert report.attempts == 3
        assert report.error == (
            "The worker stopped while generating this report; it was retried 2 times."
        )
        event = AuditEvent.objects.get(action=AuditAction.REPORT_GENERATED)
        assert event.outcome == AuditOutcome.FAILURE
        assert event.details["error"] == report.error

    def test_live_claim_left_alone(self, entity, queued_report_ids):
        report = make_generating(entity, enqueued_at=ago(7200))
        assert claim_report(report)

        result = reap_reports()

        assert result.retried == result.requeued == result.failed == []
        report.refresh_from_db()
        assert report.attempts == 1
        assert queued_report_ids() == []

    def test_lost_task_enqueued_again(self, entity, queued_report_ids):
        lost_after = settings.REPORT_REQUEUE_AFTER_SECONDS
        report = make_generating(entity, enqueued_at=ago(lost_after + 5))

        result = reap_reports()

        assert result.requeued == [report.public_id]
        assert queued_report_ids() == [str(report.pk)]
        report.refresh_from_db()
        assert report.enqueued_at > ago(60)
        assert report.attempts == 0

        assert reap_reports().requeued == [], "a fresh enqueueing waits for the delay again"

    def test_never_enqueued_report_enqueued(self, entity, queued_report_ids):
        report = make_generating(entity)
        old = ago(settings.REPORT_REQUEUE_AFTER_SECONDS + 5)
        Report.objects.filter(pk=report.pk).update(created_at=old)

        result = reap_reports()

        assert result.requeued == [report.public_id]
        assert queued_report_ids() == [str(report.pk)]

    def test_recent_unclaimed_report_left_alone(self, entity, queued_report_ids):
        make_generating(entity, enqueued_at=ago(5))

        assert reap_reports().requeued == []
        assert queued_report_ids() == []

    def test_unclaimed_report_without_attempts_failed(self, entity, settings):
        settings.REPORT_GENERATION_RETRIES = 1
        stale = ago(settings.REPORT_REQUEUE_AFTER_SECONDS + 5)
        report = make_generating(entity, attempts=2, enqueued_at=stale)

        result = reap_reports()

        assert result.failed == [report.public_id]
        report.refresh_from_db()
        assert report.status == ReportStatus.FAILED
        assert report.error == stopped_reason(1)

    def test_ready_report_never_touched(self, entity):
        old = ago(settings.REPORT_CLAIM_LEASE_SECONDS + 5)
        report = make_generating(entity, status=ReportStatus.READY, claimed_at=old, attempts=1)

        result = reap_reports()

        assert result.retried == result.requeued == result.failed == []
        report.refresh_from_db()
        assert report.status == ReportStatus.READY

    def test_command_prints_counts(self, entity, queued_report_ids, capsys):
        report = make_generating(entity)
        assert claim_report(report)
        expire_claim(report)

        call_command("reap_reports", verbosity=2)

        output = capsys.readouterr().out
        assert "1 retried after their worker stopped" in output
        assert "0 enqueued again after their task was lost" in output
        assert "0 marked failed" in output
        assert f"retried: {report.public_id}" in output


def test_stopped_reason_singular():
    assert stopped_reason(1) == (
        "The worker stopped while generating this report; it was retried 1 time."
    )


class TestDuplicateRequest:
    def test_same_request_returns_generating_report(
        self, entity, queued_report_ids, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks(execute=True):
            first = request_long(entity)
        with django_capture_on_commit_callbacks(execute=True):
            second = request_long(entity)

        assert second.pk == first.pk
        assert Report.objects.count() == 1
        assert queued_report_ids() == [str(first.pk)]
        requests = AuditEvent.objects.filter(action=AuditAction.REPORT_REQUESTED)
        assert requests.count() == 2
        assert requests.filter(details__duplicate=True).count() == 1

    @pytest.mark.django_db(transaction=True)
    def test_concurrent_requests_share_report(self, entity):
        contenders = 4
        barrier = threading.Barrier(contenders, timeout=30)
        report_ids = []
        errors = []

        def contend():
            try:
                barrier.wait()
                report_ids.append(request_long(entity).pk)
            except Exception as exc:
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=contend) for _ in range(contenders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert not errors
        assert len(report_ids) == contenders
        assert len(set(report_ids)) == 1
        assert Report.objects.count() == 1

    def test_other_period_creates_report(self, entity):
        first = request_long(entity)
        start, end = long_period(entity.tenant, days=60)

        other = request_report(
            tenant=entity.tenant,
            entity=entity,
            regulation="SOC2",
            period_start=start,
            period_end=end,
        )

        assert other.pk != first.pk

    def test_request_after_ready_creates_report(self, entity):
        first = request_long(entity)
        generate(first)
        assert first.status == ReportStatus.READY

        second = request_long(entity)

        assert second.pk != first.pk
        assert second.status == ReportStatus.GENERATING
        first.refresh_from_db()
        assert first.status == ReportStatus.READY

    def test_request_after_failed_creates_report(self, entity):
        first = make_generating(entity, status=ReportStatus.FAILED, error="broken")

        second = request_long(entity)

        assert second.pk != first.pk


class TestAggregationFailure:
    @pytest.fixture
    def broken_aggregation(self, monkeypatch):
        def broken_build(*args, **kwargs):
            raise RuntimeError("aggregation broke")

        monkeypatch.setattr("compliance.reports.services.build_report", broken_build)

    def test_request_marks_report_failed(self, entity, broken_aggregation):
        end = entity.tenant.today()

        report = request_report(
            tenant=entity.tenant,
            entity=entity,
            regulation="SOC2",
            period_start=end - dt.timedelta(days=6),
            period_end=end,
        )

        assert report.status == ReportStatus.FAILED
        assert report.error == "Aggregation failed: RuntimeError"
        stored = Report.objects.get(pk=report.pk)
        assert stored.status == ReportStatus.FAILED
        assert stored.error == report.error
        assert stored.attempts == 1

    def test_task_marks_report_failed(self, entity, broken_aggregation):
        report = make_generating(entity)

        generate_report_task.call(str(report.pk))

        report.refresh_from_db()
        assert report.status == ReportStatus.FAILED
        assert report.error == "Aggregation failed: RuntimeError"
        assert not report.pdf_sha256

    def test_task_for_deleted_report_does_nothing(self, entity):
        report = make_generating(entity)
        report_id = str(report.pk)
        report.delete()

        generate_report_task.call(report_id)

        assert not Report.objects.exists()


def run_db_worker(*arguments):
    """Run ``manage.py db_worker`` with ``arguments`` in a child process on the test database."""
    env = {**os.environ, "DATABASE_URL": database_url(), "TASKS_BACKEND": "db"}
    # The arguments are constants of these tests.
    completed = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "db_worker", "--no-startup-delay", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=WORKER_TIMEOUT_SECONDS,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return completed


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
class TestRealWorker:
    def test_queued_report_generated(self, api, entity, soc2_history, queued_report_ids):
        start, end = long_period(entity.tenant)
        body = {
            "entity_type": entity.entity_type,
            "entity_id": str(entity.pk),
            "regulation": "SOC2",
            "period_start": start.isoformat(),
            "period_end": end.isoformat(),
        }
        created = api.post("/v1/compliance/reports", json=body)
        assert_status(created, 202)
        repeated = api.post("/v1/compliance/reports", json=body)
        assert_status(repeated, 202)
        assert repeated.json()["id"] == created.json()["id"]
        assert repeated.headers["Location"] == created.headers["Location"]
        assert len(queued_report_ids()) == 1

        run_db_worker("--batch")

        report = Report.objects.get()
        assert report.status == ReportStatus.READY
        assert report.attempts == 1
        assert report.claimed_at is not None
        assert report.digest.startswith("sha256:")
        assert report.pdf_sha256
        fetched = api.get(f"/v1/compliance/reports/{created.json()['id']}")
        assert fetched.json()["status"] == "ready"

    def test_worker_recovers_abandoned_report(self, entity, soc2_history, queued_report_ids):
        abandoned = make_generating(entity, days=120, attempts=1, enqueued_at=ago(3600))
        expire_claim(abandoned)
        queued = make_generating(entity, days=90)
        generate_report_task.enqueue(str(queued.pk))

        run_db_worker("--batch")

        abandoned.refresh_from_db()
        queued.refresh_from_db()
        assert queued.status == ReportStatus.READY
        assert abandoned.status == ReportStatus.READY
        assert abandoned.attempts == 2

    def test_max_tasks_stops_worker(self, entity, soc2_history, queued_report_ids):
        reports = [make_generating(entity, days=days) for days in (60, 90)]
        for report in reports:
            generate_report_task.enqueue(str(report.pk))

        run_db_worker("--max-tasks", "1")

        statuses = sorted(Report.objects.values_list("status", flat=True))
        assert statuses == [ReportStatus.GENERATING, ReportStatus.READY]
        assert len(queued_report_ids()) == 1


class TestTasksBackendSetting:
    @pytest.mark.parametrize(
        ("environment", "message"),
        [
            ({"TASKS_BACKEND": "celery"}, "TASKS_BACKEND must be db or rq, got 'celery'."),
            ({"TASKS_BACKEND": "rq", "REDIS_URL": ""}, "REDIS_URL is missing."),
        ],
    )
    def test_invalid_setting_rejected(self, environment, message):
        env = {**os.environ, "COMPLIANCE_DEMO": "1", **environment}
        completed = subprocess.run(
            [sys.executable, "-c", "import compliance.settings"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

        assert completed.returncode != 0
        assert message in completed.stderr
