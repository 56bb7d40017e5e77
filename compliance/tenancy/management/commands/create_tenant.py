"""Create a tenant from the command line."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from compliance.tenancy.models import Tenant


class Command(BaseCommand):
    help = "Create a tenant: an organisation whose entities, checks and reports are kept apart."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="URL-safe identifier, e.g. 'acme-health'.")
        parser.add_argument("--name", required=True, help="Display name, e.g. 'Acme Health'.")
        parser.add_argument(
            "--time-zone",
            default="UTC",
            help="IANA time zone that report periods follow, e.g. 'Europe/Berlin' (default: UTC).",
        )

    def handle(self, *args, slug, name, time_zone, **options):
        if Tenant.objects.filter(slug=slug).exists():
            raise CommandError(f"A tenant with slug {slug!r} already exists.")

        tenant = Tenant(slug=slug, name=name, time_zone=time_zone)
        try:
            tenant.full_clean()
        except ValidationError as error:
            problems = "; ".join(
                f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items()
            )
            raise CommandError(f"Invalid tenant: {problems}") from error
        tenant.save()

        self.stdout.write(
            f"Created tenant {tenant.slug} ({tenant.name}, time zone {tenant.time_zone}, "
            f"id {tenant.pk})."
        )
