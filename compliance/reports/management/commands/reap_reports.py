"""Recover generating reports whose worker stopped or whose task was lost."""

from django.core.management.base import BaseCommand

from compliance.reports.services import reap_reports


class Command(BaseCommand):
    help = (
        "Enqueue again the generating reports whose worker stopped (claim older than "
        "REPORT_CLAIM_LEASE_SECONDS) or whose task was lost (unclaimed for "
        "REPORT_REQUEUE_AFTER_SECONDS), and mark failed those out of retries "
        "(REPORT_GENERATION_RETRIES). Run it every minute or so next to the worker."
    )

    def handle(self, *args, verbosity, **options):
        result = reap_reports()
        if verbosity < 1:
            return
        self.stdout.write(
            f"{len(result.retried)} retried after their worker stopped, "
            f"{len(result.requeued)} enqueued again after their task was lost, "
            f"{len(result.failed)} marked failed."
        )
        if verbosity >= 2:
            for label, ids in (
                ("retried", result.retried),
                ("enqueued again", result.requeued),
                ("failed", result.failed),
            ):
                for public_id in ids:
                    self.stdout.write(f"{label}: {public_id}")
