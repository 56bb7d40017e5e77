"""Read NIST OSCAL assessment results (JSON) into findings per control.

An OSCAL ``assessment-results`` document contains one or more ``results``,
each the outcome of one assessment period with its own ``start`` and
``end``. A result's ``findings`` each name a ``target``: an assessment
objective (``objective-id``) or control statement (``statement-id``) of the
catalog the assessment plan uses, with a ``status.state`` of ``satisfied``
or ``not-satisfied``. Each finding becomes one finding per control that
its SP 800-53 control is mapped to.

Mapping: the ``target-id`` is read as an SP 800-53 Rev. 5 ID in OSCAL's
form, e.g. ``ac-6.1_obj`` (control AC-6(1), assessment objective) or
``ac-2_smt.a`` (control AC-2, statement item a). The crosswalk in
``oscal_mappings/sp800_53_crosswalk.csv`` maps SP 800-53 controls to
controls of the five regulations. An enhancement such as AC-6(1) uses its
own row when the crosswalk has one, else the rows of its base control
AC-6. A finding whose target is not an SP 800-53 ID, or names a control
that the crosswalk does not list, is counted as unmapped.

A target that carries ``regulation`` and ``control-id`` properties in the
``PROJECT_NAMESPACE`` namespace, as this project's own OSCAL export writes
them, names its control directly and skips the crosswalk.

Conversions:

* Status: ``satisfied`` is pass and ``not-satisfied`` is fail. OSCAL
  defines no other state, so any other value rejects the file.
* Severity: OSCAL rates risks, not findings. A finding takes the highest
  level of the ``risk`` facets of its related risks (their
  ``characterizations``), or of their ``impact`` facets when no related
  risk has a ``risk`` facet. ``RISK_LEVELS`` maps the SP 800-30 levels
  (very low to very high), and facet values outside that scale are
  ignored. A not-satisfied finding without a rated risk is medium, and a
  satisfied one is low.
* Time: OSCAL times carry a UTC offset, so each is read as the instant it
  names, and a time without one rejects the file. A check's ``created_at``
  is the earliest result ``start`` and its ``completed_at`` the latest
  result ``end`` (or ``start`` where a result has no ``end``). The database
  stores them in UTC, so the evidence keeps the original strings with
  their offsets.
"""

import csv
import datetime as dt
import functools
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from compliance.catalog.canonical import canonical_control_id
from compliance.catalog.models import Regulation, Severity
from compliance.checks.importers.base import (
    ImportedFinding,
    ImportFileError,
    ParsedImport,
    RecordReader,
    decode_utf8,
)
from compliance.checks.importers.json_records import describe_json_error
from compliance.checks.models import FindingStatus

logger = logging.getLogger(__name__)

SOURCE_NAME = "oscal"
FORMAT = "oscal-ar"
MAPPINGS_DIR = Path(__file__).resolve().parent / "oscal_mappings"
CROSSWALK_FILE = MAPPINGS_DIR / "sp800_53_crosswalk.csv"
# The namespace of the target properties that name a control of this
# project; a URN, so that it names no host.
PROJECT_NAMESPACE = "urn:ai-compliance:oscal"

ROOT_PATTERN = re.compile(rb'"assessment-results"\s*:\s*\{')
TARGET_TYPES = {"objective-id", "statement-id"}
STATES = {
    "satisfied": FindingStatus.PASS,
    "not-satisfied": FindingStatus.FAIL,
}

# An SP 800-53 control in OSCAL's ID form: family, number, optional
# enhancement after a dot, then optionally a statement ("_smt") or
# objective ("_obj") part, e.g. "ac-6.1_obj" or "au-2_obj.a-1".
TARGET_ID_PATTERN = re.compile(
    r"^(?P<family>[a-z]{2})-(?P<number>\d{1,2})(?:\.(?P<enhancement>\d{1,2}))?"
    r"(?:_(?:obj|smt)(?:[._-][0-9a-z._-]*)?)?$",
    re.IGNORECASE,
)
CROSSWALK_KEY_PATTERN = re.compile(r"^[A-Z]{2}-\d{1,2}(?:\(\d{1,2}\))?$")

# SP 800-30 Rev. 1 qualitative risk and impact levels.
RISK_LEVELS = {
    "very-low": Severity.LOW,
    "low": Severity.LOW,
    "moderate": Severity.MEDIUM,
    "high": Severity.HIGH,
    "very-high": Severity.CRITICAL,
}
SEVERITY_FACETS = ("risk", "impact")
UNRATED_SEVERITIES = {
    FindingStatus.PASS: Severity.LOW,
    FindingStatus.FAIL: Severity.MEDIUM,
}


@dataclass(frozen=True)
class ResultPeriod:
    """One ``results`` item's identity and times, as read and as written."""

    index: int
    uuid: str
    title: str
    start: dt.datetime
    end: dt.datetime
    start_text: str
    end_text: str


@functools.cache
def load_crosswalk(path=CROSSWALK_FILE):
    """Return ``{SP 800-53 control: {regulation: sorted control IDs}}`` from the crosswalk.

    Raises ``ValueError`` for a malformed SP 800-53 ID or a control ID that
    is not in the bundled catalog.
    """
    collected = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            key = row["sp800_53"].strip().upper()
            if not CROSSWALK_KEY_PATTERN.match(key):
                raise ValueError(f"Invalid SP 800-53 control {row['sp800_53']!r} in {path}.")
            regulation = Regulation.parse(row["regulation"])
            control_id = canonical_control_id(regulation, row["control_id"])
            controls = collected.setdefault(key, {})
            controls.setdefault(regulation, set()).add(control_id)

    return {
        key: {regulation: sorted(ids) for regulation, ids in controls.items()}
        for key, controls in collected.items()
    }


def sp800_53_control(target_id):
    """Return ``(control, base control)`` such as ``("AC-6(1)", "AC-6")``, or ``None``.

    ``None`` means that ``target_id`` is not an SP 800-53 ID in OSCAL's form.
    """
    match = TARGET_ID_PATTERN.match(target_id.strip())
    if not match:
        return None
    base = f"{match['family'].upper()}-{int(match['number'])}"
    if match["enhancement"] is None:
        return base, base
    return f"{base}({int(match['enhancement'])})", base


# Reading the document


def _load(data):
    text = decode_utf8(data)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ImportFileError(f"Invalid JSON {describe_json_error(error)}.") from error


def _object(value, label):
    if not isinstance(value, dict):
        raise ImportFileError(f"{label}: expected a JSON object.")
    return value


def _list(value, label, required=True):
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise ImportFileError(f"{label}: expected a JSON array.")
    return value


def _required_text(item, key, label):
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ImportFileError(f"{label}: missing {key}.")
    return value.strip()


def _text(value):
    return value.strip() if isinstance(value, str) else ""


def _time(raw, label, field):
    """Parse an OSCAL date-time, which must carry a UTC offset."""
    if not isinstance(raw, str):
        raise ImportFileError(f"{label}: missing {field}.")
    try:
        value = dt.datetime.fromisoformat(raw.strip())
    except ValueError as error:
        raise ImportFileError(
            f"{label}: invalid {field} {raw!r}. Expected a date and time with a UTC offset "
            "such as '2023-06-02T08:31:20-04:00'."
        ) from error
    if value.tzinfo is None:
        raise ImportFileError(
            f"{label}: {field} {raw!r} has no UTC offset, which OSCAL requires. "
            "Add the offset, e.g. 'Z' or '-04:00'."
        )
    return value


def _period(result, index):
    label = f"results[{index}]"
    start_text = _required_text(result, "start", label)
    start = _time(start_text, label, "start")
    end_text = _text(result.get("end"))
    end = _time(end_text, label, "end") if end_text else start
    if end < start:
        raise ImportFileError(f"{label}: end {end_text!r} is before start {start_text!r}.")
    return ResultPeriod(
        index=index,
        uuid=_text(result.get("uuid")),
        title=_text(result.get("title")),
        start=start,
        end=end,
        start_text=start_text,
        end_text=end_text,
    )


def _by_uuid(items, label):
    """Return ``{uuid: item}`` of the objects in ``items`` (observations or risks)."""
    found = {}
    for position, item in enumerate(_list(items, label, required=False)):
        item = _object(item, f"{label}[{position}]")
        uuid = _text(item.get("uuid"))
        if uuid:
            found[uuid] = item
    return found


# Severity from related risks


def _facets(risk):
    """Yield the facet objects of a risk's characterizations, skipping malformed members."""
    characterizations = risk.get("characterizations")
    if not isinstance(characterizations, list):
        return
    for characterization in characterizations:
        facets = characterization.get("facets") if isinstance(characterization, dict) else None
        if not isinstance(facets, list):
            continue
        yield from (facet for facet in facets if isinstance(facet, dict))


def _facet_levels(risk, name):
    """Return the ``RISK_LEVELS`` severities of the facets called ``name`` of one risk."""
    levels = []
    for facet in _facets(risk):
        if _text(facet.get("name")).lower() != name:
            continue
        level = RISK_LEVELS.get(_text(facet.get("value")).lower())
        if level is not None:
            levels.append(level)
    return levels


def _severity(status, risks):
    """Return ``(severity, source)`` from the related risks' facets, else by status."""
    for name in SEVERITY_FACETS:
        levels = [level for risk in risks for level in _facet_levels(risk, name)]
        if levels:
            return max(levels, key=Severity.rank), f"related risk {name} facet"
    return UNRATED_SEVERITIES[status], "no rated related risk"


def _risk_evidence(risk):
    facets = {}
    for facet in _facets(risk):
        if _text(facet.get("name")):
            facets[_text(facet.get("name"))] = _text(facet.get("value"))
    return {
        "uuid": _text(risk.get("uuid")),
        "title": _text(risk.get("title")),
        "status": _text(risk.get("status")),
        "facets": facets,
    }


def _remediation(risks):
    """Return the first remediation text of the related risks, if any."""
    for risk in risks:
        for remediation in risk.get("remediations") or []:
            if not isinstance(remediation, dict):
                continue
            text = _text(remediation.get("description")) or _text(remediation.get("title"))
            if text:
                return text
    return ""


# Findings


@dataclass(frozen=True)
class OscalFinding:
    """One OSCAL finding with the observations and risks it refers to."""

    label: str
    uuid: str
    title: str
    description: str
    target_type: str
    target_id: str
    state: str
    status: FindingStatus
    reason: str
    period: ResultPeriod
    observations: list
    risks: list
    # (regulation, control ID) from the project's target properties, if any.
    project_control: tuple | None = None


def _related(finding, key, member, known, label):
    """Return the objects in ``known`` that ``finding[key][*][member]`` names."""
    related = []
    for position, reference in enumerate(_list(finding.get(key), f"{label}: {key}", False)):
        reference = _object(reference, f"{label}: {key}[{position}]")
        item = known.get(_text(reference.get(member)))
        if item is not None:
            related.append(item)
    return related


def _read_finding(finding, label, period, observations, risks):
    finding = _object(finding, label)
    target = _object(finding.get("target"), f"{label}: target")
    target_type = _required_text(target, "type", f"{label}: target")
    if target_type not in TARGET_TYPES:
        raise ImportFileError(
            f"{label}: invalid target type {target_type!r}. Expected objective-id or statement-id."
        )
    status_object = _object(target.get("status"), f"{label}: target.status")
    state = _required_text(status_object, "state", f"{label}: target.status")
    status = STATES.get(state)
    if status is None:
        raise ImportFileError(
            f"{label}: invalid target.status.state {state!r}. Expected satisfied or not-satisfied."
        )

    return OscalFinding(
        label=label,
        uuid=_required_text(finding, "uuid", label),
        title=_required_text(finding, "title", label),
        description=_text(finding.get("description")),
        target_type=target_type,
        target_id=_required_text(target, "target-id", f"{label}: target"),
        state=state,
        status=status,
        reason=_text(status_object.get("reason")),
        period=period,
        observations=_related(
            finding, "related-observations", "observation-uuid", observations, label
        ),
        risks=_related(finding, "related-risks", "risk-uuid", risks, label),
        project_control=_project_control(target, label),
    )


def _project_control(target, label):
    """Return ``(regulation, control ID)`` from the target's project properties, or ``None``."""
    values = {}
    for prop in target.get("props") or []:
        if isinstance(prop, dict) and _text(prop.get("ns")) == PROJECT_NAMESPACE:
            values[_text(prop.get("name"))] = _text(prop.get("value"))
    if not values.get("regulation") or not values.get("control-id"):
        return None
    try:
        regulation = Regulation.parse(values["regulation"])
        return regulation, canonical_control_id(regulation, values["control-id"])
    except ValueError as error:
        logger.info("%s: target properties name no catalog control: %s", label, error)
        return None


def _read_results(document, reader):
    """Return ``(assessment-results object, periods, findings)``, in document order.

    Each finding is a record that ``reader`` may skip. An error in a result's
    period rejects the file, because every finding of the result needs it.
    """
    root = _object(document, "The file")
    assessment = root.get("assessment-results")
    if not isinstance(assessment, dict):
        raise ImportFileError(
            "The file has no assessment-results object. Expected an OSCAL assessment "
            "results document in JSON."
        )

    periods, findings = [], []
    position = 0
    for index, result in enumerate(_list(assessment.get("results"), "assessment-results.results")):
        result = _object(result, f"results[{index}]")
        period = _period(result, index)
        observations = _by_uuid(result.get("observations"), f"results[{index}].observations")
        risks = _by_uuid(result.get("risks"), f"results[{index}].risks")
        periods.append(period)

        result_findings = _list(result.get("findings"), f"results[{index}].findings", False)
        for item_index, finding in enumerate(result_findings):
            position += 1
            label = f"OSCAL finding {position} (results[{index}].findings[{item_index}])"
            read = reader.read(
                position, label, _read_finding, finding, label, period, observations, risks
            )
            if read is not None:
                findings.append(read)

    if not periods:
        raise ImportFileError("The assessment results contain no results.")
    reader.require_records(findings, "The assessment results contain no findings.")
    return assessment, periods, findings


def _observation_evidence(observation):
    return {
        "uuid": _text(observation.get("uuid")),
        "title": _text(observation.get("title")),
        "collected": _text(observation.get("collected")),
    }


def _evidence(finding, control, crosswalk_key, severity_source):
    period = finding.period
    return {
        "oscal_finding_uuid": finding.uuid,
        "target_type": finding.target_type,
        "target_id": finding.target_id,
        "sp800_53_control": control,
        "crosswalk_control": crosswalk_key,
        "state": finding.state,
        "reason": finding.reason,
        "result_uuid": period.uuid,
        "result_title": period.title,
        "result_start": period.start_text,
        "result_end": period.end_text,
        "related_observations": [_observation_evidence(item) for item in finding.observations],
        "related_risks": [_risk_evidence(risk) for risk in finding.risks],
        "severity_source": severity_source,
        "record": finding.label,
    }


def _mapped_controls(finding, crosswalk):
    """Return ``(control, crosswalk key, {regulation: control IDs})`` or ``None`` if unmapped.

    A target that names a project control returns ``(None, None, {regulation: [ID]})``.
    """
    if finding.project_control is not None:
        regulation, control_id = finding.project_control
        return None, None, {regulation: [control_id]}
    parsed = sp800_53_control(finding.target_id)
    if parsed is None:
        logger.info("%s: target %r is not an SP 800-53 ID", finding.label, finding.target_id)
        return None
    control, base = parsed
    for key in (control, base):
        if key in crosswalk:
            return control, key, crosswalk[key]
    return None


def _findings(finding, crosswalk):
    mapped = _mapped_controls(finding, crosswalk)
    if mapped is None:
        return []
    control, crosswalk_key, controls = mapped

    severity, severity_source = _severity(finding.status, finding.risks)
    evidence = _evidence(finding, control, crosswalk_key, severity_source)
    remediation = _remediation(finding.risks)
    return [
        ImportedFinding(
            regulation=regulation,
            control_id=control_id,
            finding_id=finding.uuid,
            status=finding.status,
            severity=severity,
            title=finding.title,
            description=finding.description,
            remediation=remediation,
            evidence=evidence,
        )
        for regulation, control_ids in controls.items()
        for control_id in control_ids
    ]


def _scope(assessment):
    metadata = assessment.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    return {
        "format": FORMAT,
        "document_uuid": _text(assessment.get("uuid")),
        "title": _text(metadata.get("title")),
        "oscal_version": _text(metadata.get("oscal-version")),
    }


def to_parsed_import(assessment, periods, findings):
    """Map OSCAL findings to findings per canonical control."""
    crosswalk = load_crosswalk()
    imported, unmapped = [], 0
    for finding in findings:
        finding_rows = _findings(finding, crosswalk)
        if not finding_rows:
            unmapped += 1
        imported.extend(finding_rows)

    return ParsedImport(
        source_name=SOURCE_NAME,
        format=FORMAT,
        started_at=min(period.start for period in periods),
        finished_at=max(period.end for period in periods),
        findings=imported,
        record_count=len(findings),
        unmapped_count=unmapped,
        scope=_scope(assessment),
    )


class OscalAssessmentResultsImporter:
    """NIST OSCAL assessment results in JSON (an ``assessment-results`` root object)."""

    format = FORMAT
    source_name = SOURCE_NAME
    description = "NIST OSCAL assessment results (JSON with an assessment-results object)"

    def detect(self, data):
        starts_as_object = data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")
        return starts_as_object and ROOT_PATTERN.search(data) is not None

    def parse(self, data, records=None):
        reader = records or RecordReader()
        assessment, periods, findings = _read_results(_load(data), reader)
        return to_parsed_import(assessment, periods, findings)
