"""Import a scanner output file as checks of one entity."""

import uuid
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from compliance.checks.importers import (
    IMPORTERS,
    ImportFileError,
    InvalidRecordError,
    import_results,
)
from compliance.inventory.models import Entity
from compliance.tenancy.models import Tenant


def counted(number, noun):
    """Return e.g. "1 check" or "3 checks"."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


class Command(BaseCommand):
    help = (
        "Import scanner output (Prowler OCSF JSON or CSV, a garak run report, NIST OSCAL "
        "assessment results, or OCSF Compliance Findings from any tool) as checks of one "
        "entity, one check per regulation with mapped findings. Importing the same file "
        "again changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="Path of the scanner output file.")
        parser.add_argument("--tenant", required=True, help="Slug of the entity's tenant.")
        parser.add_argument("--entity", required=True, help="UUID of the entity the scan covers.")
        parser.add_argument(
            "--format",
            choices=list(IMPORTERS),
            default=None,
            help="File format (default: detected from the content).",
        )
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="Import the valid records and list the malformed ones that were left out, "
            "instead of rejecting the whole file at the first malformed record.",
        )

    def handle(self, *args, file, tenant, entity, format, skip_invalid, **options):
        tenant_obj = Tenant.objects.filter(slug=tenant).first()
        if tenant_obj is None:
            raise CommandError(f"Tenant {tenant!r} not found.")
        entity_obj = self._entity(tenant_obj, entity)
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"File not found: {file}")

        try:
            result = import_results(
                tenant_obj, entity_obj, path, format=format, skip_invalid=skip_invalid
            )
        except ImportFileError as error:
            hint = ""
            if isinstance(error, InvalidRecordError) and not skip_invalid:
                hint = " Pass --skip-invalid to import the valid records."
            raise CommandError(
                f"Import of {file} failed and stored nothing: {error}{hint}"
            ) from error

        self._write_skipped(result)
        self._write_unmapped(result)
        self._write_summary(path, entity_obj, result)

    def _entity(self, tenant, raw):
        try:
            entity_id = uuid.UUID(raw)
        except ValueError as error:
            raise CommandError(f"--entity must be an entity UUID, got {raw!r}.") from error
        entity = Entity.objects.filter(pk=entity_id).first()
        if entity is None or entity.tenant_id != tenant.pk:
            raise CommandError(f"Entity {entity_id} not found in tenant {tenant.slug!r}.")
        return entity

    def _write_skipped(self, result):
        for skipped in result.skipped:
            self.stdout.write(f"  skipped {skipped.record}: {skipped.reason}")

    def _write_unmapped(self, result):
        if result.checks or not result.record_count:
            return
        self.stdout.write(
            "  No record maps to a control of the five regulations, so no check was stored."
        )
        for reason in result.unmapped_reasons:
            self.stdout.write(f"  unmapped: {reason}")

    def _write_summary(self, path, entity, result):
        counts = result.findings_per_regulation()
        for check in result.checks:
            self.stdout.write(
                f"  {check.regulation}: check {check.pk}, "
                f"{counted(counts[check.regulation], 'finding')}, {check.status}"
            )
        if result.already_imported:
            self.stdout.write(
                f"{path.name} was already imported for {entity.name}; nothing changed "
                f"({counted(len(result.checks), 'check')}, "
                f"{counted(result.finding_count, 'finding')}, "
                f"{counted(result.skipped_count, 'record')} skipped)."
            )
            return
        self.stdout.write(
            f"Imported {path.name} ({result.format}) for {entity.name}: "
            f"{counted(len(result.checks), 'check')}, "
            f"{counted(result.finding_count, 'finding')}, "
            f"{result.unmapped_count} of {result.record_count} records without a mapped control, "
            f"{counted(result.skipped_count, 'record')} skipped."
        )
