"""The importer interface, and the one place that stores imported results.

An importer turns the bytes of one scanner output file into a
``ParsedImport``: findings already mapped to canonical control IDs. It does
not touch the database. ``save_import`` then stores one ``Check`` per
regulation with its findings, in one transaction, so a file is imported
whole or not at all.
"""

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Protocol

from django.db import IntegrityError, transaction

from compliance.catalog.models import Regulation, Severity
from compliance.checks.models import (
    Check,
    CheckSource,
    Finding,
    FindingStatus,
    status_from_findings,
)
from compliance.checks.rollups import record_rollups

logger = logging.getLogger(__name__)

FINDING_ID_MAX_LENGTH = Finding._meta.get_field("finding_id").max_length
TITLE_MAX_LENGTH = Finding._meta.get_field("title").max_length


class ImportFileError(ValueError):
    """A file in no supported format or with a malformed record, so nothing was stored."""


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
    """A parsed scanner file: its findings per control and when the scan ran."""

    source_name: str
    format: str
    started_at: dt.datetime
    finished_at: dt.datetime
    findings: list[ImportedFinding]
    record_count: int
    unmapped_count: int
    scope: dict = field(default_factory=dict)


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

    def parse(self, data: bytes) -> ParsedImport:
        """Parse ``data`` or raise ``ImportFileError`` naming the malformed record."""


def _existing_checks(tenant, entity, digest):
    return list(
        Check.objects.filter(tenant=tenant, entity=entity, source_digest=digest).order_by(
            "regulation"
        )
    )


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
    return checks, len(rows)


def save_import(tenant, entity, parsed, digest):
    """Store ``parsed`` for ``entity`` unless a file with ``digest`` was imported before.

    The lookup makes a repeated import a no-op. The ``check_import_once``
    constraint covers two imports of the same file that race past it.
    """
    existing = _existing_checks(tenant, entity, digest)
    if existing:
        logger.info("file %s already imported for entity %s", digest, entity.pk)
        return _already_imported(parsed, digest, existing)

    try:
        with transaction.atomic():
            checks, finding_count = _create_checks(tenant, entity, parsed, digest)
    except IntegrityError:
        existing = _existing_checks(tenant, entity, digest)
        if not existing:
            raise
        logger.info("file %s imported concurrently for entity %s", digest, entity.pk)
        return _already_imported(parsed, digest, existing)

    logger.info(
        "imported %s file %s for entity %s: %d checks, %d findings, %d of %d records unmapped",
        parsed.format,
        digest,
        entity.pk,
        len(checks),
        finding_count,
        parsed.unmapped_count,
        parsed.record_count,
    )
    return ImportResult(
        format=parsed.format,
        source_digest=digest,
        checks=checks,
        finding_count=finding_count,
        already_imported=False,
        record_count=parsed.record_count,
        unmapped_count=parsed.unmapped_count,
    )
