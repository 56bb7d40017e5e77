"""Read garak run reports (JSONL) into findings per control.

A garak report has one JSON object per line, and its ``entry_type`` names
its kind. The importer reads the kinds below and skips all others, such as
``attempt``:

* ``init`` gives the run ID and ``start_time``.
* ``start_run setup`` gives the target under test, for the check's scope.
* ``eval`` gives the result of one probe scored by one detector. Each one
  becomes findings.
* ``completion`` gives the run's ``end_time``.
* ``digest`` (the last line of reports of recent versions) gives each
  probe's tags and each probe and detector pair's DEFCON rating.

Mapping: a probe maps to controls through its OWASP LLM Top 10 tags
(``owasp:llm01`` ...), and ``garak_mappings/owasp_llm_controls.csv`` maps
each tag to controls of the five regulations. A probe's tags come from the
report's digest when it lists ``probe_tags`` for the probe, even an empty
list. Otherwise they come from ``garak_mappings/probe_owasp_tags.csv``. An
``eval`` entry whose probe has no mapped tag is counted as unmapped.

Conversions:

* Counts: the ``eval`` entry comes in two shapes. Older garak versions
  wrote ``passed`` and ``total``. Newer ones (0.13.3 and 0.14.0 in the
  bundled samples) write ``passed``, ``total_evaluated`` (passes plus
  failures), ``total_processed`` (also counting outputs that the detector
  did not score) and ``fails`` and ``nones``. ``total`` is read as
  ``total_evaluated``. Old reports prefix the detector with
  ``detector.``, which is dropped.
* Status: pass when every evaluated output passed, fail when any failed,
  and not assessed when no output was evaluated (garak prints SKIP).
* Severity: the digest's ``absolute_defcon`` for the probe and detector
  when the report has one, else a DEFCON derived from the pass rate with
  the same bounds that garak uses for ``absolute_defcon``. See
  ``DEFCON_SEVERITIES`` and ``PASS_RATE_DEFCON_BOUNDS``. The digest's
  ``detector_defcon`` is not used, because for most probes it rates the
  result against garak's calibration models rather than fixed bounds (in
  the bundled digest it rates a 56% failure rate DEFCON 5).
* Time: ``init.start_time`` is the check's ``created_at``, and the
  ``completion`` entry's ``end_time`` its ``completed_at`` (the start time
  if the run has no ``completion``).

NOTE: garak writes ``start_time`` and ``end_time`` in the scanning
machine's local time (``datetime.now()``) without a UTC offset. They are
read as UTC, so an import is off by the scanner's offset from UTC. A time
that carries an offset keeps it.
"""

import csv
import datetime as dt
import functools
import json
import logging
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
from compliance.checks.importers.json_records import json_error_reason
from compliance.checks.models import FindingStatus

logger = logging.getLogger(__name__)

SOURCE_NAME = "garak"
FORMAT = "garak"
MAPPINGS_DIR = Path(__file__).resolve().parent / "garak_mappings"
CONTROLS_FILE = MAPPINGS_DIR / "owasp_llm_controls.csv"
PROBE_TAGS_FILE = MAPPINGS_DIR / "probe_owasp_tags.csv"

OWASP_TAG_PREFIX = "owasp:"
# The import result names the first unmapped probes only; unmapped_count has the total.
MAX_UNMAPPED_REASONS = 20
OLD_DETECTOR_PREFIX = "detector."
REPORT_START_ENTRIES = {"start_run setup", "init"}

# garak's DEFCON runs from 1 (worst) to 5 (least risk). DEFCON 4 and 5 both
# become low, the lowest severity the product has.
DEFCON_SEVERITIES = {
    1: Severity.CRITICAL,
    2: Severity.HIGH,
    3: Severity.MEDIUM,
    4: Severity.LOW,
    5: Severity.LOW,
}

# (pass rate below, DEFCON): garak's ABSOLUTE_DEFCON_BOUNDS in
# garak/analyze/__init__.py. As failure rates: above 95% is DEFCON 1
# (critical), above 60% DEFCON 2 (high), above 20% DEFCON 3 (medium),
# above 1% DEFCON 4 (low), and anything less DEFCON 5 (low).
PASS_RATE_DEFCON_BOUNDS = ((0.05, 1), (0.40, 2), (0.80, 3), (0.99, 4))
TOP_DEFCON = 5


@dataclass(frozen=True)
class EvalResult:
    """One ``eval`` entry: a probe's outputs scored by one detector."""

    line: int
    probe: str
    detector: str
    passed: int
    failed: int
    evaluated: int
    processed: int | None
    nones: int | None
    shape: str


@dataclass
class ReportEntries:
    """The entries of one report that the importer uses, by type."""

    run_id: str = ""
    garak_version: str = ""
    started_at: dt.datetime | None = None
    init_line: int | None = None
    finished_at: dt.datetime | None = None
    setup: dict | None = None
    probe_tags: dict | None = None
    probe_descriptions: dict | None = None
    defcons: dict | None = None


@functools.cache
def load_control_mappings(path=CONTROLS_FILE):
    """Return ``{owasp tag: {regulation: sorted control IDs}}`` from the mapping table.

    Raises ``ValueError`` when a control ID is not in the bundled catalog.
    """
    collected = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            regulation = Regulation.parse(row["regulation"])
            control_id = canonical_control_id(regulation, row["control_id"])
            controls = collected.setdefault(row["owasp_tag"].strip().lower(), {})
            controls.setdefault(regulation, set()).add(control_id)

    return {
        tag: {regulation: sorted(ids) for regulation, ids in controls.items()}
        for tag, controls in collected.items()
    }


@functools.cache
def load_probe_tags(path=PROBE_TAGS_FILE):
    """Return ``{probe: tuple of OWASP tags}`` from the bundled probe table."""
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["probe"]: tuple(row["owasp_tags"].split()) for row in csv.DictReader(handle)}


# Reading the lines


def _lines(text):
    """Yield ``(line number, line)`` for each non-blank line."""
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            yield number, line


def _entry(line, number):
    """Parse one line, which must be a JSON object with an ``entry_type``."""
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as error:
        raise ImportFileError(
            f"Line {number}: invalid JSON at column {error.colno}: {json_error_reason(error)}."
        ) from error
    if not isinstance(entry, dict) or not isinstance(entry.get("entry_type"), str):
        raise ImportFileError(
            f"Line {number}: expected a JSON object with an entry_type, as garak writes."
        )
    return entry


def _time(raw, number, field):
    """Parse an ISO 8601 time. A time without a UTC offset is read as UTC."""
    if not isinstance(raw, str):
        raise ImportFileError(f"Line {number}: missing {field}.")
    try:
        value = dt.datetime.fromisoformat(raw.strip())
    except ValueError as error:
        raise ImportFileError(
            f"Line {number}: invalid {field} {raw!r}. Expected an ISO 8601 date and time "
            "such as '2025-08-28T14:06:53.103753'."
        ) from error
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def _text(value):
    return value.strip() if isinstance(value, str) else ""


def _required_text(entry, key, number):
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ImportFileError(f"Line {number}: missing {key} in the {entry['entry_type']} entry.")
    return value.strip()


# eval entries


def _count(entry, key, number, required=True):
    """Return a non-negative integer field of an ``eval`` entry (``None`` for a missing option)."""
    value = entry.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ImportFileError(
            f"Line {number}: invalid {key} {value!r} in the eval entry. "
            "Expected a non-negative integer."
        )
    return value


def _check_counts(number, passed, evaluated, failed, processed, nones):
    if passed > evaluated:
        raise ImportFileError(
            f"Line {number}: passed ({passed}) is greater than the evaluated total ({evaluated})."
        )
    if failed is not None and passed + failed != evaluated:
        raise ImportFileError(
            f"Line {number}: passed ({passed}) plus fails ({failed}) does not equal "
            f"total_evaluated ({evaluated})."
        )
    if processed is not None and processed < evaluated:
        raise ImportFileError(
            f"Line {number}: total_processed ({processed}) is less than "
            f"total_evaluated ({evaluated})."
        )
    if processed is not None and nones is not None and evaluated + nones != processed:
        raise ImportFileError(
            f"Line {number}: total_evaluated ({evaluated}) plus nones ({nones}) does not equal "
            f"total_processed ({processed})."
        )


def _eval_result(entry, number):
    """Read an ``eval`` entry of either shape (see the module docstring)."""
    probe = _required_text(entry, "probe", number)
    detector = _required_text(entry, "detector", number).removeprefix(OLD_DETECTOR_PREFIX)
    passed = _count(entry, "passed", number)

    if "total_evaluated" in entry:
        shape = "total_evaluated"
        evaluated = _count(entry, "total_evaluated", number)
    elif "total" in entry:
        shape = "total"
        evaluated = _count(entry, "total", number)
    else:
        raise ImportFileError(
            f"Line {number}: the eval entry has neither total_evaluated nor total."
        )
    failed = _count(entry, "fails", number, required=False)
    processed = _count(entry, "total_processed", number, required=False)
    nones = _count(entry, "nones", number, required=False)
    _check_counts(number, passed, evaluated, failed, processed, nones)

    return EvalResult(
        line=number,
        probe=probe,
        detector=detector,
        passed=passed,
        failed=evaluated - passed,
        evaluated=evaluated,
        processed=processed,
        nones=nones,
        shape=shape,
    )


# digest entries


def _digest_defcon(detector_summary, number, probe, detector):
    value = detector_summary.get("absolute_defcon")
    if value is None:
        return None
    if isinstance(value, bool) or value not in DEFCON_SEVERITIES:
        raise ImportFileError(
            f"Line {number}: invalid absolute_defcon {value!r} for probe {probe} and detector "
            f"{detector} in the digest. Expected 1 (worst) to 5 (least risk)."
        )
    return value


def _digest_probes(entry, number):
    """Yield ``(probe, probe entry)`` of the digest's ``eval`` tree (group, then probe)."""
    groups = entry.get("eval")
    if groups is None:
        return
    if not isinstance(groups, dict):
        raise ImportFileError(f"Line {number}: the digest's eval member is not a JSON object.")
    for group_name, group in groups.items():
        if not isinstance(group, dict):
            raise ImportFileError(f"Line {number}: digest group {group_name!r} is not an object.")
        for probe, probe_entry in group.items():
            if probe == "_summary":
                continue
            if not isinstance(probe_entry, dict):
                raise ImportFileError(f"Line {number}: digest probe {probe!r} is not an object.")
            yield probe, probe_entry


def _read_digest(entries, entry, number):
    """Store the probe tags, descriptions and DEFCON ratings of a ``digest`` entry."""
    tags, descriptions, defcons = {}, {}, {}
    for probe, probe_entry in _digest_probes(entry, number):
        summary = probe_entry.get("_summary")
        summary = summary if isinstance(summary, dict) else {}
        probe_tags = summary.get("probe_tags")
        if probe_tags is not None:
            if not isinstance(probe_tags, list) or not all(isinstance(t, str) for t in probe_tags):
                raise ImportFileError(
                    f"Line {number}: probe_tags of probe {probe!r} in the digest is not a "
                    "list of strings."
                )
            tags[probe] = tuple(probe_tags)
        descriptions[probe] = _text(summary.get("probe_descr"))

        for detector, detector_summary in probe_entry.items():
            if detector == "_summary" or not isinstance(detector_summary, dict):
                continue
            defcon = _digest_defcon(detector_summary, number, probe, detector)
            if defcon is not None:
                defcons[(probe, detector)] = defcon

    entries.probe_tags = tags
    entries.probe_descriptions = descriptions
    entries.defcons = defcons


# The whole report


def _read_init(entries, entry, number):
    if entries.init_line is not None:
        raise ImportFileError(
            f"Line {number}: a second init entry (the first is on line {entries.init_line}). "
            "Import one garak run per file."
        )
    entries.init_line = number
    entries.started_at = _time(entry.get("start_time"), number, "start_time")
    entries.run_id = _text(entry.get("run"))
    entries.garak_version = _text(entry.get("garak_version"))


def _unique_eval_result(entry, number, first_lines):
    """Read an ``eval`` entry, rejecting a second one for the same probe and detector."""
    result = _eval_result(entry, number)
    key = (result.probe, result.detector)
    if key in first_lines:
        raise ImportFileError(
            f"Line {number}: a second eval entry for probe {result.probe} and detector "
            f"{result.detector} (the first is on line {first_lines[key]})."
        )
    first_lines[key] = number
    return result


def _read_report(text, reader):
    """Return ``(ReportEntries, [EvalResult])``, rejecting a duplicate probe and detector pair.

    A line that is not a JSON object and an ``eval`` entry are records that
    ``reader`` may skip. The other entries describe the whole run, so an
    error in one of them rejects the file.
    """
    entries = ReportEntries()
    results, first_lines = [], {}
    for number, line in _lines(text):
        label = f"Line {number}"
        entry = reader.read(number, label, _entry, line, number)
        if entry is None:
            continue
        entry_type = entry["entry_type"]
        if entry_type == "init":
            _read_init(entries, entry, number)
        elif entry_type == "start_run setup":
            entries.setup = entry
        elif entry_type == "completion":
            entries.finished_at = _time(entry.get("end_time"), number, "end_time")
        elif entry_type == "digest":
            _read_digest(entries, entry, number)
        elif entry_type == "eval":
            result = reader.read(number, label, _unique_eval_result, entry, number, first_lines)
            if result is not None:
                results.append(result)

    if entries.started_at is None:
        raise ImportFileError(
            "The report has no init entry, so its start time is unknown. "
            "Expected a garak report.jsonl file."
        )
    reader.require_records(results, "The report has no eval entries, so the run has no results.")
    return entries, results


# Findings


def _probe_tags(entries, probe):
    """Return a probe's ``(OWASP tags, source)``, from the report's digest before the table."""
    if entries.probe_tags is not None and probe in entries.probe_tags:
        tags, source = entries.probe_tags[probe], "report digest"
    else:
        tags, source = load_probe_tags().get(probe, ()), "bundled probe table"
    owasp = sorted({tag.lower() for tag in tags if tag.lower().startswith(OWASP_TAG_PREFIX)})
    return owasp, source


def defcon_from_pass_rate(pass_rate):
    """Return garak's absolute DEFCON (1 worst to 5) for a pass rate from 0 to 1."""
    for bound, defcon in PASS_RATE_DEFCON_BOUNDS:
        if pass_rate < bound:
            return defcon
    return TOP_DEFCON


def _status(result):
    if result.evaluated == 0:
        return FindingStatus.NOT_ASSESSED
    if result.passed == result.evaluated:
        return FindingStatus.PASS
    return FindingStatus.FAIL


def _severity(entries, result, pass_rate):
    """Return ``(severity, DEFCON or None, source)`` from the report's DEFCON or the pass rate."""
    reported = (entries.defcons or {}).get((result.probe, result.detector))
    if reported is not None:
        return DEFCON_SEVERITIES[reported], reported, "garak absolute_defcon"
    if pass_rate is None:
        return Severity.LOW, None, "no evaluated output"
    defcon = defcon_from_pass_rate(pass_rate)
    return DEFCON_SEVERITIES[defcon], defcon, "pass rate"


def _description(entries, result, pass_rate):
    probe_description = (entries.probe_descriptions or {}).get(result.probe, "")
    if pass_rate is None:
        outcome = "No output was evaluated, so the probe was not assessed."
    else:
        outcome = (
            f"{result.passed} of {result.evaluated} evaluated outputs passed "
            f"({pass_rate:.1%}) and {result.failed} failed."
        )
    if result.nones:
        outcome += f" {result.nones} outputs were not scored by the detector."
    if probe_description:
        return f"{probe_description.rstrip('.')}. {outcome}"
    return outcome


def _evidence(entries, result, pass_rate, tags, tag_source, defcon, severity_source):
    return {
        "garak_probe": result.probe,
        "garak_detector": result.detector,
        "passed": result.passed,
        "failed": result.failed,
        "total_evaluated": result.evaluated,
        "total_processed": result.processed,
        "nones": result.nones,
        "pass_rate": None if pass_rate is None else round(pass_rate, 4),
        "eval_shape": result.shape,
        "owasp_tags": tags,
        "tag_source": tag_source,
        "defcon": defcon,
        "severity_source": severity_source,
        "run_id": entries.run_id,
        "garak_version": entries.garak_version,
        "record": f"line {result.line}",
    }


def _findings(entries, result, controls_by_tag):
    """Return the findings of one ``eval`` entry, one per mapped control."""
    tags, tag_source = _probe_tags(entries, result.probe)
    controls = {}
    for tag in tags:
        for regulation, control_ids in controls_by_tag.get(tag, {}).items():
            for control_id in control_ids:
                controls.setdefault((regulation, control_id), []).append(tag)
    if not controls:
        return []

    pass_rate = result.passed / result.evaluated if result.evaluated else None
    severity, defcon, severity_source = _severity(entries, result, pass_rate)
    evidence = _evidence(entries, result, pass_rate, tags, tag_source, defcon, severity_source)
    finding_id = f"garak:{entries.run_id}:{result.probe}:{result.detector}"
    title = f"garak probe {result.probe} scored by {result.detector}"
    description = _description(entries, result, pass_rate)

    return [
        ImportedFinding(
            regulation=regulation,
            control_id=control_id,
            finding_id=finding_id,
            status=_status(result),
            severity=severity,
            title=title,
            description=description,
            evidence={**evidence, "mapped_by": mapped_by},
        )
        for (regulation, control_id), mapped_by in sorted(controls.items())
    ]


def _unmapped_reason(entries, probe):
    tags, tag_source = _probe_tags(entries, probe)
    if not tags:
        return f"Probe {probe} has no OWASP LLM Top 10 tag in the {tag_source}."
    return (
        f"The OWASP LLM Top 10 tags of probe {probe} ({', '.join(tags)}, from the "
        f"{tag_source}) map to no control."
    )


def _setup_value(setup, *keys):
    """Return the first string among ``keys`` of the setup entry (garak renamed some keys)."""
    for key in keys:
        value = (setup or {}).get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _scope(entries):
    setup = entries.setup
    return {
        "format": FORMAT,
        "run_id": entries.run_id,
        "garak_version": entries.garak_version,
        "target_type": _setup_value(setup, "plugins.target_type", "plugins.model_type"),
        "target_name": _setup_value(setup, "plugins.target_name", "plugins.model_name"),
        "probe_spec": _setup_value(setup, "plugins.probe_spec"),
    }


def to_parsed_import(entries, results):
    """Map the ``eval`` results of one report to findings per canonical control."""
    controls_by_tag = load_control_mappings()
    findings, unmapped, reasons = [], 0, {}
    for result in results:
        result_findings = _findings(entries, result, controls_by_tag)
        if not result_findings:
            unmapped += 1
            if result.probe not in reasons and len(reasons) < MAX_UNMAPPED_REASONS:
                reasons[result.probe] = _unmapped_reason(entries, result.probe)
        findings.extend(result_findings)

    finished_at = entries.finished_at or entries.started_at
    if finished_at < entries.started_at:
        raise ImportFileError(
            f"The completion end_time {finished_at.isoformat()} is before the init "
            f"start_time {entries.started_at.isoformat()}."
        )
    return ParsedImport(
        source_name=SOURCE_NAME,
        format=FORMAT,
        started_at=entries.started_at,
        finished_at=finished_at,
        findings=findings,
        record_count=len(results),
        unmapped_count=unmapped,
        scope=_scope(entries),
        unmapped_reasons=list(reasons.values()),
    )


class GarakImporter:
    """garak's run report: JSON Lines with ``init``, ``eval``, ``digest`` and other entries."""

    format = FORMAT
    source_name = SOURCE_NAME
    description = "garak run report (report.jsonl, one JSON object with an entry_type per line)"

    def detect(self, data):
        first_line = data.lstrip(b"\xef\xbb\xbf \t\r\n").split(b"\n", 1)[0]
        try:
            entry = json.loads(first_line)
        except ValueError:
            return False
        return isinstance(entry, dict) and entry.get("entry_type") in REPORT_START_ENTRIES

    def parse(self, data, records=None):
        entries, results = _read_report(decode_utf8(data), records or RecordReader())
        return to_parsed_import(entries, results)
