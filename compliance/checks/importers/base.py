"""The importer interface, and the one place that stores imported results.

An importer turns the bytes of one scanner output file into a
``ParsedImport``: findings already mapped to canonical control IDs. It does
not touch the database. ``save_import`` then stores one ``Check`` per
regulation with its findings, in one transaction, so what an import stores
is stored whole or not at all.

Every importer reads its records one at a time through a ``RecordReader``.
By default the first malformed record rejects the file, with an error that
names the record. A reader created with ``skip_invalid=True`` leaves such
records out instead and lists each one as a ``SkippedRecord`` with its
position and the reason. Errors in the file's structure (invalid UTF-8, a
truncated JSON array, a CSV quoting error) reject the file either way,
because the records after them cannot be found.
"""

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from django.db import IntegrityError, transaction

from compliance.catalog.models import Regulation, Severity
from compliance.checks.models import (
    Check,
    CheckSource,
    Finding,
    FindingStatus,
    ImportedFile,
    status_from_findings,
)
from compliance.checks.rollups import record_rollups

logger = logging.getLogger(__name__)

FINDING_ID_MAX_LENGTH = Finding._meta.get_field("finding_id").max_length
TITLE_MAX_LENGTH = Finding._meta.get_field("title").max_length


class ImportFileError(ValueError):
    """A file in no supported format or with a malformed record, so nothing was stored."""


class InvalidRecordError(ImportFileError):
    """A malformed record that rejected the file, which importing with ``skip_invalid`` skips."""


BYTE_ORDER_MARK = "\ufeff"


# Longer marks first, because the UTF-32 little-endian mark starts with the UTF-16 one.
OTHER_UNICODE_BYTE_ORDER_MARKS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


def reject_other_unicode_encodings(data):
    """Raise ``ImportFileError`` when ``data`` starts with a UTF-16 or UTF-32 byte order mark."""
    for mark, encoding in OTHER_UNICODE_BYTE_ORDER_MARKS:
        if data.startswith(mark):
            raise ImportFileError(
                f"The file is {encoding}, but imports must be UTF-8. "
                "Save it as UTF-8 and upload it again."
            )


def decode_utf8(data):
    """Return the text of a file's bytes without a leading byte order mark.

    Raises ``ImportFileError`` for a UTF-16 or UTF-32 file, and otherwise
    names the line and offset of the first byte that is not UTF-8.
    """
    reject_other_unicode_encodings(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ImportFileError(
            f"Line {line}: the file is not valid UTF-8 (invalid byte at offset {error.start})."
        ) from error
    return text.removeprefix(BYTE_ORDER_MARK)


class SkipKind(StrEnum):
    """The reason class of a skipped record: malformed, or of no regulation the product carries."""

    INVALID = "invalid"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True)
class SkippedRecord:
    """A record left out of an import: where it is in the file and why.

    ``position`` counts from 1 in the importer's own unit, which ``record``
    names: the line of a JSON Lines file, the data row of a CSV file, the
    item of a JSON array or the finding of an OSCAL document.
    """

    position: int
    record: str
    reason: str
    kind: SkipKind = SkipKind.INVALID

    def as_dict(self):
        return {
            "position": self.position,
            "record": self.record,
            "reason": self.reason,
            "kind": str(self.kind),
        }


class RecordReader:
    """Read the records of one file, rejecting it at the first malformed one or skipping it.

    An importer calls ``read`` once per record with the function that turns
    the record into its own value. That function raises ``ImportFileError``
    for a malformed record. Without ``skip_invalid`` it propagates as an
    ``InvalidRecordError`` and the import stores nothing. With it the record
    is listed in ``skipped`` and ``read`` returns ``None``.
    """

    def __init__(self, skip_invalid=False):
        self.skip_invalid = skip_invalid
        self.skipped: list[SkippedRecord] = []

    def read(self, position, label, read_record, *args):
        """Return ``read_record(*args)``, or ``None`` for a malformed record that is skipped."""
        try:
            return read_record(*args)
        except ImportFileError as error:
            if not self.skip_invalid:
                raise InvalidRecordError(str(error)) from error
            reason = str(error).removeprefix(f"{label}: ")
            self.skipped.append(SkippedRecord(position=position, record=label, reason=reason))
            return None

    def skip(self, position, label, reason, kind=SkipKind.UNSUPPORTED):
        """List a well-formed record that the importer leaves out, in every mode."""
        skipped = SkippedRecord(position=position, record=label, reason=reason, kind=kind)
        self.skipped.append(skipped)

    def require_records(self, records, empty_message):
        """Raise ``ImportFileError`` when no record was read.

        The message is ``empty_message`` for a file without records, and names
        the first skipped record when every record was skipped.
        """
        if records:
            return
        if self.skipped:
            first = self.skipped[0]
            raise ImportFileError(
                f"No record could be imported, and {len(self.skipped)} records were skipped. "
                f"The first skipped one is {first.record}: {first.reason}"
            )
        raise ImportFileError(empty_message)


@dataclass(frozen=True)
class ImportedFinding:
    """The outcome of one control for one scanner finding, ready to store."""

    regulation: Regulation
    control_id: str
    finding_id: str
    status: FindingStatus
    severity: Severity
    title: str
    description: str = ""
    remediation: str = ""
    evidence: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ParsedImport:
    """A parsed scanner file: its findings per control and when the scan ran.

    ``unmapped_reasons`` explains, for the first unmapped records, why no control
    matched them. An importer that cannot tell leaves it empty.
    """

    source_name: str
    format: str
    started_at: dt.datetime
    finished_at: dt.datetime
    findings: list[ImportedFinding]
    record_count: int
    unmapped_count: int
    scope: dict = field(default_factory=dict)
    skipped: list[SkippedRecord] = field(default_factory=list)
    unmapped_reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ImportResult:
    """The checks an import stored, or found already stored for the same file."""

    format: str
    source_digest: str
    checks: list[Check]
    finding_count: int
    already_imported: bool
    record_count: int = 0
    unmapped_count: int = 0
    skipped: list[SkippedRecord] = field(default_factory=list)
    unmapped_reasons: list[str] = field(default_factory=list)

    @property
    def skipped_count(self):
        return len(self.skipped)

    def findings_per_regulation(self):
        """Return ``{regulation: number of findings}`` over the stored checks."""
        counts = {}
        for check in self.checks:
            counts[check.regulation] = check.findings.count()
        return counts


class Importer(Protocol):
    """A reader of one file format of one scanner."""

    format: str
    source_name: str
    description: str

    def detect(self, data: bytes) -> bool:
        """Return whether ``data`` looks like this format, without a full parse."""

    def parse(self, data: bytes, records: RecordReader | None = None) -> ParsedImport:
        """Parse ``data``, reading each record through ``records``.

        Raises ``ImportFileError`` naming the malformed record, unless
        ``records`` skips invalid records. ``None`` means a strict reader.
        """


def _existing_checks(tenant, entity, digest):
    """Return the checks of an earlier import of the file, or ``None`` if it was never imported.

    The list is empty for an earlier import that stored no check.
    """
    checks = list(
        Check.objects.filter(tenant=tenant, entity=entity, source_digest=digest).order_by(
            "regulation"
        )
    )
    if checks:
        return checks
    if ImportedFile.objects.filter(tenant=tenant, entity=entity, source_digest=digest).exists():
        return []
    return None


def _already_imported(parsed, digest, checks):
    finding_count = Finding.objects.filter(compliance_check__in=checks).count()
    return ImportResult(
        format=parsed.format,
        source_digest=digest,
        checks=checks,
        finding_count=finding_count,
        already_imported=True,
        record_count=parsed.record_count,
        unmapped_count=parsed.unmapped_count,
        skipped=parsed.skipped,
        unmapped_reasons=parsed.unmapped_reasons,
    )


def _finding_row(check, imported):
    return Finding(
        compliance_check=check,
        tenant_id=check.tenant_id,
        entity_id=check.entity_id,
        regulation=check.regulation,
        observed_at=check.created_at,
        finding_id=imported.finding_id[:FINDING_ID_MAX_LENGTH],
        control_id=imported.control_id,
        status=imported.status,
        severity=imported.severity,
        title=imported.title[:TITLE_MAX_LENGTH],
        description=imported.description,
        evidence=imported.evidence,
        remediation=imported.remediation,
    )


def _create_checks(tenant, entity, parsed, digest):
    """Insert one check per regulation with findings; return ``(checks, finding count)``."""
    by_regulation = defaultdict(list)
    for imported in parsed.findings:
        by_regulation[Regulation(imported.regulation)].append(imported)

    checks, rows = [], []
    for regulation in Regulation:
        findings = by_regulation.get(regulation)
        if not findings:
            continue
        check = Check(
            tenant=tenant,
            entity=entity,
            regulation=regulation,
            scope=parsed.scope,
            status=status_from_findings(findings),
            source=CheckSource.IMPORTED,
            source_name=parsed.source_name,
            source_digest=digest,
            created_at=parsed.started_at,
            completed_at=parsed.finished_at,
        )
        checks.append(check)
        rows.extend(_finding_row(check, imported) for imported in findings)

    Check.objects.bulk_create(checks)
    Finding.objects.bulk_create(rows)
    record_rollups(checks, rows)
    ImportedFile.objects.create(
        tenant=tenant,
        entity=entity,
        source_digest=digest,
        format=parsed.format,
        record_count=parsed.record_count,
        unmapped_count=parsed.unmapped_count,
    )
    return checks, len(rows)


def save_import(tenant, entity, parsed, digest):
    """Store ``parsed`` for ``entity`` unless a file with ``digest`` was imported before.

    The lookup makes a repeated import a no-op, also for a file that stored
    no check, because every import stores an ``ImportedFile`` row. The
    ``imported_file_once`` and ``check_import_once`` constraints cover two
    imports of the same file that race past it.
    """
    existing = _existing_checks(tenant, entity, digest)
    if existing is not None:
        logger.info("file %s already imported for entity %s", digest, entity.pk)
        return _already_imported(parsed, digest, existing)

    try:
        with transaction.atomic():
            checks, finding_count = _create_checks(tenant, entity, parsed, digest)
    except IntegrityError:
        existing = _existing_checks(tenant, entity, digest)
        if existing is None:
            raise
        logger.info("file %s imported concurrently for entity %s", digest, entity.pk)
        return _already_imported(parsed, digest, existing)

    logger.info(
        "imported %s file %s for entity %s: %d checks, %d findings, %d of %d records unmapped, "
        "%d records skipped",
        parsed.format,
        digest,
        entity.pk,
        len(checks),
        finding_count,
        parsed.unmapped_count,
        parsed.record_count,
        len(parsed.skipped),
    )
    return ImportResult(
        format=parsed.format,
        source_digest=digest,
        checks=checks,
        finding_count=finding_count,
        already_imported=False,
        record_count=parsed.record_count,
        unmapped_count=parsed.unmapped_count,
        skipped=parsed.skipped,
        unmapped_reasons=parsed.unmapped_reasons,
    )
