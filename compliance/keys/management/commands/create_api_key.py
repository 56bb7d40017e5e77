"""Issue an API key for a tenant and print it once."""

import argparse
import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from compliance.keys.models import ApiKey
from compliance.tenancy.models import Role, Tenant


def positive_days(raw):
    """Parse ``--expires-in-days``: a whole number of days, at least 1."""
    try:
        days = int(raw)
    except ValueError:
        days = 0
    if days < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {raw!r}")
    return days


class Command(BaseCommand):
    help = (
        "Issue an API key for a tenant. The key is printed alone on stdout, once: only a hash "
        "of it is stored. The summary goes to stderr."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Slug of the tenant the key acts for.")
        parser.add_argument(
            "--role",
            required=True,
            choices=Role.values,
            help="What the key may do: admin, officer or auditor.",
        )
        parser.add_argument("--name", required=True, help="Label shown in key lists, e.g. 'CI'.")
        parser.add_argument(
            "--expires-in-days",
            type=positive_days,
            default=None,
            help="Days until the key expires (default: never).",
        )

    def handle(self, *args, tenant, role, name, expires_in_days, **options):
        found = Tenant.objects.filter(slug=tenant).first()
        if found is None:
            raise CommandError(f"Tenant {tenant!r} not found. Create it with create_tenant.")
        if not name.strip():
            raise CommandError("--name must not be blank.")

        expires_at = None
        if expires_in_days is not None:
            expires_at = timezone.now() + dt.timedelta(days=expires_in_days)
        api_key, plaintext = ApiKey.issue(
            tenant=found, name=name.strip(), role=role, expires_at=expires_at
        )

        self.stdout.write(plaintext)
        expiry = f"expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else "never expires"
        self.stderr.write(
            f"Issued {role} key {api_key.display_prefix}_… ({api_key.name}) for tenant "
            f"{found.slug}; it {expiry}."
        )
