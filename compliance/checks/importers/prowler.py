"""Read Prowler scan output (OCSF JSON or ``;``-delimited CSV) into findings per control.

A Prowler finding is the result of one check (``metadata.event_code`` in
OCSF, ``CHECK_ID`` in CSV) on one resource. Prowler's framework mapping
files in ``prowler_mappings/`` list, per provider, which checks give
evidence for each requirement; each requirement ID is canonicalised to a
catalog control. A Prowler finding therefore becomes one finding per
(SOC 2, ISO 27001, HIPAA or GDPR) control its check is mapped to, and none
if its check is mapped to nothing.

Conversions:

* Status: ``PASS`` is pass, ``FAIL`` is fail and ``MANUAL`` is not
  assessed. A muted finding keeps its status and records ``"muted": true``
  in its evidence, because muting hides a result and does not change it.
* Severity: critical, high, medium and low are kept. Prowler's
  ``informational`` becomes low, the lowest severity the product has, so
  that such a failure still counts as a failure but never as high.
* Time: OCSF ``time`` is read as epoch seconds, which is what Prowler
  writes there (the OCSF schema itself specifies milliseconds). The CSV
  ``TIMESTAMP`` carries no time zone and is read as UTC. A check's
  ``created_at`` is the earliest record time of the file and its
  ``completed_at`` the latest.

NOTE: Prowler writes the CSV ``TIMESTAMP`` in the scanning machine's local
time. In the bundled samples it is one hour ahead of the OCSF epoch time of
the same scan, so a CSV import can be off by the scanner's UTC offset.
"""

import csv
import datetime as dt
import functools
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from compliance.catalog.canonical import canonical_control_id
from compliance.catalog.models import Regulation, Severity
from compliance.checks.importers.base import (
    BYTE_ORDER_MARK,
    ImportedFinding,
    ImportFileError,
    ParsedImport,
    RecordReader,
    decode_utf8,
)
from compliance.checks.importers.json_records import array_record_label, json_array_items
from compliance.checks.models import FindingStatus

SOURCE_NAME = "prowler"
MAPPINGS_DIR = Path(__file__).resolve().parent / "prowler_mappings"
OCSF_DETECTION_FINDING = 2004
OCSF_STATUS_SUPPRESSED = "Suppressed"

FRAMEWORK_REGULATIONS = {
    "SOC2": Regulation.SOC2,
    "ISO27001": Regulation.ISO27001,
    "HIPAA": Regulation.HIPAA,
    "GDPR": Regulation.GDPR,
}
STATUSES = {
    "PASS": FindingStatus.PASS,
    "FAIL": FindingStatus.FAIL,
    "MANUAL": FindingStatus.NOT_ASSESSED,
}
SEVERITIES = {
    "critical": Severity.CRITICAL,
    "high": Severity.HIGH,
    "medium": Severity.MEDIUM,
    "low": Severity.LOW,
    "informational": Severity.LOW,
}
MUTED_VALUES = {"true": True, "false": False}
CSV_REQUIRED_COLUMNS = (
    "TIMESTAMP",
    "PROVIDER",
    "CHECK_ID",
    "CHECK_TITLE",
    "STATUS",
    "SEVERITY",
    "MUTED",
)
OCSF_CLASS_PATTERN = re.compile(rb'"class_uid"\s*:\s*2004(?![0-9])')


@dataclass(frozen=True)
class ProwlerRecord:
    """One Prowler finding, read from either format."""

    label: str
    check_id: str
    provider: str
    status: FindingStatus
    muted: bool
    severity: Severity
    observed_at: dt.datetime
    title: str
    status_extended: str
    remediation: str
    finding_uid: str
    resource_uid: str
    resource_name: str
    region: str


@functools.cache
def load_mappings(directory=MAPPINGS_DIR):
    """Return ``{(provider, check id): {regulation: sorted control IDs}}`` from the mapping files.

    Provider names are lower case, as Prowler writes them in its output.
    """
    collected = {}
    for path in sorted(Path(directory).glob("*.json")):
        mapping = json.loads(path.read_text(encoding="utf-8"))
        regulation = FRAMEWORK_REGULATIONS[mapping["Framework"]]
        provider = mapping["Provider"].lower()
        for requirement in mapping["Requirements"]:
            control_id = canonical_control_id(regulation, requirement["Id"])
            for check_id in requirement["Checks"]:
                controls = collected.setdefault((provider, check_id), {})
                controls.setdefault(regulation, set()).add(control_id)

    return {
        key: {regulation: sorted(ids) for regulation, ids in controls.items()}
        for key, controls in collected.items()
    }


def _status(raw, label, field):
    status = STATUSES.get(str(raw).strip().upper())
    if status is None:
        raise ImportFileError(f"{label}: invalid {field} {raw!r}. Expected PASS, FAIL or MANUAL.")
    return status


def _severity(raw, label, field):
    severity = SEVERITIES.get(str(raw).strip().lower())
    if severity is None:
        raise ImportFileError(
            f"{label}: invalid {field} {raw!r}. Expected critical, high, medium, low "
            "or informational."
        )
    return severity


def _required_text(value, label, field):
    if not isinstance(value, str) or not value.strip():
        raise ImportFileError(f"{label}: missing {field}.")
    return value.strip()


def _text(value):
    return value.strip() if isinstance(value, str) else ""


def to_parsed_import(records, format_name):
    """Map Prowler records to findings per canonical control."""
    mappings = load_mappings()
    findings = []
    unmapped = 0
    for record in records:
        controls = mappings.get((record.provider.lower(), record.check_id), {})
        if not controls:
            unmapped += 1
        for regulation, control_ids in controls.items():
            findings.extend(_finding(record, regulation, control_id) for control_id in control_ids)

    times = [record.observed_at for record in records]
    return ParsedImport(
        source_name=SOURCE_NAME,
        format=format_name,
        started_at=min(times),
        finished_at=max(times),
        findings=findings,
        record_count=len(records),
        unmapped_count=unmapped,
        scope={
            "format": format_name,
            "providers": sorted({record.provider.lower() for record in records}),
        },
    )


def _finding(record, regulation, control_id):
    evidence = {
        "prowler_check_id": record.check_id,
        "provider": record.provider,
        "resource_uid": record.resource_uid,
        "resource_name": record.resource_name,
        "region": record.region,
        "status_extended": record.status_extended,
        "muted": record.muted,
        "finding_uid": record.finding_uid,
        "record": record.label,
    }
    return ImportedFinding(
        regulation=regulation,
        control_id=control_id,
        finding_id=record.finding_uid or f"{record.check_id}:{record.resource_uid}",
        status=record.status,
        severity=record.severity,
        title=record.title,
        description=record.status_extended,
        remediation=record.remediation,
        evidence=evidence,
    )


# CSV


def _csv_time(raw, label):
    try:
        value = dt.datetime.fromisoformat(raw.strip())
    except ValueError as error:
        raise ImportFileError(
            f"{label}: invalid TIMESTAMP {raw!r}. Expected a date and time such as "
            "'2025-02-14 14:27:30'."
        ) from error
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def _csv_muted(raw, label):
    muted = MUTED_VALUES.get(raw.strip().lower())
    if muted is None:
        raise ImportFileError(f"{label}: invalid MUTED {raw!r}. Expected True or False.")
    return muted


def _csv_record(row, label, header):
    fields = _field_count(row, header)
    if fields != len(header):
        raise ImportFileError(f"{label}: has {fields} fields but the header has {len(header)}.")
    return ProwlerRecord(
        label=label,
        check_id=_required_text(row["CHECK_ID"], label, "CHECK_ID"),
        provider=_required_text(row["PROVIDER"], label, "PROVIDER"),
        status=_status(row["STATUS"], label, "STATUS"),
        muted=_csv_muted(row["MUTED"], label),
        severity=_severity(row["SEVERITY"], label, "SEVERITY"),
        observed_at=_csv_time(row["TIMESTAMP"], label),
        title=_required_text(row["CHECK_TITLE"], label, "CHECK_TITLE"),
        status_extended=_text(row.get("STATUS_EXTENDED")),
        remediation=_text(row.get("REMEDIATION_RECOMMENDATION_TEXT")),
        finding_uid=_text(row.get("FINDING_UID")),
        resource_uid=_text(row.get("RESOURCE_UID")),
        resource_name=_text(row.get("RESOURCE_NAME")),
        region=_text(row.get("REGION")),
    )


def _field_count(row, header):
    """Count the fields of a ``DictReader`` row, which pads short rows with ``None``."""
    extra = row.get(None)
    if extra is not None:
        return len(header) + len(extra)
    return len(header) - list(row.values()).count(None)


def _csv_rows(text):
    """Yield ``(number, label, row, header)`` for each data row, after checking the header.

    A quoting error rejects the file even when records are skipped, because
    the reader cannot tell where the next row starts.
    """
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=";")
    header = reader.fieldnames or []
    missing = [column for column in CSV_REQUIRED_COLUMNS if column not in header]
    if missing:
        raise ImportFileError(
            f"The CSV header is missing the Prowler column(s) {', '.join(missing)}. "
            "Expected a ';'-separated Prowler CSV."
        )

    number = 0
    try:
        for number, row in enumerate(reader, start=1):
            yield number, f"CSV row {number} (line {reader.line_num})", row, header
    except csv.Error as error:
        raise ImportFileError(
            f"CSV row {number + 1} (line {reader.line_num}): invalid CSV: {error}."
        ) from error


class ProwlerCsvImporter:
    """Prowler's ``;``-delimited CSV output."""

    format = "prowler-csv"
    source_name = SOURCE_NAME
    description = "Prowler CSV (';'-separated, with CHECK_ID and STATUS columns)"

    def detect(self, data):
        first_line = data.split(b"\n", 1)[0].decode("utf-8", errors="replace")
        columns = {column.strip() for column in first_line.removeprefix(BYTE_ORDER_MARK).split(";")}
        return {"CHECK_ID", "STATUS"} <= columns

    def parse(self, data, records=None):
        reader = records or RecordReader()
        text = decode_utf8(data)
        parsed = [
            reader.read(number, label, _csv_record, row, label, header)
            for number, label, row, header in _csv_rows(text)
        ]
        parsed = [record for record in parsed if record is not None]
        reader.require_records(parsed, "The CSV file has a header but no findings.")
        return to_parsed_import(parsed, self.format)


# OCSF


def _member(item, path):
    """Return the value at dotted ``path`` in ``item``, or ``None`` if any step is missing."""
    value = item
    for key in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _ocsf_time(raw, label):
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ImportFileError(f"{label}: invalid time {raw!r}. Expected epoch seconds.")
    try:
        return dt.datetime.fromtimestamp(raw, tz=dt.UTC)
    except (OverflowError, OSError, ValueError) as error:
        raise ImportFileError(
            f"{label}: time {raw!r} is out of range for epoch seconds."
        ) from error


def _ocsf_record(item, label):
    if not isinstance(item, dict):
        raise ImportFileError(f"{label}: expected a JSON object.")
    if item.get("class_uid") != OCSF_DETECTION_FINDING:
        raise ImportFileError(
            f"{label}: class_uid {item.get('class_uid')!r} is not a Detection Finding "
            f"({OCSF_DETECTION_FINDING})."
        )

    resources = item.get("resources")
    # Prowler writes one resource per finding, so only the first one is read.
    resource = resources[0] if isinstance(resources, list) and resources else {}
    region = _text(_member(resource, "region")) or _text(_member(item, "cloud.region"))
    return ProwlerRecord(
        label=label,
        check_id=_required_text(_member(item, "metadata.event_code"), label, "metadata.event_code"),
        provider=_required_text(_member(item, "cloud.provider"), label, "cloud.provider"),
        status=_status(item.get("status_code"), label, "status_code"),
        muted=item.get("status") == OCSF_STATUS_SUPPRESSED,
        severity=_severity(item.get("severity"), label, "severity"),
        observed_at=_ocsf_time(item.get("time"), label),
        title=_required_text(_member(item, "finding_info.title"), label, "finding_info.title"),
        status_extended=_text(item.get("status_detail")) or _text(item.get("message")),
        remediation=_text(_member(item, "remediation.desc")),
        finding_uid=_text(_member(item, "finding_info.uid")),
        resource_uid=_text(_member(resource, "uid")),
        resource_name=_text(_member(resource, "name")),
        region=region,
    )


class ProwlerOcsfImporter:
    """Prowler's OCSF JSON output: a JSON array of Detection Findings (class_uid 2004)."""

    format = "prowler-ocsf"
    source_name = SOURCE_NAME
    description = "Prowler OCSF JSON (an array of Detection Findings, class_uid 2004)"

    def detect(self, data):
        starts_as_array = data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"[")
        return starts_as_array and OCSF_CLASS_PATTERN.search(data) is not None

    def parse(self, data, records=None):
        reader = records or RecordReader()
        text = decode_utf8(data)
        parsed = []
        for index, item in json_array_items(text):
            label = array_record_label(index)
            record = reader.read(index + 1, label, _ocsf_record, item, label)
            if record is not None:
                parsed.append(record)
        reader.require_records(parsed, "The OCSF file is an empty JSON array.")
        return to_parsed_import(parsed, self.format)
