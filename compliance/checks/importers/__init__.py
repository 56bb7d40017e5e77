"""Import scanner results as checks: pick the importer for a file, parse it, store it."""

import dataclasses
import hashlib
import re
from pathlib import Path

from compliance.audit.models import AuditAction
from compliance.audit.services import record_request_event
from compliance.checks.importers.base import (
    ImportFileError,
    ImportResult,
    InvalidRecordError,
    RecordReader,
    SkippedRecord,
    reject_other_unicode_encodings,
    save_import,
)
from compliance.checks.importers.garak import GarakImporter
from compliance.checks.importers.ocsf import OcsfComplianceImporter
from compliance.checks.importers.oscal import OscalAssessmentResultsImporter
from compliance.checks.importers.prowler import ProwlerCsvImporter, ProwlerOcsfImporter

__all__ = [
    "IMPORTERS",
    "ImportFileError",
    "ImportResult",
    "InvalidRecordError",
    "SkippedRecord",
    "detect_format",
    "import_results",
    "record_import_events",
]

IMPORTERS = {
    importer.format: importer
    for importer in (
        ProwlerOcsfImporter(),
        ProwlerCsvImporter(),
        GarakImporter(),
        OscalAssessmentResultsImporter(),
        # After Prowler's OCSF importer, which claims arrays of Detection Findings (2004).
        OcsfComplianceImporter(),
    )
}

UTF8_BYTE_ORDER_MARK = b"\xef\xbb\xbf"
EMPTY_JSON_ARRAY = re.compile(rb"\s*\[\s*\]\s*")


def _supported_formats():
    return "; ".join(f"{name}: {importer.description}" for name, importer in IMPORTERS.items())


def detect_format(data):
    """Return the name of the first format whose importer recognises ``data``.

    Raises ``ImportFileError`` for an empty file, a UTF-16 or UTF-32 file, an
    empty JSON array and a file that no importer recognises.
    """
    if not data.strip():
        raise ImportFileError("The file is empty.")
    reject_other_unicode_encodings(data)
    if EMPTY_JSON_ARRAY.fullmatch(data.removeprefix(UTF8_BYTE_ORDER_MARK)):
        raise ImportFileError("The file contains no records: it is an empty JSON array.")
    for name, importer in IMPORTERS.items():
        if importer.detect(data):
            return name
    raise ImportFileError(
        f"Unsupported file format. Supported formats are {_supported_formats()}. "
        "Pass the format explicitly if detection fails on a file of a supported format."
    )


def _read(path_or_bytes):
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        return bytes(path_or_bytes)
    return Path(path_or_bytes).read_bytes()


def import_results(tenant, entity, path_or_bytes, format=None, skip_invalid=False):
    """Import one scanner output file for ``entity``; return an ``ImportResult``.

    ``path_or_bytes`` is a file path or the file's bytes. ``format`` names one
    of ``IMPORTERS`` and skips detection. Importing the same bytes again for
    the same entity stores nothing and returns ``already_imported=True``.
    Raises ``ImportFileError`` for a file or record that cannot be read, and
    then nothing is stored. With ``skip_invalid`` a malformed record is left
    out instead and listed in the result's ``skipped``. The file is still
    rejected when its structure is broken or no record is valid.
    """
    if entity.tenant_id != tenant.pk:
        raise ValueError(f"Entity {entity.pk} does not belong to tenant {tenant.slug!r}.")

    data = _read(path_or_bytes)
    if format is None:
        format = detect_format(data)
    importer = IMPORTERS.get(format)
    if importer is None:
        raise ImportFileError(
            f"Unknown import format {format!r}. Supported formats are {_supported_formats()}."
        )

    records = RecordReader(skip_invalid=skip_invalid)
    parsed = importer.parse(data, records)
    parsed = dataclasses.replace(parsed, skipped=list(records.skipped))
    digest = hashlib.sha256(data).hexdigest()
    return save_import(tenant, entity, parsed, digest)


def record_import_events(request, entity, result):
    """Write one audit event per stored check. A repeated import stores and records nothing.

    ``skipped_count`` in the details counts the records of the file that were left out.
    """
    if result.already_imported:
        return
    for check in result.checks:
        record_request_event(
            request,
            AuditAction.CREATE,
            target=check,
            details={
                "entity_id": str(entity.pk),
                "regulation": check.regulation,
                "format": result.format,
                "source_digest": result.source_digest,
                "skipped_count": result.skipped_count,
            },
        )
