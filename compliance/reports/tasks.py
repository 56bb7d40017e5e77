"""Background tasks of the reports app, run by the worker of the configured tasks backend."""

import logging

from django.tasks import task

from compliance.reports.models import Report, ReportStatus

logger = logging.getLogger(__name__)


@task
def generate_report_task(report_id):
    """Generate a queued report and render its PDF, so the first download is instant.

    The task first runs the reaper, so a worker that starts again after a
    crash recovers the reports its predecessor left claimed. A duplicate
    task for the same report does nothing, because ``generate`` claims the
    report before it aggregates.
    """
    from compliance.reports.services import generate

    reap_before_work(report_id)

    report = Report.objects.select_related("tenant", "entity").filter(pk=report_id).first()
    if report is None:
        logger.warning("report %s no longer exists, so there is nothing to generate", report_id)
        return

    generate(report)
    if report.status == ReportStatus.READY:
        render_pdf_after_generation(report)


def reap_before_work(report_id):
    """Run the reaper and log its errors, so that a failed reap does not stop this task."""
    from compliance.reports.services import reap_reports

    try:
        reap_reports()
    except Exception:
        logger.exception("reaping stale reports before report %s failed", report_id)


def render_pdf_after_generation(report):
    """Render and store the PDF of a ready report, logging a failure instead of raising it.

    The report is ready and immutable either way, and the first download
    renders a missing PDF.
    """
    from compliance.reports.pdf import ensure_pdf

    try:
        ensure_pdf(report)
    except Exception:
        logger.exception("rendering the PDF of report %s failed", report.public_id)
