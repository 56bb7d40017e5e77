"""Importing NIST OSCAL assessment results as checks and findings per control."""

import copy
import csv
import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from compliance.catalog.canonical import canonical_control_id
from compliance.checks.importers import ImportFileError, detect_format, import_results, oscal
from compliance.checks.importers.oscal import sp800_53_control
from compliance.checks.models import Check, CheckSource, Finding

REPOSITORY = Path(__file__).resolve().parent.parent
SAMPLE = (
    REPOSITORY / "compliance" / "demo" / "data" / "oscal" / "ifa_assessment-results-example.json"
)
CROSSWALK = REPOSITORY / "compliance" / "checks" / "importers" / "oscal_mappings"
GARAK_REPORT = REPOSITORY / "compliance" / "demo" / "data" / "garak" / "test.report.jsonl"
EASTERN_DAYLIGHT = dt.timezone(dt.timedelta(hours=-4))

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def sample():
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


def edited(sample, change):
    """Return the bytes of a deep copy of the sample after ``change(document)``."""
    document = copy.deepcopy(sample)
    change(document)
    return json.dumps(document, indent=2).encode()


def first_result(document):
    return document["assessment-results"]["results"][0]


def first_finding(document):
    return first_result(document)["findings"][0]


# Expected values, computed from the crosswalk and the sample without the importer.


def crosswalk_rows():
    """Return ``{SP 800-53 control: {(regulation, canonical control ID)}}``."""
    rows = {}
    path = CROSSWALK / "sp800_53_crosswalk.csv"
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            control_id = canonical_control_id(row["regulation"], row["control_id"])
            rows.setdefault(row["sp800_53"], set()).add((row["regulation"], control_id))
    return rows


def control_of_target(target_id):
    """Read ``ac-6.1_obj`` as ``("AC-6(1)", "AC-6")`` with a pattern of the test's own."""
    family, number, enhancement = re.match(r"([a-z]+)-(\d+)(?:\.(\d+))?", target_id).groups()
    base = f"{family.upper()}-{number}"
    return (f"{base}({enhancement})" if enhancement else base), base


def expected_counts(document):
    rows = crosswalk_rows()
    counts = Counter()
    for result in document["assessment-results"]["results"]:
        for finding in result.get("findings", []):
            control, base = control_of_target(finding["target"]["target-id"])
            for regulation, _ in rows.get(control) or rows.get(base, ()):
                counts[regulation] += 1
    return counts


def stored_counts(tenant):
    return Counter(Finding.objects.filter(tenant=tenant).values_list("regulation", flat=True))


def assert_nothing_stored():
    assert Check.objects.count() == 0
    assert Finding.objects.count() == 0


# The real sample.


def test_sample_counts_match_crosswalk(tenant, entity, sample):
    expected = expected_counts(sample)

    result = import_results(tenant, entity, SAMPLE)

    assert result.format == "oscal-ar"
    assert not result.already_imported
    assert stored_counts(tenant) == expected
    assert result.finding_count == sum(expected.values())
    assert sorted(Check.objects.values_list("regulation", flat=True)) == sorted(expected)


def test_sample_expected_numbers(tenant, entity):
    result = import_results(tenant, entity, SAMPLE)

    assert result.record_count == 1
    assert result.unmapped_count == 0
    assert stored_counts(tenant) == {"SOC2": 1, "ISO27001": 2, "HIPAA": 1, "GDPR": 1}
    controls = set(Finding.objects.values_list("regulation", "control_id"))
    assert controls == {
        ("SOC2", "CC6.3"),
        ("ISO27001", "A.5.15"),
        ("ISO27001", "A.8.2"),
        ("HIPAA", "164.308(a)(4)"),
        ("GDPR", "Art. 32"),
    }


def test_sample_finding_fields(tenant, entity):
    import_results(tenant, entity, SAMPLE)

    finding = Finding.objects.get(regulation="SOC2")
    assert finding.finding_id == "45d8a6c2-1368-4bad-9ba0-7141f0a32889"
    assert finding.status == "fail"
    assert finding.severity == "medium"
    assert finding.title == (
        "GoodRead AwesomeCloud Account's System Engineer Role Permits High Risk Actions"
    )
    assert finding.description.startswith("The assessor's security automation platform")
    assert finding.remediation == ""
    evidence = finding.evidence
    assert evidence["target_type"] == "objective-id"
    assert evidence["target_id"] == "ac-6.1_obj"
    assert evidence["sp800_53_control"] == "AC-6(1)"
    assert evidence["crosswalk_control"] == "AC-6"
    assert evidence["state"] == "not-satisfied"
    assert evidence["severity_source"] == "no rated related risk"
    assert evidence["result_uuid"] == "a1d20136-37e0-42aa-9834-4e9d8c36d798"
    assert [item["uuid"] for item in evidence["related_observations"]] == [
        "8807eb6e-0c05-43bc-8438-799739615e34"
    ]
    assert evidence["related_risks"][0]["status"] == "investigating"
    assert evidence["record"] == "OSCAL finding 1 (results[0].findings[0])"


def test_check_columns_from_sample(tenant, entity):
    import_results(tenant, entity, SAMPLE)

    for check in Check.objects.all():
        assert check.source == CheckSource.IMPORTED
        assert check.source_name == "oscal"
        assert check.status == "partial"
        assert check.scope == {
            "format": "oscal-ar",
            "document_uuid": "ec0dad37-54e0-40fd-a925-6d0bdea94c0d",
            "title": "IFA GoodRead Continuous Monitoring Assessment Results June 2023",
            "oscal_version": "1.1.2",
        }


# Time stamps keep their UTC offset.


def test_result_times_keep_offset(tenant, entity):
    import_results(tenant, entity, SAMPLE)

    check = Check.objects.get(regulation="SOC2")
    assert check.created_at == dt.datetime(2023, 6, 2, 8, 31, 20, tzinfo=EASTERN_DAYLIGHT)
    assert check.completed_at == dt.datetime(2023, 6, 2, 8, 46, 51, tzinfo=EASTERN_DAYLIGHT)
    assert check.created_at == dt.datetime(2023, 6, 2, 12, 31, 20, tzinfo=dt.UTC)
    finding = check.findings.get()
    assert finding.evidence["result_start"] == "2023-06-02T08:31:20-04:00"
    assert finding.evidence["result_end"] == "2023-06-02T08:46:51-04:00"
    assert finding.evidence["related_observations"][0]["collected"] == ("2023-06-02T08:31:20-04:00")


def test_earliest_start_latest_end(tenant, entity, sample):
    def add_result(document):
        results = document["assessment-results"]["results"]
        later = copy.deepcopy(results[0])
        later["uuid"] = "2b8e4ac5-7e4d-4d36-9b35-0a1d2c3e4f50"
        later["start"] = "2023-07-03T10:00:00+02:00"
        later["end"] = "2023-07-03T11:00:00Z"
        later["findings"][0]["uuid"] = "5f3a4c2e-0b1d-4e6f-8a9b-1c2d3e4f5a6b"
        results.append(later)

    result = import_results(tenant, entity, edited(sample, add_result))

    assert result.record_count == 2
    check = Check.objects.get(regulation="SOC2")
    assert check.created_at == dt.datetime(2023, 6, 2, 12, 31, 20, tzinfo=dt.UTC)
    assert check.completed_at == dt.datetime(2023, 7, 3, 11, 0, tzinfo=dt.UTC)
    assert check.findings.count() == 2


def test_time_without_offset_rejected(tenant, entity, sample):
    def drop_offset(document):
        first_result(document)["start"] = "2023-06-02T08:31:20"

    with pytest.raises(ImportFileError, match=r"results\[0\]: start .* has no UTC offset"):
        import_results(tenant, entity, edited(sample, drop_offset))
    assert_nothing_stored()


def test_end_before_start_rejected(tenant, entity, sample):
    def swap(document):
        first_result(document)["end"] = "2023-06-01T08:00:00-04:00"

    with pytest.raises(ImportFileError, match=r"results\[0\]: end .* is before start"):
        import_results(tenant, entity, edited(sample, swap))
    assert_nothing_stored()


# Status, severity and mapping on edited copies of the sample.


def test_satisfied_state_is_pass(tenant, entity, sample):
    def satisfy(document):
        first_finding(document)["target"]["status"]["state"] = "satisfied"

    import_results(tenant, entity, edited(sample, satisfy))

    for finding in Finding.objects.all():
        assert finding.status == "pass"
        assert finding.severity == "low"
    assert set(Check.objects.values_list("status", flat=True)) == {"passed"}


def rate_risk(*facets):
    def change(document):
        risk = first_result(document)["risks"][0]
        risk["characterizations"] = [
            {
                "origin": {"actors": [{"type": "party", "actor-uuid": "e7730080"}]},
                "facets": [
                    {"name": name, "system": "https://ifa.gov/division/ociso/sca", "value": value}
                    for name, value in facets
                ],
            }
        ]

    return change


@pytest.mark.parametrize(
    ("facets", "severity", "source"),
    [
        ([("impact", "very-low")], "low", "related risk impact facet"),
        ([("impact", "low")], "low", "related risk impact facet"),
        ([("impact", "moderate")], "medium", "related risk impact facet"),
        ([("likelihood", "low"), ("impact", "high")], "high", "related risk impact facet"),
        ([("impact", "very-high")], "critical", "related risk impact facet"),
        ([("risk", "moderate"), ("impact", "very-high")], "medium", "related risk risk facet"),
        ([("likelihood", "high")], "medium", "no rated related risk"),
        ([("impact", "catastrophic")], "medium", "no rated related risk"),
    ],
)
def test_risk_facet_severity(tenant, entity, sample, facets, severity, source):
    import_results(tenant, entity, edited(sample, rate_risk(*facets)))

    finding = Finding.objects.get(regulation="SOC2")
    assert finding.severity == severity
    assert finding.evidence["severity_source"] == source
    assert finding.evidence["related_risks"][0]["facets"] == dict(facets)


def test_high_risk_fails_check(tenant, entity, sample):
    import_results(tenant, entity, edited(sample, rate_risk(("impact", "high"))))

    assert set(Check.objects.values_list("status", flat=True)) == {"failed"}


def test_risk_remediation_copied(tenant, entity, sample):
    def add_remediation(document):
        first_result(document)["risks"][0]["remediations"] = [
            {
                "uuid": "d28873f7-0a45-476d-9cd3-1d2ec0b8bca1",
                "lifecycle": "planned",
                "title": "Remove the high-risk actions",
                "description": "Remove the audit log and monitoring actions from the role.",
            }
        ]

    import_results(tenant, entity, edited(sample, add_remediation))

    finding = Finding.objects.get(regulation="SOC2")
    assert finding.remediation == "Remove the audit log and monitoring actions from the role."


@pytest.mark.parametrize(
    ("target_id", "expected"),
    [
        ("ac-6.1_obj", ("AC-6(1)", "AC-6")),
        ("ac-2_smt.a", ("AC-2", "AC-2")),
        ("au-2_obj.a-1", ("AU-2", "AU-2")),
        ("si-4.12_obj.1", ("SI-4(12)", "SI-4")),
        ("AC-2", ("AC-2", "AC-2")),
        ("ac-02", ("AC-2", "AC-2")),
        ("req-1", None),
        ("ac-2x", None),
        ("acme-policy-7", None),
    ],
)
def test_target_id_forms(target_id, expected):
    assert sp800_53_control(target_id) == expected


@pytest.mark.parametrize(
    ("target_id", "regulations"),
    [
        ("au-2_obj", {"SOC2", "ISO27001", "HIPAA", "EU_AI_ACT"}),
        ("ir-6_smt.a", {"SOC2", "ISO27001", "HIPAA", "GDPR", "EU_AI_ACT"}),
        ("ra-3.1_obj", {"SOC2", "HIPAA", "GDPR", "EU_AI_ACT"}),
    ],
)
def test_other_targets_mapped(tenant, entity, sample, target_id, regulations):
    def retarget(document):
        first_finding(document)["target"]["target-id"] = target_id

    import_results(tenant, entity, edited(sample, retarget))

    assert set(Check.objects.values_list("regulation", flat=True)) == regulations


def test_enhancement_row_preferred(tenant, entity, monkeypatch, tmp_path):
    crosswalk = tmp_path / "crosswalk.csv"
    crosswalk.write_text(
        "sp800_53,regulation,control_id\nAC-6,SOC2,CC6.3\nAC-6(1),SOC2,CC6.1\n",
        encoding="utf-8",
    )
    load_bundled = oscal.load_crosswalk
    monkeypatch.setattr(oscal, "load_crosswalk", lambda: load_bundled(crosswalk))

    import_results(tenant, entity, SAMPLE)

    finding = Finding.objects.get()
    assert finding.control_id == "CC6.1"
    assert finding.evidence["crosswalk_control"] == "AC-6(1)"


@pytest.mark.parametrize("target_id", ["pe-3_obj", "acme-policy-7"])
def test_unlisted_target_unmapped(tenant, entity, sample, target_id):
    def retarget(document):
        first_finding(document)["target"]["target-id"] = target_id

    result = import_results(tenant, entity, edited(sample, retarget))

    assert result.record_count == 1
    assert result.unmapped_count == 1
    assert_nothing_stored()


# Repeated imports.


def test_reimport_changes_nothing(tenant, entity):
    first = import_results(tenant, entity, SAMPLE)
    checks_before = set(Check.objects.values_list("id", flat=True))
    findings_before = Finding.objects.count()

    second = import_results(tenant, entity, SAMPLE.read_bytes())

    assert first.already_imported is False
    assert second.already_imported is True
    assert {check.id for check in second.checks} == checks_before
    assert second.finding_count == findings_before
    assert set(Check.objects.values_list("id", flat=True)) == checks_before
    assert Finding.objects.count() == findings_before


# Malformed documents store nothing and name the record.


def second_finding(change):
    """Return a change that adds a copy of the finding, then applies ``change`` to the copy."""

    def add(document):
        findings = first_result(document)["findings"]
        copied = copy.deepcopy(findings[0])
        copied["uuid"] = "0e7a9d8c-6b5a-4f3e-9d2c-1b0a9f8e7d6c"
        findings.append(copied)
        change(copied)

    return add


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda finding: finding["target"]["status"].update(state="other"),
            r"invalid target.status.state 'other'",
        ),
        (lambda finding: finding.pop("target"), r"target: expected a JSON object"),
        (lambda finding: finding["target"].pop("target-id"), r"target: missing target-id"),
        (
            lambda finding: finding["target"].update(type="control-id"),
            r"invalid target type 'control-id'",
        ),
        (lambda finding: finding.pop("uuid"), r"missing uuid"),
        (lambda finding: finding["target"].pop("status"), r"target.status: expected a JSON"),
    ],
    ids=["state", "target", "target-id", "type", "uuid", "status"],
)
def test_bad_finding_names_record(tenant, entity, sample, change, message):
    data = edited(sample, second_finding(change))

    with pytest.raises(ImportFileError) as excinfo:
        import_results(tenant, entity, data)

    assert str(excinfo.value).startswith("OSCAL finding 2 (results[0].findings[1]): ")
    assert re.search(message, str(excinfo.value))
    assert_nothing_stored()


def test_truncated_json_names_position(tenant, entity):
    text = SAMPLE.read_text(encoding="utf-8")

    with pytest.raises(ImportFileError, match=r"^Invalid JSON at line \d+, column \d+"):
        import_results(tenant, entity, text[: len(text) // 2].encode())
    assert_nothing_stored()


def test_document_without_findings_rejected(tenant, entity, sample):
    def drop_findings(document):
        del first_result(document)["findings"]

    with pytest.raises(ImportFileError, match="contain no findings"):
        import_results(tenant, entity, edited(sample, drop_findings))
    assert_nothing_stored()


def test_wrong_root_rejected(tenant, entity):
    with pytest.raises(ImportFileError, match="no assessment-results object"):
        import_results(tenant, entity, b'{"catalog": {}}', format="oscal-ar")
    assert_nothing_stored()


# Format detection and the explicit format.


def test_detect_format_of_sample():
    assert detect_format(SAMPLE.read_bytes()) == "oscal-ar"


def test_detect_format_with_schema_member(sample):
    document = {"$schema": "https://example.org/oscal.json", **sample}

    assert detect_format(json.dumps(document).encode()) == "oscal-ar"


def test_other_oscal_model_not_detected():
    with pytest.raises(ImportFileError, match="Unsupported file format"):
        detect_format(b'{"plan-of-action-and-milestones": {"uuid": "x"}}')


def test_explicit_oscal_format_on_garak_report(tenant, entity):
    with pytest.raises(ImportFileError, match=r"^Invalid JSON at line 2, column 1"):
        import_results(tenant, entity, GARAK_REPORT, format="oscal-ar")
    assert_nothing_stored()


# The import_results command.


def test_command_detects_oscal(tenant, entity, capsys):
    call_command("import_results", str(SAMPLE), "--tenant", "acme", "--entity", str(entity.pk))

    output = capsys.readouterr().out
    assert "(oscal-ar)" in output
    assert "0 of 1 records without a mapped control" in output
    assert Check.objects.filter(source_name="oscal").count() == 4


def test_command_format_option(tenant, entity, capsys):
    arguments = ["import_results", str(SAMPLE), "--tenant", "acme", "--entity", str(entity.pk)]
    call_command(*arguments, "--format", "oscal-ar")
    call_command(*arguments, "--format", "oscal-ar")

    output = capsys.readouterr().out
    assert "was already imported" in output
    assert Check.objects.count() == 4


def test_command_malformed_document(tenant, entity, sample, tmp_path):
    def break_state(document):
        first_finding(document)["target"]["status"]["state"] = "unknown"

    path = tmp_path / "results.json"
    path.write_bytes(edited(sample, break_state))

    with pytest.raises(CommandError, match=r"stored nothing: OSCAL finding 1 .* 'unknown'"):
        call_command("import_results", str(path), "--tenant", "acme", "--entity", str(entity.pk))
    assert_nothing_stored()
