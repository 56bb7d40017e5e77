"""Give a user a role in a tenant from the command line, creating the user if needed."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from compliance.tenancy.models import Membership, Role, Tenant


class Command(BaseCommand):
    help = (
        "Give a user a role in a tenant, so they can log in to its pages. A new user gets a "
        "random password, printed once; an existing user keeps theirs and gets the new role."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Slug of the tenant.")
        parser.add_argument("--username", required=True, help="Login name of the user.")
        parser.add_argument(
            "--role", required=True, choices=Role.values, help="Role in the tenant."
        )
        parser.add_argument("--email", default="", help="Email address of a new user.")

    @transaction.atomic
    def handle(self, *args, tenant, username, role, email, **options):
        tenant_row = Tenant.objects.filter(slug=tenant).first()
        if tenant_row is None:
            raise CommandError(f"Tenant {tenant!r} not found. Create it with create_tenant first.")
        if not username.strip():
            raise CommandError("The username may not be blank.")

        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        password = None
        if user is None:
            password = secrets.token_urlsafe(12)
            user = user_model.objects.create_user(username, email=email, password=password)

        _, created = Membership.objects.update_or_create(
            user=user, tenant=tenant_row, defaults={"role": role}
        )

        if password is not None:
            self.stdout.write(f"Password for new user {username}: {password}")
        action = "Added" if created else "Updated"
        self.stdout.write(f"{action} {username} as {Role(role).label} in tenant {tenant_row.slug}.")
