"""State changes of a report: request, generate, fail. The pages and the API both call these."""

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from compliance.audit.models import AuditAction, AuditOutcome
from compliance.audit.services import origin_request_id, record_event
from compliance.inventory.models import Entity
from compliance.lib.canonical_json import canonical_json
from compliance.reports.aggregation import build_report, isoformat_z
from compliance.reports.models import Report, ReportStatus, report_public_id

logger = logging.getLogger(__name__)


def report_document(report):
    """Return the report as the JSON object the API serves (without the digest)."""
    return {
        "id": report.public_id,
        "entity_type": report.entity.entity_type,
        "entity_id": str(report.entity_id),
        "regulation": report.regulation,
        "period_start": report.period_start.isoformat(),
        "period_end": report.period_end.isoformat(),
        "status": report.status,
        "summary": report.summary,
        "findings": report.findings,
        "generated_at": isoformat_z(report.generated_at) if report.generated_at else None,
    }


def report_body(report):
    """Return the report as ``GET /v1/compliance/reports/{id}`` serves it, digest included.

    The document without ``digest`` (and ``error``) is what the digest covers.
    """
    body = report_document(report)
    body["digest"] = report.digest or None
    if report.error:
        body["error"] = report.error
    return body


def compute_digest(report):
    """Return ``sha256:<hex>`` over the canonical JSON of the ready report."""
    return "sha256:" + hashlib.sha256(canonical_json(report_document(report))).hexdigest()


def validate_period(tenant, period_start, period_end):
    """Raise a ValidationError naming every offending field unless the period can be reported on.

    A period runs from ``period_start`` to ``period_end``, both included, ends
    no later than today in the tenant's time zone (a later end would freeze a
    score for days that have not happened), starts no earlier than
    ``REPORT_MIN_DATE`` and lasts at most ``REPORT_MAX_DAYS`` days.
    """
    today = tenant.today()
    errors = {}
    if period_end < period_start:
        errors["period_end"] = (
            f"The end date {period_end.isoformat()} is before the start date "
            f"{period_start.isoformat()}."
        )
    elif (period_end - period_start).days + 1 > settings.REPORT_MAX_DAYS:
        errors["period_end"] = (
            f"The period is {(period_end - period_start).days + 1} days long, but the maximum "
            f"is {settings.REPORT_MAX_DAYS} days. Choose a later start date."
        )
    if period_end > today:
        errors["period_end"] = (
            f"The end date {period_end.isoformat()} is in the future. The latest allowed end "
            f"date is today, {today.isoformat()} ({tenant.time_zone})."
        )
    if period_start < settings.REPORT_MIN_DATE:
        errors["period_start"] = (
            f"The start date {period_start.isoformat()} is too early. Reports cover dates "
            f"from {settings.REPORT_MIN_DATE.isoformat()}."
        )
    if errors:
        raise ValidationError(errors)


def runs_in_background(period_start, period_end):
    return (period_end - period_start).days + 1 > settings.REPORT_SYNC_MAX_DAYS


def request_report(
    *,
    tenant,
    entity,
    regulation,
    period_start,
    period_end,
    user=None,
    api_key=None,
    in_background=None,
):
    """Create a report, then generate it now for a short period or queue it for the worker.

    While a report of the same tenant, entity, regulation and period is
    generating, the same request returns that report instead of creating a
    second one, so each period is generated once (the API responds 202 with
    its Location). Ready and failed reports are never reused, so a request
    after them creates a new report.

    ``in_background`` overrides the choice by period length, for callers such
    as offline commands that may wait.
    """
    if in_background is None:
        in_background = runs_in_background(period_start, period_end)
    report, created = find_or_create_generating(
        tenant=tenant,
        entity=entity,
        regulation=regulation,
        period_start=period_start,
        period_end=period_end,
        user=user,
        api_key=api_key,
    )

    details = report_audit_details(report, in_background=in_background)
    if not created:
        details["duplicate"] = True
    record_event(
        AuditAction.REPORT_REQUESTED,
        tenant=tenant,
        user=None if api_key else user,
        api_key=api_key,
        target=report,
        details=details,
    )
    if not created:
        logger.info("report %s is already generating, so the request returns it", report.public_id)
        return report

    if in_background:
        report_id = report.pk
        transaction.on_commit(lambda: enqueue_generation(report_id))
    else:
        generate(report)
    return report


def find_or_create_generating(
    *, tenant, entity, regulation, period_start, period_end, user, api_key
):
    """Return ``(report, created)``: the generating report of this period, or a new one.

    The lookup and the insert run in one transaction. On PostgreSQL it first
    locks the entity's row, and on SQLite it holds the write lock from its
    start because the settings begin transactions IMMEDIATE. So two racing
    requests for one entity run one after the other, and the second finds
    the first one's report.
    """
    key = {
        "tenant": tenant,
        "entity": entity,
        "regulation": regulation,
        "period_start": period_start,
        "period_end": period_end,
    }
    with transaction.atomic():
        Entity.objects.select_for_update().only("pk").get(pk=entity.pk)
        existing = Report.objects.filter(status=ReportStatus.GENERATING, **key).first()
        if existing is not None:
            return existing, False
        report = Report.objects.create(**key, requested_by=user, requested_by_key=api_key)

    logger.info(
        "report %s requested for entity %s, %s %s..%s",
        report.public_id,
        entity.pk,
        regulation,
        period_start,
        period_end,
    )
    return report, True


def enqueue_generation(report_id):
    """Record the enqueueing time of a report, then enqueue its generation task."""
    Report.objects.filter(pk=report_id).update(enqueued_at=timezone.now())
    return send_generation_task(report_id)


def send_generation_task(report_id):
    """Enqueue the generation task of a report and return whether the backend accepted it.

    A backend error (the database or Redis is unreachable) is logged and
    not raised. The report then stays generating and unclaimed, so the
    reaper enqueues it again after ``REPORT_REQUEUE_AFTER_SECONDS``.
    """
    from compliance.reports.tasks import generate_report_task

    try:
        result = generate_report_task.enqueue(str(report_id))
    except Exception:
        # Backends raise their own connection errors, so no narrower class fits.
        logger.exception(
            "enqueueing the generation of report %s failed", report_public_id(report_id)
        )
        return False
    logger.info("report %s enqueued as task %s", report_public_id(report_id), result.id)
    return True


def max_attempts():
    """Return how many claims a report may have: the first attempt plus the retries."""
    return 1 + settings.REPORT_GENERATION_RETRIES


def lease_cutoff(now):
    """Return the earliest ``claimed_at`` of a claim that is still live at ``now``."""
    # NOTE: a worker never renews its claim, so an aggregation that runs longer
    # than the lease is retried (and finally failed) as if its worker had stopped.
    return now - dt.timedelta(seconds=settings.REPORT_CLAIM_LEASE_SECONDS)


def claim_report(report, *, now=None):
    """Claim a generating report for one attempt and return whether this caller won the claim.

    The claim is a single conditional UPDATE, so only one of several workers
    wins. It succeeds only while the report is generating, has attempts left,
    and is unclaimed or its last claim has expired. The winner's
    ``claimed_at`` identifies its claim when it stores the result.
    """
    now = now or timezone.now()
    claimable = Report.objects.filter(
        Q(claimed_at__isnull=True) | Q(claimed_at__lt=lease_cutoff(now)),
        pk=report.pk,
        status=ReportStatus.GENERATING,
        attempts__lt=max_attempts(),
    )
    won = claimable.update(claimed_at=now, attempts=F("attempts") + 1) == 1
    report.refresh_from_db(fields=["status", "claimed_at", "attempts"])
    return won


def generate(report):
    """Claim a generating report, aggregate it and mark it ready, or failed with the reason.

    Returns the report. When the report is no longer generating, or another
    worker has a live claim on it, nothing is generated and the report is
    only refreshed, so a duplicate task does no work. An aggregation error fails
    the report at once and is not retried.
    """
    if report.status != ReportStatus.GENERATING:
        return report

    if not claim_report(report):
        logger.info(
            "report %s not claimed: status %s, claimed at %s, %d attempts",
            report.public_id,
            report.status,
            report.claimed_at,
            report.attempts,
        )
        report.refresh_from_db()
        return report

    try:
        summary, findings = build_report(
            report.tenant, report.entity, report.regulation, report.period_start, report.period_end
        )
    except Exception as exc:
        logger.exception("aggregating report %s failed", report.public_id)
        return finish_failed(report, f"Aggregation failed: {exc.__class__.__name__}")

    return finish_ready(report, summary, findings)


def finish_ready(report, summary, findings):
    """Store the aggregation result of a claimed report and mark it ready, with its digest."""
    report.summary = summary
    report.findings = findings
    report.generated_at = timezone.now()
    report.status = ReportStatus.READY
    report.digest = compute_digest(report)
    fields = ["summary", "findings", "generated_at", "status", "digest"]
    if not save_under_claim(report, fields):
        return report

    logger.info("report %s ready, digest %s", report.public_id, report.digest)
    record_generated(report, AuditOutcome.SUCCESS)
    return report


def finish_failed(report, reason):
    """Mark a claimed report failed with a reason that people can read."""
    report.status = ReportStatus.FAILED
    report.error = reason
    if not save_under_claim(report, ["status", "error"]):
        return report

    logger.warning("report %s failed: %s", report.public_id, reason)
    record_generated(report, AuditOutcome.FAILURE)
    return report


def save_under_claim(report, fields):
    """Save ``fields`` only while this caller's claim still holds, and return whether it did.

    When the lease expired and another worker claimed the report, or the
    reaper failed it, this result is discarded and the report is reloaded.
    """
    values = {name: getattr(report, name) for name in fields}
    mine = Report.objects.filter(
        pk=report.pk, status=ReportStatus.GENERATING, claimed_at=report.claimed_at
    )
    if mine.update(**values) == 1:
        return True

    logger.warning(
        "report %s: the claim made at %s was lost, so this result was discarded",
        report.public_id,
        report.claimed_at,
    )
    report.refresh_from_db()
    return False


def report_audit_details(report, **extra):
    return {
        "report_id": report.public_id,
        "entity_id": str(report.entity_id),
        "regulation": report.regulation,
        "period_start": report.period_start.isoformat(),
        "period_end": report.period_end.isoformat(),
        **extra,
    }


def record_generated(report, outcome):
    """Record the end of a report's generation under the request that asked for it.

    The requester is the actor. In the background worker there is no request,
    so the event takes the request id of the ``report_requested`` event,
    which ties the two together.
    """
    details = report_audit_details(report, status=report.status)
    if report.digest:
        details["digest"] = report.digest
    if report.error:
        details["error"] = report.error
    record_event(
        AuditAction.REPORT_GENERATED,
        tenant=report.tenant,
        user=None if report.requested_by_key_id else report.requested_by,
        api_key=report.requested_by_key,
        target=report,
        outcome=outcome,
        details=details,
        request_id=origin_request_id(AuditAction.REPORT_REQUESTED, report),
    )


# The reaper: recovers reports whose worker stopped or whose task was lost.

REAP_BATCH_SIZE = 500


@dataclass
class ReapResult:
    """The public ids of the reports one reaper run enqueued again or marked failed."""

    retried: list = field(default_factory=list)
    requeued: list = field(default_factory=list)
    failed: list = field(default_factory=list)


def stopped_reason(retries):
    """Return the failure reason of a report whose worker stopped on every attempt."""
    times = "time" if retries == 1 else "times"
    return f"The worker stopped while generating this report; it was retried {retries} {times}."


def reap_reports(*, now=None):
    """Recover generating reports that no live worker will finish, and return what was done.

    A claim older than ``REPORT_CLAIM_LEASE_SECONDS`` means the worker
    stopped mid-report. Such a report is released and enqueued again while
    it has attempts left, and otherwise marked failed with ``stopped_reason``. An
    unclaimed report enqueued (or created) more than
    ``REPORT_REQUEUE_AFTER_SECONDS`` ago lost its task or never had one, so
    it is enqueued again. Every change is a conditional update on the values
    just read, so reapers that run at the same time act on a report once.
    Each run handles at most ``REAP_BATCH_SIZE`` reports of each kind.
    """
    now = now or timezone.now()
    result = ReapResult()
    _reap_expired_claims(now, result)
    _reap_unclaimed(now, result)
    if result.retried or result.requeued or result.failed:
        logger.info(
            "reaper: %d retried, %d enqueued again, %d failed",
            len(result.retried),
            len(result.requeued),
            len(result.failed),
        )
    return result


def _reap_expired_claims(now, result):
    expired = (
        Report.objects.filter(status=ReportStatus.GENERATING, claimed_at__lt=lease_cutoff(now))
        .select_related("tenant", "entity")
        .order_by("claimed_at")[:REAP_BATCH_SIZE]
    )
    for report in expired:
        if report.attempts >= max_attempts():
            _fail_stopped(report, result)
        else:
            _retry_stopped(report, now, result)


def _reap_unclaimed(now, result):
    # NOTE: when the queue is backed up for longer than the delay, each waiting
    # report gets a second task, which the claim turns into a no-op.
    cutoff = now - dt.timedelta(seconds=settings.REPORT_REQUEUE_AFTER_SECONDS)
    lost = (
        Report.objects.filter(status=ReportStatus.GENERATING, claimed_at__isnull=True)
        .filter(Q(enqueued_at__lt=cutoff) | Q(enqueued_at__isnull=True, created_at__lt=cutoff))
        .select_related("tenant", "entity")
        .order_by("created_at")[:REAP_BATCH_SIZE]
    )
    for report in lost:
        if report.attempts >= max_attempts():
            _fail_stopped(report, result)
        else:
            _requeue_lost(report, now, result)


def _unchanged(report):
    """Return a queryset that matches the report only while its generation state is as read."""
    return Report.objects.filter(
        pk=report.pk,
        status=ReportStatus.GENERATING,
        claimed_at=report.claimed_at,
        enqueued_at=report.enqueued_at,
    )


def _retry_stopped(report, now, result):
    if not _unchanged(report).update(claimed_at=None, enqueued_at=now):
        return
    logger.warning(
        "report %s: the worker that claimed it at %s stopped; enqueued again (attempt %d of %d)",
        report.public_id,
        report.claimed_at,
        report.attempts + 1,
        max_attempts(),
    )
    send_generation_task(report.pk)
    result.retried.append(report.public_id)


def _requeue_lost(report, now, result):
    if not _unchanged(report).update(enqueued_at=now):
        return
    logger.warning(
        "report %s: no worker claimed it since %s; enqueued again",
        report.public_id,
        report.enqueued_at or report.created_at,
    )
    send_generation_task(report.pk)
    result.requeued.append(report.public_id)


def _fail_stopped(report, result):
    reason = stopped_reason(max(report.attempts - 1, 0))
    if not _unchanged(report).update(status=ReportStatus.FAILED, error=reason):
        return
    report.status = ReportStatus.FAILED
    report.error = reason
    logger.error(
        "report %s failed after %d attempts: the worker stopped each time",
        report.public_id,
        report.attempts,
    )
    record_generated(report, AuditOutcome.FAILURE)
    result.failed.append(report.public_id)
