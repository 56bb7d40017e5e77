"""Create or complete the demo tenant and print its logins and a fresh API key."""

import argparse
import datetime as dt

from django.core.management.base import BaseCommand

from compliance.demo.seed import DEMO_PASSWORD, seed_demo
from compliance.tenancy.models import Role


def iso_date(raw):
    """Parse ``--today`` as an ISO 8601 date."""
    try:
        return dt.date.fromisoformat(raw)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"expected a date such as 2026-03-31, got {raw!r}"
        ) from error


class Command(BaseCommand):
    help = (
        "Create the demo tenant 'demo' with users, entities, two imported Prowler scans, "
        "six months of generated weekly checks and one automated check per entity and "
        "regulation. Safe to run again: it adds only what is missing, resets the demo "
        "entities' attributes, and replaces the demo API key because a key is shown only once."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--today",
            type=iso_date,
            default=None,
            help="Last day of the generated history, as YYYY-MM-DD (default: today in the "
            "demo tenant's time zone). Checks fall on days before it.",
        )

    def handle(self, *args, today, **options):
        result = seed_demo(today=today)
        tenant = result.tenant

        self.stdout.write(f"Demo tenant: {tenant.slug} ({tenant.name}, {tenant.time_zone})")
        self.stdout.write(f"Demo logins (password {DEMO_PASSWORD}):")
        for username, role in result.users:
            self.stdout.write(f"  {username:<8} {Role(role).label}")
        self.stdout.write(f"Demo API key ({Role.ADMIN.value} role): {result.api_key}")
        self.stdout.write(
            f"Seeded demo: {result.entities_created} entities, {result.checks_created} checks "
            f"and {result.findings_created} findings created, {result.entities_updated} "
            f"entities updated, {result.files_imported} Prowler files imported "
            f"({result.files_already_imported} already there), "
            f"{result.automated_checks_created} automated checks run, "
            f"{result.reports_created} reports generated, "
            f"{result.keys_revoked} old demo key(s) revoked."
        )
