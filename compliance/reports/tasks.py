"""Background tasks of the reports app, run by the worker of the configured tasks backend."""

from django.tasks import task

from compliance.reports.models import Report


@task
def generate_report_task(report_id):
    """Generate a queued report and render its PDF, so the first download is instant."""
    from compliance.reports.pdf import ensure_pdf
    from compliance.reports.services import generate

    report = Report.objects.select_related("tenant", "entity").get(pk=report_id)
    generate(report)
    if report.status == "ready":
        ensure_pdf(report)
