"""State changes of a report: request, generate, fail. The pages and the API both call these."""

import hashlib
import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from compliance.audit.models import AuditAction, AuditOutcome
from compliance.audit.services import origin_request_id, record_event
from compliance.lib.canonical_json import canonical_json
from compliance.reports.aggregation import build_report, isoformat_z
from compliance.reports.models import Report, ReportStatus

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


def compute_digest(report):
    """Return ``sha256:<hex>`` over the canonical JSON of the ready report."""
    return "sha256:" + hashlib.sha256(canonical_json(report_document(report))).hexdigest()


def validate_period(tenant, period_start, period_end):
    """Raise a ValidationError naming the field unless the period can be reported on.

    A period runs from ``period_start`` to ``period_end``, both included, ends
    no later than today in the tenant's time zone (a later end would freeze a
    score for days that have not happened), starts no earlier than
    ``REPORT_MIN_DATE`` and lasts at most ``REPORT_MAX_DAYS`` days.
    """
    today = tenant.today()
    if period_end < period_start:
        raise ValidationError(
            {
                "period_end": f"The end date {period_end.isoformat()} is before the start "
                f"date {period_start.isoformat()}."
            }
        )
    if period_end > today:
        raise ValidationError(
            {
                "period_end": f"The end date {period_end.isoformat()} is in the future. The "
                f"latest allowed end date is today, {today.isoformat()} ({tenant.time_zone})."
            }
        )
    if period_start < settings.REPORT_MIN_DATE:
        raise ValidationError(
            {
                "period_start": f"The start date {period_start.isoformat()} is too early. "
                f"Reports cover dates from {settings.REPORT_MIN_DATE.isoformat()}."
            }
        )
    days = (period_end - period_start).days + 1
    if days > settings.REPORT_MAX_DAYS:
        raise ValidationError(
            {
                "period_end": f"The period is {days} days long, but the maximum is "
                f"{settings.REPORT_MAX_DAYS} days. Choose a later start date."
            }
        )


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

    ``in_background`` overrides the choice by period length, for callers such
    as offline commands that may wait.
    """
    report = Report.objects.create(
        tenant=tenant,
        entity=entity,
        regulation=regulation,
        period_start=period_start,
        period_end=period_end,
        requested_by=user,
        requested_by_key=api_key,
    )
    logger.info(
        "report %s requested for entity %s, %s %s..%s",
        report.public_id,
        entity.pk,
        regulation,
        period_start,
        period_end,
    )

    if in_background is None:
        in_background = runs_in_background(period_start, period_end)
    record_event(
        AuditAction.REPORT_REQUESTED,
        tenant=tenant,
        user=None if api_key else user,
        api_key=api_key,
        target=report,
        details=report_audit_details(report, in_background=in_background),
    )
    if in_background:
        from compliance.reports.tasks import generate_report_task

        transaction.on_commit(lambda: generate_report_task.enqueue(str(report.pk)))
    else:
        generate(report)
    return report


def generate(report):
    """Aggregate a generating report and mark it ready, or failed with the reason."""
    if report.status != ReportStatus.GENERATING:
        return report

    try:
        summary, findings = build_report(
            report.tenant, report.entity, report.regulation, report.period_start, report.period_end
        )
    except Exception as exc:
        logger.exception("report %s failed", report.public_id)
        report.status = ReportStatus.FAILED
        report.error = f"Aggregation failed: {exc.__class__.__name__}"
        report.save(update_fields=["status", "error"])
        record_generated(report, AuditOutcome.FAILURE)
        return report

    report.summary = summary
    report.findings = findings
    report.generated_at = timezone.now()
    report.status = ReportStatus.READY
    report.digest = compute_digest(report)
    report.save(update_fields=["summary", "findings", "generated_at", "status", "digest"])
    logger.info("report %s ready, digest %s", report.public_id, report.digest)
    record_generated(report, AuditOutcome.SUCCESS)
    return report


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
