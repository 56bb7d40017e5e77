"""Read OCSF Compliance Findings (class_uid 2003) from any tool into findings per control.

The file is a JSON array of findings or JSON Lines (one finding object per
line). Each finding names the standards it was evaluated against
(``compliance.standards``), the requirements or control it checked
(``compliance.requirements``, ``compliance.control``) and the outcome
(``compliance.status_id``). The field names and enumerations follow the OCSF
schema 1.x (``compliance`` object, ``finding_info`` object, the
``severity_id`` dictionary attribute).

Standards: each string of ``compliance.standards`` is compared in upper case
with every character but letters and digits removed, so ``SOC 2``,
``soc-2`` and ``SOC2`` are the same. A standard names a regulation when its
normalised form starts with one of these prefixes:

=======================================  ===================
Prefix of the normalised standard        Regulation
=======================================  ===================
SOC2, AICPASOC2, TSC, AICPATSC,          SOC 2
TRUSTSERVICESCRITERIA
ISO27001 or ISOIEC27001, not followed    ISO/IEC 27001:2022
by a digit unless by 2022
HIPAA, 45CFR164                          HIPAA Security Rule
GDPR, EUGDPR, REGULATIONEU2016679        GDPR
AIACT, EUAIACT, REGULATIONEU20241689     EU AI Act
=======================================  ===================

ISO/IEC 27001:2013 is not read as 2022, because its Annex A numbers other
controls. A finding whose standards are all outside the table is skipped
with the reason, in every mode, and its standards are named.

Controls: every string of ``compliance.requirements`` and the
``compliance.control`` string is read under each regulation of the finding
through ``canonical_control_id``. Tools write requirements as bare IDs
(``CC6.1``) or as prose around an ID (``HIPAA Security Rule
164.312(a)(2)(iv) - Implement encryption``). The importer therefore tries
the whole string, then the part before `` - ``, then pairs of adjacent
words and single words. A word or pair is tried only when it contains a
digit and is not only digits, so "Ensure 2 accounts" names no article. GDPR and EU AI
Act paragraphs are dropped (``Art. 5(1)(f)`` is ``Art. 5``), because the
catalog lists articles. A finding of a known standard where no requirement
names a catalog control is invalid.

Status (``compliance.status_id``, or the ``compliance.status`` label when
the ID is missing or 99, Other):

=====================  =================  ==============
status_id              status label       Finding status
=====================  =================  ==============
1 (Pass)               pass, passed       pass
3 (Fail)               fail, failed       fail
2 (Warning)            warning            not assessed
0 (Unknown)            unknown, manual    not assessed
(none)                 not applicable     not applicable
=====================  =================  ==============

Any other value makes the finding invalid. OCSF's top-level ``status_id``
is the finding's triage state (new, suppressed, resolved), not the
compliance outcome, so it is kept in the evidence only.

Severity (``severity_id``, or the ``severity`` label when the ID is missing
or 99, Other): 1 (Informational) and 2 (Low) are low, 3 medium, 4 high, and
5 (Critical) and 6 (Fatal) critical. 0 (Unknown) is medium, because the
product has no unknown severity and medium neither hides a failure nor
inflates it. Labels are the captions of the same IDs, in any letter case.

Time: ``time_dt`` (an RFC 3339 date and time) when present, else ``time``.
OCSF specifies ``time`` in milliseconds since the epoch, but some producers
(Prowler among them) write seconds, so a value below 10^11 (which would be
March 1973 in milliseconds) is read as seconds. A ``time_dt`` without a UTC
offset is read as UTC. A check's ``created_at`` is the earliest finding time
of the file and its ``completed_at`` the latest.
"""

import datetime as dt
import itertools
import json
import re
from dataclasses import dataclass

from django.utils.text import slugify

from compliance.catalog.canonical import canonical_control_id
from compliance.catalog.models import Regulation, Severity
from compliance.checks.importers.base import (
    ImportedFinding,
    ImportFileError,
    ParsedImport,
    RecordReader,
    decode_utf8,
)
from compliance.checks.importers.json_records import (
    array_record_label,
    json_array_items,
    json_error_reason,
)
from compliance.checks.models import FindingStatus

FORMAT = "ocsf-compliance"
SOURCE_NAME = "ocsf"
SOURCE_NAME_MAX_LENGTH = 64
OCSF_COMPLIANCE_FINDING = 2003
CLASS_PATTERN = re.compile(rb'"class_uid"\s*:\s*2003(?![0-9])')
# Below this, ``time`` is read as epoch seconds (see the module docstring).
MILLISECONDS_THRESHOLD = 100_000_000_000

STANDARD_PATTERNS = (
    (re.compile(r"^(?:AICPA)?(?:SOC2|TSC|TRUSTSERVICESCRITERIA)"), Regulation.SOC2),
    (re.compile(r"^ISO(?:IEC)?27001(?:2022|(?!\d))"), Regulation.ISO27001),
    (re.compile(r"^(?:HIPAA|45CFR164)"), Regulation.HIPAA),
    (re.compile(r"^(?:EU)?GDPR|^REGULATIONEU2016679"), Regulation.GDPR),
    (re.compile(r"^(?:EU)?AIACT|^REGULATIONEU20241689"), Regulation.EU_AI_ACT),
)

# The catalog lists GDPR and EU AI Act articles, not their paragraphs, so
# "Art. 5(1)(f)" is read as "Art. 5".
ARTICLE_REGULATIONS = {Regulation.GDPR, Regulation.EU_AI_ACT}
PARAGRAPH_SUFFIX = re.compile(r"(?:\([0-9a-z]+\))+$", re.IGNORECASE)

STATUS_IDS = {
    0: FindingStatus.NOT_ASSESSED,
    1: FindingStatus.PASS,
    2: FindingStatus.NOT_ASSESSED,
    3: FindingStatus.FAIL,
}
STATUS_LABELS = {
    "pass": FindingStatus.PASS,
    "passed": FindingStatus.PASS,
    "fail": FindingStatus.FAIL,
    "failed": FindingStatus.FAIL,
    "warning": FindingStatus.NOT_ASSESSED,
    "unknown": FindingStatus.NOT_ASSESSED,
    "manual": FindingStatus.NOT_ASSESSED,
    "not applicable": FindingStatus.NOT_APPLICABLE,
}
SEVERITY_IDS = {
    0: Severity.MEDIUM,
    1: Severity.LOW,
    2: Severity.LOW,
    3: Severity.MEDIUM,
    4: Severity.HIGH,
    5: Severity.CRITICAL,
    6: Severity.CRITICAL,
}
SEVERITY_LABELS = {
    "unknown": Severity.MEDIUM,
    "informational": Severity.LOW,
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "high": Severity.HIGH,
    "critical": Severity.CRITICAL,
    "fatal": Severity.CRITICAL,
}
OTHER_ID = 99


@dataclass(frozen=True)
class ComplianceRecord:
    """One OCSF Compliance Finding with its controls resolved per regulation."""

    label: str
    uid: str
    title: str
    description: str
    status: FindingStatus
    severity: Severity
    observed_at: dt.datetime
    remediation: str
    controls: dict
    product: str
    evidence: dict


# Reading the file


def _json_line(line, label):
    try:
        return json.loads(line)
    except json.JSONDecodeError as error:
        raise ImportFileError(
            f"{label}: invalid JSON at column {error.colno}: {json_error_reason(error)}."
        ) from error


def _records(text):
    """Yield ``(position, label, item or None, line)`` of a JSON array or JSON Lines file.

    A JSON Lines record is parsed later through the record reader, so that
    one invalid line can be skipped. ``item`` is then ``None``.
    """
    if text.lstrip(" \t\r\n").startswith("["):
        for index, item in json_array_items(text):
            yield index + 1, array_record_label(index), item, None
        return

    position = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        position += 1
        yield position, f"OCSF record {position} (line {number})", None, line


# One record


def _member(item, path):
    """Return the value at dotted ``path`` in ``item``, or ``None`` if any step is missing."""
    value = item
    for key in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _text(value):
    return value.strip() if isinstance(value, str) else ""


def _strings(value, label, field):
    """Return a list of non-blank strings from an OCSF string array (or ``[]`` if missing)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ImportFileError(f"{label}: {field} is not an array of strings.")
    return [item.strip() for item in value if item.strip()]


def regulation_of_standard(standard):
    """Return the ``Regulation`` an OCSF standard string names, or ``None``."""
    normalised = re.sub(r"[^A-Z0-9]", "", standard.upper())
    for pattern, regulation in STANDARD_PATTERNS:
        if pattern.search(normalised):
            return regulation
    return None


def _control_candidates(text):
    """Yield the substrings of a requirement that may be a control ID, most specific first."""
    yield text
    head = text.split(" - ", 1)[0].strip()
    if head != text:
        yield head
    words = head.split()
    pairs = [f"{first} {second}" for first, second in itertools.pairwise(words)]
    for candidate in pairs + words:
        has_digit = any(char.isdigit() for char in candidate)
        if has_digit and not candidate.isdigit():
            yield candidate


def resolve_control(regulation, text):
    """Return the canonical control ID that ``text`` names under ``regulation``, or ``None``."""
    for candidate in _control_candidates(text):
        if regulation in ARTICLE_REGULATIONS:
            candidate = PARAGRAPH_SUFFIX.sub("", candidate)
        try:
            return canonical_control_id(regulation, candidate)
        except ValueError:
            continue
    return None


def _controls(regulations, requirements, label):
    """Return ``({regulation: sorted control IDs}, unresolved requirements)``."""
    controls = {}
    for regulation in regulations:
        resolved = {resolve_control(regulation, text) for text in requirements}
        resolved.discard(None)
        if resolved:
            controls[regulation] = sorted(resolved)
    if not controls:
        names = ", ".join(regulation.label for regulation in regulations)
        raise ImportFileError(
            f"{label}: no requirement names a {names} control of the catalog "
            f"(requirements: {', '.join(requirements) or 'none'})."
        )
    unresolved = [
        text
        for text in requirements
        if not any(resolve_control(regulation, text) for regulation in controls)
    ]
    return controls, unresolved


def _enumerated(item, id_path, label_path, ids, labels, label, field):
    """Map an OCSF enumeration: its ID, or its label when the ID is missing or Other (99)."""
    raw_id = _member(item, id_path)
    if raw_id is not None and raw_id != OTHER_ID:
        if isinstance(raw_id, bool) or raw_id not in ids:
            raise ImportFileError(
                f"{label}: invalid {id_path} {raw_id!r}. Expected one of "
                f"{', '.join(str(key) for key in ids)} or {OTHER_ID} with a {label_path} label."
            )
        return ids[raw_id]

    raw_label = _text(_member(item, label_path))
    if not raw_label:
        raise ImportFileError(f"{label}: missing {field} ({id_path} or {label_path}).")
    value = labels.get(raw_label.lower())
    if value is None:
        raise ImportFileError(
            f"{label}: invalid {label_path} {raw_label!r}. Expected one of {', '.join(labels)}."
        )
    return value


def _time(item, label):
    raw_text = item.get("time_dt")
    if raw_text is not None:
        if not isinstance(raw_text, str):
            raise ImportFileError(f"{label}: invalid time_dt {raw_text!r}. Expected a string.")
        try:
            value = dt.datetime.fromisoformat(raw_text.strip())
        except ValueError as error:
            raise ImportFileError(
                f"{label}: invalid time_dt {raw_text!r}. Expected an RFC 3339 date and time "
                "such as '2026-11-30T08:00:00Z'."
            ) from error
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)

    raw = item.get("time")
    if raw is None:
        raise ImportFileError(f"{label}: missing time (or time_dt).")
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ImportFileError(f"{label}: invalid time {raw!r}. Expected epoch milliseconds.")
    seconds = raw if abs(raw) < MILLISECONDS_THRESHOLD else raw / 1000
    try:
        return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    except (OverflowError, OSError, ValueError) as error:
        raise ImportFileError(f"{label}: time {raw!r} is out of range.") from error


def _resources(item):
    resources = item.get("resources")
    if not isinstance(resources, list):
        resource = item.get("resource")
        resources = [resource] if isinstance(resource, dict) else []
    return [
        {"uid": _text(resource.get("uid")), "name": _text(resource.get("name"))}
        for resource in resources
        if isinstance(resource, dict)
    ]


def _evidence(item, compliance, standards, requirements, unresolved, label):
    return {
        "ocsf_class_uid": OCSF_COMPLIANCE_FINDING,
        "standards": standards,
        "requirements": requirements,
        "unresolved_requirements": unresolved,
        "control": _text(compliance.get("control")),
        "compliance_status_id": compliance.get("status_id"),
        "compliance_status": _text(compliance.get("status")),
        "status_code": _text(compliance.get("status_code")),
        "status_detail": _text(compliance.get("status_detail")),
        "severity_id": item.get("severity_id"),
        "finding_status": _text(item.get("status")),
        "product": _text(_member(item, "metadata.product.name")),
        "product_version": _text(_member(item, "metadata.product.version")),
        "resources": _resources(item),
        "remediation_references": _strings(
            _member(item, "remediation.references"), label, "remediation.references"
        ),
        "record": label,
    }


def _compliance_record(item, label, reader, position):
    """Read one finding, or return ``None`` after skipping one of unsupported standards."""
    if not isinstance(item, dict):
        raise ImportFileError(f"{label}: expected a JSON object.")
    if item.get("class_uid") != OCSF_COMPLIANCE_FINDING:
        raise ImportFileError(
            f"{label}: class_uid {item.get('class_uid')!r} is not a Compliance Finding "
            f"({OCSF_COMPLIANCE_FINDING})."
        )
    compliance = item.get("compliance")
    if not isinstance(compliance, dict):
        raise ImportFileError(f"{label}: missing compliance object.")

    standards = _strings(compliance.get("standards"), label, "compliance.standards")
    if not standards:
        raise ImportFileError(f"{label}: missing compliance.standards.")
    regulations = []
    for standard in standards:
        regulation = regulation_of_standard(standard)
        if regulation is not None and regulation not in regulations:
            regulations.append(regulation)
    if not regulations:
        reader.skip(
            position,
            label,
            f"none of its standards ({', '.join(standards)}) is a regulation this product "
            f"carries ({', '.join(regulation.label for regulation in Regulation)}).",
        )
        return None

    requirements = _strings(compliance.get("requirements"), label, "compliance.requirements")
    control = compliance.get("control")
    if control is not None and not isinstance(control, str):
        raise ImportFileError(f"{label}: compliance.control is not a string.")
    if _text(control):
        requirements.append(_text(control))
    if not requirements:
        raise ImportFileError(f"{label}: missing compliance.requirements and compliance.control.")
    controls, unresolved = _controls(regulations, requirements, label)

    uid = _text(_member(item, "finding_info.uid"))
    if not uid:
        raise ImportFileError(f"{label}: missing finding_info.uid.")
    title = (
        _text(_member(item, "finding_info.title"))
        or _text(compliance.get("desc"))
        or _text(item.get("message"))
    )
    if not title:
        raise ImportFileError(f"{label}: missing finding_info.title.")

    return ComplianceRecord(
        label=label,
        uid=uid,
        title=title,
        description=_text(_member(item, "finding_info.desc")) or _text(item.get("message")),
        status=_enumerated(
            item,
            "compliance.status_id",
            "compliance.status",
            STATUS_IDS,
            STATUS_LABELS,
            label,
            "compliance status",
        ),
        severity=_enumerated(
            item, "severity_id", "severity", SEVERITY_IDS, SEVERITY_LABELS, label, "severity"
        ),
        observed_at=_time(item, label),
        remediation=_text(_member(item, "remediation.desc")),
        controls=controls,
        product=_text(_member(item, "metadata.product.name")),
        evidence=_evidence(item, compliance, standards, requirements, unresolved, label),
    )


def _read_item(item, line, label, reader, position):
    if line is not None:
        item = _json_line(line, label)
    return _compliance_record(item, label, reader, position)


# The whole file


def _source_name(records):
    """Return the slug of the one product that wrote every finding, else ``ocsf``."""
    products = {slugify(record.product) for record in records}
    if len(products) == 1 and "" not in products:
        return products.pop()[:SOURCE_NAME_MAX_LENGTH]
    return SOURCE_NAME


def to_parsed_import(records):
    """Map OCSF Compliance Findings to findings per canonical control."""
    findings = [
        ImportedFinding(
            regulation=regulation,
            control_id=control_id,
            finding_id=record.uid,
            status=record.status,
            severity=record.severity,
            title=record.title,
            description=record.description,
            remediation=record.remediation,
            evidence=record.evidence,
        )
        for record in records
        for regulation, control_ids in record.controls.items()
        for control_id in control_ids
    ]
    times = [record.observed_at for record in records]
    return ParsedImport(
        source_name=_source_name(records),
        format=FORMAT,
        started_at=min(times),
        finished_at=max(times),
        findings=findings,
        record_count=len(records),
        unmapped_count=0,
        scope={
            "format": FORMAT,
            "products": sorted({record.product for record in records if record.product}),
        },
    )


class OcsfComplianceImporter:
    """OCSF Compliance Findings (class_uid 2003) as a JSON array or JSON Lines, from any tool."""

    format = FORMAT
    source_name = SOURCE_NAME
    description = "OCSF Compliance Findings (class_uid 2003, a JSON array or JSON Lines)"

    def detect(self, data):
        start = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
        return start in {b"[", b"{"} and CLASS_PATTERN.search(data) is not None

    def parse(self, data, records=None):
        reader = records or RecordReader()
        text = decode_utf8(data)
        parsed = []
        for position, label, item, line in _records(text):
            record = reader.read(position, label, _read_item, item, line, label, reader, position)
            if record is not None:
                parsed.append(record)
        reader.require_records(parsed, "The OCSF file contains no Compliance Findings.")
        return to_parsed_import(parsed)
