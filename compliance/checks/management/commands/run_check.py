"""Run the automated rules of one regulation against one entity and store the check."""

import uuid
from collections import Counter

from django.core.management.base import BaseCommand, CommandError

from compliance.catalog.models import Regulation
from compliance.checks.automated import run_automated_check
from compliance.checks.models import FindingStatus
from compliance.checks.rules import RuleFileError
from compliance.inventory.models import Entity
from compliance.tenancy.models import Tenant


class Command(BaseCommand):
    help = (
        "Evaluate the automated rules of one regulation against an entity's attributes and "
        "store the result as a check with one finding per control."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="Slug of the entity's tenant.")
        parser.add_argument("--entity", required=True, help="UUID of the entity to check.")
        parser.add_argument(
            "--regulation",
            required=True,
            help=f"Regulation to check against: {', '.join(Regulation.values)} (any case).",
        )
        parser.add_argument(
            "--controls",
            default=None,
            help="Comma-separated control IDs to check, e.g. CC6.1,CC7.2 (default: every rule).",
        )

    def handle(self, *args, tenant, entity, regulation, controls, **options):
        tenant_obj = Tenant.objects.filter(slug=tenant).first()
        if tenant_obj is None:
            raise CommandError(f"Tenant {tenant!r} not found.")
        entity_obj = self._entity(tenant_obj, entity)
        scope = self._scope(controls)

        try:
            check = run_automated_check(entity_obj, regulation, scope=scope)
        except RuleFileError as error:
            raise CommandError(
                f"The rule files are invalid; nothing was stored.\n{error}"
            ) from error
        except ValueError as error:
            raise CommandError(f"{error} Nothing was stored.") from error

        self.stdout.write(self._summary(check, entity_obj))

    def _entity(self, tenant, raw):
        try:
            entity_id = uuid.UUID(raw)
        except ValueError as error:
            raise CommandError(f"--entity must be an entity UUID, got {raw!r}.") from error
        entity = Entity.objects.for_tenant(tenant).filter(pk=entity_id).first()
        if entity is None:
            raise CommandError(f"Entity {entity_id} not found in tenant {tenant.slug!r}.")
        return entity

    def _scope(self, controls):
        if controls is None:
            return None
        requested = [part.strip() for part in controls.split(",") if part.strip()]
        if not requested:
            raise CommandError("--controls must list at least one control ID, e.g. CC6.1,CC7.2.")
        return {"controls": requested}

    def _summary(self, check, entity):
        counts = Counter(check.findings.values_list("status", flat=True))
        parts = [
            f"{counts[status.value]} {status.label.lower()}"
            for status in FindingStatus
            if counts[status.value]
        ]
        total = sum(counts.values())
        noun = "finding" if total == 1 else "findings"
        return (
            f"{check.regulation} check {check.pk} of {entity.name}: {check.status}, "
            f"{total} {noun} ({', '.join(parts)}), "
            f"rule set {check.rule_set_version[:12]}."
        )
