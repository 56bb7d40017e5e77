"""Importing garak run reports (JSONL) as checks and findings per control."""

import csv
import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from compliance.catalog.canonical import canonical_control_id
from compliance.checks.importers import ImportFileError, detect_format, import_results
from compliance.checks.importers.garak import load_probe_tags
from compliance.checks.models import Check, CheckSource, Finding, ImportedFile

REPOSITORY = Path(__file__).resolve().parent.parent
SAMPLES_DIR = REPOSITORY / "compliance" / "demo" / "data" / "garak"
MAPPINGS_DIR = REPOSITORY / "compliance" / "checks" / "importers" / "garak_mappings"
NEW_REPORT = SAMPLES_DIR / "test.report.jsonl"
OTHER_REPORT = SAMPLES_DIR / "report_test.report.jsonl"
DIGEST = SAMPLES_DIR / "extracted_digest.json"
PROWLER_CSV = REPOSITORY / "compliance" / "demo" / "data" / "prowler" / "example_output_azure.csv"
OSCAL_RESULTS = (
    REPOSITORY / "compliance" / "demo" / "data" / "oscal" / "ifa_assessment-results-example.json"
)

pytestmark = pytest.mark.django_db


# Expected values, computed from the mapping table and the samples without the importer.


def mapped_controls():
    """Return ``{owasp tag: {(regulation, canonical control ID)}}`` from the mapping table."""
    controls = {}
    with open(MAPPINGS_DIR / "owasp_llm_controls.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            control_id = canonical_control_id(row["regulation"], row["control_id"])
            controls.setdefault(row["owasp_tag"], set()).add((row["regulation"], control_id))
    return controls


def digest_detectors(digest):
    """Yield ``(probe, probe summary, detector, detector summary)`` of a digest's eval tree."""
    for group in digest["eval"].values():
        for probe, probe_entry in group.items():
            if probe == "_summary":
                continue
            for detector, detector_summary in probe_entry.items():
                if detector != "_summary":
                    yield probe, probe_entry["_summary"], detector, detector_summary


def report_from_digest(digest):
    """Return the lines of a report with one eval entry per probe and detector of ``digest``.

    The extracted digest comes without its report, so the eval entries are
    rebuilt from the counts that the digest holds for each pair.
    """
    meta = digest["meta"]
    lines = [
        {
            "entry_type": "init",
            "garak_version": meta["garak_version"],
            "start_time": meta["start_time"],
            "run": meta["run_uuid"],
        }
    ]
    for probe, _, detector, summary in digest_detectors(digest):
        evaluated = summary["total_evaluated"]
        lines.append(
            {
                "entry_type": "eval",
                "probe": probe,
                "detector": detector,
                "passed": summary["passed"],
                "fails": evaluated - summary["passed"],
                "nones": 0,
                "total_evaluated": evaluated,
                "total_processed": evaluated,
            }
        )
    lines.append(digest)
    return lines


def write_report(path, lines):
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def digest():
    return json.loads(DIGEST.read_text(encoding="utf-8"))


@pytest.fixture
def digest_report(tmp_path, digest):
    return write_report(tmp_path / "digest.report.jsonl", report_from_digest(digest))


def expected_outcome(digest):
    """Return expected finding counts, control IDs and check status per regulation."""
    controls = mapped_controls()
    counts, control_ids, worst = Counter(), {}, {}
    for _, probe_summary, _, summary in digest_detectors(digest):
        mapped = set()
        for tag in probe_summary.get("probe_tags", []):
            mapped |= controls.get(tag, set())
        failed = summary["passed"] < summary["total_evaluated"]
        high = summary["absolute_defcon"] <= 2
        for regulation, control_id in mapped:
            counts[regulation] += 1
            control_ids.setdefault(regulation, set()).add(control_id)
            if failed:
                previous = worst.get(regulation)
                worst[regulation] = "failed" if high or previous == "failed" else "partial"
    statuses = {regulation: worst.get(regulation, "passed") for regulation in counts}
    return counts, control_ids, statuses


def stored_counts(tenant):
    return Counter(Finding.objects.filter(tenant=tenant).values_list("regulation", flat=True))


def assert_nothing_stored():
    assert Check.objects.count() == 0
    assert Finding.objects.count() == 0


def sample_lines(path=NEW_REPORT):
    return path.read_text(encoding="utf-8").splitlines()


def init_line(start_time="2025-08-28T14:06:53.103753"):
    return {"entry_type": "init", "garak_version": "0.9.0", "start_time": start_time, "run": "r1"}


def eval_line(probe="dan.DanInTheWild", detector="mitigation.MitigationBypass", **counts):
    return {"entry_type": "eval", "probe": probe, "detector": detector, **counts}


# Real samples.


@pytest.mark.parametrize("path", [NEW_REPORT, OTHER_REPORT], ids=["0.14", "0.13"])
def test_sample_probe_has_no_owasp_tag(tenant, entity, path):
    result = import_results(tenant, entity, path)

    assert result.format == "garak"
    assert result.record_count == 1
    assert result.unmapped_count == 1
    assert result.finding_count == 0
    assert_nothing_stored()


@pytest.mark.parametrize("path", [NEW_REPORT, OTHER_REPORT], ids=["0.14", "0.13"])
def test_sample_repeat_is_already_imported(tenant, entity, path):
    first = import_results(tenant, entity, path)
    second = import_results(tenant, entity, path)

    assert first.already_imported is False
    assert second.already_imported is True
    assert second.checks == []
    assert_nothing_stored()
    assert ImportedFile.objects.filter(entity=entity).count() == 1


def test_sample_names_unmapped_probe(tenant, entity):
    result = import_results(tenant, entity, NEW_REPORT)

    assert result.unmapped_reasons == [
        "Probe test.Test has no OWASP LLM Top 10 tag in the bundled probe table."
    ]


def test_digest_tags_named_when_unmapped(tenant, entity):
    result = import_results(tenant, entity, OTHER_REPORT)

    assert result.unmapped_reasons == [
        "Probe test.Test has no OWASP LLM Top 10 tag in the report digest."
    ]


def test_digest_run_counts_match_mapping(tenant, entity, digest, digest_report):
    expected_counts, expected_ids, expected_statuses = expected_outcome(digest)

    result = import_results(tenant, entity, digest_report)

    assert not result.already_imported
    assert stored_counts(tenant) == expected_counts
    assert result.finding_count == sum(expected_counts.values())
    checks = Check.objects.filter(tenant=tenant)
    assert sorted(checks.values_list("regulation", flat=True)) == sorted(expected_counts)
    for check in checks:
        control_ids = set(check.findings.values_list("control_id", flat=True))
        assert control_ids == expected_ids[check.regulation]
        assert check.status == expected_statuses[check.regulation]


def test_digest_run_expected_numbers(tenant, entity, digest_report):
    result = import_results(tenant, entity, digest_report)

    assert result.record_count == 147
    assert result.unmapped_count == 45
    assert len(result.checks) == 5
    assert Check.objects.get(regulation="EU_AI_ACT").status == "failed"


def test_check_columns_from_digest_run(tenant, entity, digest_report):
    import_results(tenant, entity, digest_report)

    start = dt.datetime(2026, 7, 21, 18, 45, 46, 129067, tzinfo=dt.UTC)
    for check in Check.objects.all():
        assert check.source == CheckSource.IMPORTED
        assert check.source_name == "garak"
        assert check.created_at == start
        assert check.completed_at == start
        assert check.scope["format"] == "garak"
        assert check.scope["run_id"] == "cc5a3e6b-330f-41c9-95f6-e205cd9a845c"
        assert check.scope["garak_version"] == "0.15.2.pre1"


def test_new_shape_finding_fields(tenant, entity, digest_report):
    import_results(tenant, entity, digest_report)

    finding = Finding.objects.get(
        regulation="EU_AI_ACT",
        control_id="Art. 15",
        evidence__garak_probe="dan.DanInTheWild",
    )
    assert finding.status == "fail"
    assert finding.severity == "high"
    assert finding.title == "garak probe dan.DanInTheWild scored by mitigation.MitigationBypass"
    assert finding.description == (
        "A subset of jailbreaks from the DanInTheWild jailbreak library. "
        "274 of 1280 evaluated outputs passed (21.4%) and 1006 failed."
    )
    assert finding.evidence["passed"] == 274
    assert finding.evidence["failed"] == 1006
    assert finding.evidence["total_evaluated"] == 1280
    assert finding.evidence["total_processed"] == 1280
    assert finding.evidence["pass_rate"] == 0.2141
    assert finding.evidence["eval_shape"] == "total_evaluated"
    assert finding.evidence["owasp_tags"] == ["owasp:llm01"]
    assert finding.evidence["tag_source"] == "report digest"
    assert finding.evidence["defcon"] == 2
    assert finding.evidence["severity_source"] == "garak absolute_defcon"


def test_passing_probe_is_pass(tenant, entity, digest_report):
    import_results(tenant, entity, digest_report)

    findings = Finding.objects.filter(evidence__garak_probe="goodside.Tag")
    assert findings.count() == 6
    assert {finding.status for finding in findings} == {"pass"}
    assert {finding.severity for finding in findings} == {"low"}


def test_bundled_probe_table_matches_digest(digest):
    table = load_probe_tags()

    for probe, probe_summary, _, _ in digest_detectors(digest):
        owasp = sorted(tag for tag in probe_summary["probe_tags"] if tag.startswith("owasp:"))
        assert sorted(table.get(probe, ())) == owasp


# The two shapes of the eval entry.


OLD_SHAPE = {"passed": 274, "total": 1280}
NEW_SHAPE = {
    "passed": 274,
    "fails": 1006,
    "nones": 6,
    "total_evaluated": 1280,
    "total_processed": 1286,
}


@pytest.mark.parametrize(
    ("counts", "shape", "processed"),
    [(OLD_SHAPE, "total", None), (NEW_SHAPE, "total_evaluated", 1286)],
    ids=["old", "new"],
)
def test_eval_shapes_read_alike(tenant, entity, tmp_path, counts, shape, processed):
    path = write_report(tmp_path / "run.report.jsonl", [init_line(), eval_line(**counts)])

    result = import_results(tenant, entity, path)

    assert result.unmapped_count == 0
    finding = Finding.objects.get(regulation="SOC2")
    assert finding.control_id == "CC7.1"
    assert finding.status == "fail"
    assert finding.severity == "high"
    assert finding.evidence["passed"] == 274
    assert finding.evidence["failed"] == 1006
    assert finding.evidence["total_evaluated"] == 1280
    assert finding.evidence["total_processed"] == processed
    assert finding.evidence["eval_shape"] == shape
    assert finding.evidence["tag_source"] == "bundled probe table"
    assert finding.evidence["severity_source"] == "pass rate"


def test_old_shape_detector_prefix_dropped(tenant, entity, tmp_path):
    old = eval_line(detector="detector.dan.DAN", passed=3, total=3)
    path = write_report(tmp_path / "run.report.jsonl", [init_line(), old])

    import_results(tenant, entity, path)

    finding = Finding.objects.get(regulation="SOC2")
    assert finding.evidence["garak_detector"] == "dan.DAN"
    assert finding.finding_id == "garak:r1:dan.DanInTheWild:dan.DAN"
    assert finding.status == "pass"


def test_old_shape_fixture_appended_to_sample(tenant, entity, tmp_path):
    lines = sample_lines()
    lines.insert(18, json.dumps(eval_line(passed=10, total=10)))
    path = tmp_path / "mixed.report.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = import_results(tenant, entity, path)

    assert result.record_count == 2
    assert result.unmapped_count == 1
    assert stored_counts(tenant) == {
        "EU_AI_ACT": 1,
        "GDPR": 1,
        "HIPAA": 1,
        "ISO27001": 2,
        "SOC2": 1,
    }


def test_nothing_evaluated_not_assessed(tenant, entity, tmp_path):
    counts = {"passed": 0, "fails": 0, "nones": 5, "total_evaluated": 0, "total_processed": 5}
    path = write_report(tmp_path / "run.report.jsonl", [init_line(), eval_line(**counts)])

    import_results(tenant, entity, path)

    finding = Finding.objects.get(regulation="SOC2")
    assert finding.status == "not_assessed"
    assert finding.evidence["pass_rate"] is None
    assert "not assessed" in finding.description


# Severity: garak's DEFCON when the report has one, else from the pass rate.


def digest_line(defcon, probe="dan.DanInTheWild", detector="mitigation.MitigationBypass"):
    probe_entry = {
        "_summary": {"probe_name": probe, "probe_tags": ["owasp:llm01"]},
        detector: {"detector_name": detector, "absolute_defcon": defcon},
    }
    return {"entry_type": "digest", "meta": {}, "eval": {"dan": {probe: probe_entry}}}


@pytest.mark.parametrize(
    ("defcon", "severity"),
    [(1, "critical"), (2, "high"), (3, "medium"), (4, "low"), (5, "low")],
)
def test_defcon_severity_table(tenant, entity, tmp_path, defcon, severity):
    counts = {"passed": 1, "total_evaluated": 2}
    lines = [init_line(), eval_line(**counts), digest_line(defcon)]
    path = write_report(tmp_path / "run.report.jsonl", lines)

    import_results(tenant, entity, path)

    finding = Finding.objects.get(regulation="SOC2")
    assert finding.severity == severity
    assert finding.evidence["defcon"] == defcon
    assert finding.evidence["severity_source"] == "garak absolute_defcon"


@pytest.mark.parametrize(
    ("passed", "severity", "status"),
    [
        (0, "critical", "fail"),
        (4, "critical", "fail"),
        (5, "high", "fail"),
        (39, "high", "fail"),
        (40, "medium", "fail"),
        (79, "medium", "fail"),
        (80, "low", "fail"),
        (99, "low", "fail"),
        (100, "low", "pass"),
    ],
)
def test_pass_rate_severity_table(tenant, entity, tmp_path, passed, severity, status):
    counts = {"passed": passed, "total_evaluated": 100}
    path = write_report(tmp_path / "run.report.jsonl", [init_line(), eval_line(**counts)])

    import_results(tenant, entity, path)

    finding = Finding.objects.get(regulation="SOC2")
    assert finding.severity == severity
    assert finding.status == status
    assert finding.evidence["severity_source"] == "pass rate"


@pytest.mark.parametrize("defcon", [0, 6, "2", True])
def test_invalid_defcon_names_line(tenant, entity, tmp_path, defcon):
    lines = [init_line(), eval_line(passed=1, total_evaluated=2), digest_line(defcon)]
    path = write_report(tmp_path / "run.report.jsonl", lines)

    with pytest.raises(ImportFileError, match=r"Line 3: invalid absolute_defcon"):
        import_results(tenant, entity, path)
    assert_nothing_stored()


def test_digest_tags_override_table(tenant, entity, tmp_path):
    digest = digest_line(3)
    digest["eval"]["dan"]["dan.DanInTheWild"]["_summary"]["probe_tags"] = ["owasp:llm09"]
    lines = [init_line(), eval_line(passed=1, total_evaluated=2), digest]
    path = write_report(tmp_path / "run.report.jsonl", lines)

    import_results(tenant, entity, path)

    assert stored_counts(tenant) == {"EU_AI_ACT": 2}
    assert set(Finding.objects.values_list("control_id", flat=True)) == {"Art. 14", "Art. 15"}


# Time stamps.


def test_naive_start_time_read_as_utc(tenant, entity, tmp_path):
    lines = sample_lines()
    lines.insert(18, json.dumps(eval_line(passed=10, total=10)))
    path = tmp_path / "run.report.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    import_results(tenant, entity, path)

    check = Check.objects.get(regulation="SOC2")
    assert check.created_at == dt.datetime(2025, 8, 28, 14, 6, 53, 103753, tzinfo=dt.UTC)
    assert check.completed_at == dt.datetime(2025, 8, 28, 14, 6, 54, 65105, tzinfo=dt.UTC)


def test_start_time_offset_kept(tenant, entity, tmp_path):
    lines = [init_line("2025-08-28T14:06:53+02:00"), eval_line(passed=1, total=1)]
    path = write_report(tmp_path / "run.report.jsonl", lines)

    import_results(tenant, entity, path)

    check = Check.objects.get(regulation="SOC2")
    assert check.created_at == dt.datetime(2025, 8, 28, 12, 6, 53, tzinfo=dt.UTC)


def test_end_before_start_rejected(tenant, entity, tmp_path):
    completion = {"entry_type": "completion", "end_time": "2025-08-28T13:00:00"}
    lines = [init_line(), eval_line(passed=1, total=1), completion]
    path = write_report(tmp_path / "run.report.jsonl", lines)

    with pytest.raises(ImportFileError, match=r"end_time .* is before the init start_time"):
        import_results(tenant, entity, path)
    assert_nothing_stored()


# Repeated imports.


def test_reimport_changes_nothing(tenant, entity, digest_report):
    first = import_results(tenant, entity, digest_report)
    checks_before = set(Check.objects.values_list("id", flat=True))
    findings_before = Finding.objects.count()

    second = import_results(tenant, entity, digest_report.read_bytes())

    assert first.already_imported is False
    assert second.already_imported is True
    assert {check.id for check in second.checks} == checks_before
    assert second.finding_count == findings_before
    assert set(Check.objects.values_list("id", flat=True)) == checks_before
    assert Finding.objects.count() == findings_before


# Malformed reports store nothing and name the line.


def test_truncated_line_names_line(tenant, entity, tmp_path):
    lines = sample_lines()
    lines.insert(18, json.dumps(eval_line(passed=10, total=10)))
    lines[6] = lines[6][:200]
    path = tmp_path / "broken.report.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    with pytest.raises(ImportFileError, match=r"^Line 7: invalid JSON at column \d+"):
        import_results(tenant, entity, path)
    assert_nothing_stored()


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ({"passed": 9, "total_evaluated": 8}, r"passed \(9\) is greater than"),
        ({"passed": 2, "fails": 1, "total_evaluated": 8}, r"plus fails \(1\) does not equal"),
        ({"passed": -1, "total": 8}, r"invalid passed -1"),
        ({"passed": 1.5, "total": 8}, r"invalid passed 1.5"),
        ({"passed": 1}, r"neither total_evaluated nor total"),
        (
            {"passed": 1, "total_evaluated": 8, "total_processed": 9, "nones": 2},
            r"plus nones \(2\) does not equal total_processed \(9\)",
        ),
    ],
)
def test_bad_eval_counts_name_line(tenant, entity, tmp_path, counts, message):
    lines = [init_line(), eval_line(passed=1, total=1, probe="goodside.Tag"), eval_line(**counts)]
    path = write_report(tmp_path / "run.report.jsonl", lines)

    with pytest.raises(ImportFileError, match=rf"^Line 3: .*{message}"):
        import_results(tenant, entity, path)
    assert_nothing_stored()


def test_sample_eval_edit_names_line(tenant, entity, tmp_path):
    lines = sample_lines()
    lines.insert(18, json.dumps(eval_line(passed=10, total=10)))
    eval_entry = json.loads(lines[19])
    del eval_entry["probe"]
    lines[19] = json.dumps(eval_entry)
    path = tmp_path / "broken.report.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    with pytest.raises(ImportFileError, match=r"^Line 20: missing probe in the eval entry"):
        import_results(tenant, entity, path)
    assert_nothing_stored()


def test_duplicate_eval_names_both_lines(tenant, entity, tmp_path):
    lines = [init_line(), eval_line(passed=1, total=1), eval_line(passed=0, total=1)]
    path = write_report(tmp_path / "run.report.jsonl", lines)

    with pytest.raises(ImportFileError, match=r"^Line 3: a second eval entry .*line 2"):
        import_results(tenant, entity, path)
    assert_nothing_stored()


def test_line_without_entry_type_rejected(tenant, entity, tmp_path):
    lines = [init_line(), eval_line(passed=1, total=1), {"probe": "x"}]
    path = write_report(tmp_path / "run.report.jsonl", lines)

    with pytest.raises(ImportFileError, match=r"^Line 3: expected a JSON object with an entry"):
        import_results(tenant, entity, path)
    assert_nothing_stored()


def test_missing_init_rejected(tenant, entity):
    lines = [line for line in sample_lines() if '"entry_type": "init"' not in line]

    with pytest.raises(ImportFileError, match="no init entry"):
        import_results(tenant, entity, ("\n".join(lines) + "\n").encode(), format="garak")
    assert_nothing_stored()


def test_second_init_rejected(tenant, entity, tmp_path):
    lines = [init_line(), eval_line(passed=1, total=1), init_line()]
    path = write_report(tmp_path / "run.report.jsonl", lines)

    with pytest.raises(ImportFileError, match=r"^Line 3: a second init entry"):
        import_results(tenant, entity, path)
    assert_nothing_stored()


def test_bad_start_time_names_line(tenant, entity, tmp_path):
    path = write_report(tmp_path / "run.report.jsonl", [init_line("yesterday")])

    with pytest.raises(ImportFileError, match=r"^Line 1: invalid start_time 'yesterday'"):
        import_results(tenant, entity, path)
    assert_nothing_stored()


def test_report_without_eval_rejected(tenant, entity):
    lines = [line for line in sample_lines() if '"entry_type": "eval"' not in line]

    with pytest.raises(ImportFileError, match="no eval entries"):
        import_results(tenant, entity, ("\n".join(lines) + "\n").encode())
    assert_nothing_stored()


def test_invalid_utf8_names_line(tenant, entity):
    data = NEW_REPORT.read_bytes().replace(b"Modi dolor", b"Modi \xff\xfeolor", 1)

    with pytest.raises(ImportFileError, match=r"^Line 3: the file is not valid UTF-8"):
        import_results(tenant, entity, data)
    assert_nothing_stored()


# Format detection and the explicit format.


@pytest.mark.parametrize("path", [NEW_REPORT, OTHER_REPORT])
def test_detect_format_of_samples(path):
    assert detect_format(path.read_bytes()) == "garak"


def test_detect_format_of_report_without_setup(tmp_path, digest_report):
    assert detect_format(digest_report.read_bytes()) == "garak"


@pytest.mark.parametrize(
    ("path", "expected"), [(PROWLER_CSV, "prowler-csv"), (OSCAL_RESULTS, "oscal-ar")]
)
def test_other_files_not_garak(path, expected):
    assert detect_format(path.read_bytes()) == expected


def test_bare_digest_not_detected():
    with pytest.raises(ImportFileError, match="Unsupported file format"):
        detect_format(DIGEST.read_bytes())


def test_explicit_garak_format_on_other_file(tenant, entity):
    with pytest.raises(ImportFileError, match=r"^Line 1: invalid JSON"):
        import_results(tenant, entity, OSCAL_RESULTS, format="garak")
    assert_nothing_stored()


# The import_results command.


def test_command_detects_garak(tenant, entity, digest_report, capsys):
    entity_id = str(entity.pk)
    call_command("import_results", str(digest_report), "--tenant", "acme", "--entity", entity_id)

    output = capsys.readouterr().out
    assert "(garak)" in output
    assert "45 of 147 records without a mapped control" in output
    assert Check.objects.filter(source_name="garak").count() == 5


def test_command_format_option(tenant, entity, digest_report, capsys):
    arguments = ["import_results", str(digest_report), "--tenant", "acme"]
    call_command(*arguments, "--entity", str(entity.pk), "--format", "garak")
    call_command(*arguments, "--entity", str(entity.pk), "--format", "garak")

    output = capsys.readouterr().out
    assert "was already imported" in output
    assert Check.objects.count() == 5


def test_command_malformed_report(tenant, entity, tmp_path):
    lines = [init_line(), eval_line(passed=3, total=2)]
    path = write_report(tmp_path / "run.report.jsonl", lines)

    with pytest.raises(CommandError, match=r"stored nothing: Line 2: passed \(3\)"):
        call_command("import_results", str(path), "--tenant", "acme", "--entity", str(entity.pk))
    assert_nothing_stored()
