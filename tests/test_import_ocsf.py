"""Importing OCSF Compliance Findings, and skipping invalid records in every importer."""

import datetime as dt
import json
from pathlib import Path

import pytest

from compliance.catalog.models import Regulation, Severity
from compliance.checks.importers import IMPORTERS, ImportFileError, detect_format, import_results
from compliance.checks.importers.base import RecordReader, SkipKind
from compliance.checks.importers.ocsf import regulation_of_standard, resolve_control
from compliance.checks.models import Check, Finding, FindingStatus

REPOSITORY = Path(__file__).resolve().parent.parent
OCSF_DIR = REPOSITORY / "tests" / "data" / "ocsf"
ARRAY = OCSF_DIR / "compliance_findings.json"
LINES = OCSF_DIR / "compliance_findings.jsonl"
BAD_RECORD = OCSF_DIR / "compliance_findings_bad_record.json"
BAD_LINE = OCSF_DIR / "compliance_findings_bad_line.jsonl"
DEMO = REPOSITORY / "compliance" / "demo" / "data"
PROWLER_OCSF = DEMO / "prowler" / "example_output_aws.ocsf.json"
PROWLER_CSV = DEMO / "prowler" / "example_output_azure.csv"
GARAK_REPORT = DEMO / "garak" / "test.report.jsonl"
OSCAL_RESULTS = DEMO / "oscal" / "ifa_assessment-results-example.json"

IMPORTER = IMPORTERS["ocsf-compliance"]

# (regulation, control, finding uid): (status, severity), from the sample file by hand.
EXPECTED_FINDINGS = {
    (Regulation.SOC2, "CC6.1", "aegis-0001"): (FindingStatus.PASS, Severity.LOW),
    (Regulation.SOC2, "CC6.1", "aegis-0002"): (FindingStatus.FAIL, Severity.CRITICAL),
    (Regulation.ISO27001, "A.8.5", "aegis-0002"): (FindingStatus.FAIL, Severity.CRITICAL),
    (Regulation.HIPAA, "164.312(b)", "aegis-0003"): (FindingStatus.FAIL, Severity.HIGH),
    (Regulation.GDPR, "Art. 32", "aegis-0004"): (FindingStatus.NOT_ASSESSED, Severity.MEDIUM),
    (Regulation.EU_AI_ACT, "Annex IV", "aegis-0005"): (
        FindingStatus.NOT_APPLICABLE,
        Severity.LOW,
    ),
    (Regulation.ISO27001, "A.5.24", "aegis-0007"): (FindingStatus.PASS, Severity.MEDIUM),
    (Regulation.SOC2, "A1.2", "aegis-0008"): (FindingStatus.FAIL, Severity.CRITICAL),
}


def finding(**overrides):
    """Return one valid Compliance Finding, with top-level members replaced."""
    item = {
        "class_uid": 2003,
        "time": 1764489600000,
        "severity_id": 4,
        "metadata": {"product": {"name": "Aegis Posture"}},
        "finding_info": {"uid": "f-1", "title": "MFA enforced"},
        "compliance": {"standards": ["SOC 2"], "requirements": ["CC6.1"], "status_id": 3},
    }
    item.update(overrides)
    return item


def compliance(**members):
    return {"standards": ["SOC 2"], "requirements": ["CC6.1"], "status_id": 1, **members}


def parse(items, skip_invalid=False):
    reader = RecordReader(skip_invalid=skip_invalid)
    parsed = IMPORTER.parse(json.dumps(items).encode(), reader)
    return parsed, reader.skipped


def parsed_findings(parsed):
    return {
        (item.regulation, item.control_id, item.finding_id): (item.status, item.severity)
        for item in parsed.findings
    }


# The sample files


def test_sample_array_findings():
    parsed = IMPORTER.parse(ARRAY.read_bytes())

    assert parsed_findings(parsed) == EXPECTED_FINDINGS
    assert parsed.record_count == 7
    assert parsed.source_name == "aegis-posture"
    assert parsed.started_at == dt.datetime(2025, 11, 30, 8, 0, tzinfo=dt.UTC)
    assert parsed.finished_at == dt.datetime(2025, 11, 30, 8, 7, tzinfo=dt.UTC)


def test_sample_lines_match_array():
    from_array = IMPORTER.parse(ARRAY.read_bytes())
    from_lines = IMPORTER.parse(LINES.read_bytes())

    assert parsed_findings(from_lines) == parsed_findings(from_array)
    assert from_lines.started_at == from_array.started_at


def test_unsupported_standard_is_skipped_with_reason():
    reader = RecordReader()
    IMPORTER.parse(ARRAY.read_bytes(), reader)

    [skipped] = reader.skipped
    assert skipped.position == 6
    assert skipped.record == "OCSF record 6 (array index 5)"
    assert skipped.kind == SkipKind.UNSUPPORTED
    assert "CIS AWS Foundations Benchmark v1.4.0" in skipped.reason


def test_sample_evidence_keeps_source_fields():
    parsed = IMPORTER.parse(ARRAY.read_bytes())
    hipaa = next(item for item in parsed.findings if item.regulation == Regulation.HIPAA)

    assert hipaa.title == "Access to ePHI is logged"
    assert hipaa.description == "CloudTrail data events are off for the claims bucket."
    assert hipaa.evidence["standards"] == ["HIPAA Security Rule"]
    assert hipaa.evidence["resources"] == [
        {"uid": "arn:aws:s3:::claims-archive", "name": "claims-archive"}
    ]
    assert hipaa.evidence["record"] == "OCSF record 3 (array index 2)"
    root = next(item for item in parsed.findings if item.finding_id == "aegis-0002")
    assert root.remediation == "Enable a hardware MFA device for the root user."


def test_mixed_standards_keep_unresolved_requirements():
    parsed = IMPORTER.parse(ARRAY.read_bytes())
    [backup] = [item for item in parsed.findings if item.finding_id == "aegis-0008"]

    assert backup.evidence["unresolved_requirements"] == ["12.10.1"]


# Detection


def test_detects_array_and_lines():
    assert detect_format(ARRAY.read_bytes()) == "ocsf-compliance"
    assert detect_format(LINES.read_bytes()) == "ocsf-compliance"


def test_prowler_ocsf_still_detected_as_prowler():
    assert detect_format(PROWLER_OCSF.read_bytes()) == "prowler-ocsf"


def test_detection_ignores_other_classes():
    assert not IMPORTER.detect(json.dumps([finding(class_uid=2004)]).encode())
    assert not IMPORTER.detect(json.dumps([finding(class_uid=20030)]).encode())


# Mapping tables


@pytest.mark.parametrize(
    ("standard", "regulation"),
    [
        ("SOC 2", Regulation.SOC2),
        ("AICPA SOC 2 Type II", Regulation.SOC2),
        ("Trust Services Criteria", Regulation.SOC2),
        ("ISO/IEC 27001:2022", Regulation.ISO27001),
        ("iso-27001", Regulation.ISO27001),
        ("ISO 27001:2022 Annex A", Regulation.ISO27001),
        ("ISO 27001 Annex A", Regulation.ISO27001),
        ("ISO/IEC 27001:2013", None),
        ("HIPAA Security Rule", Regulation.HIPAA),
        ("45 CFR 164", Regulation.HIPAA),
        ("EU GDPR", Regulation.GDPR),
        ("Regulation (EU) 2016/679", Regulation.GDPR),
        ("EU AI Act", Regulation.EU_AI_ACT),
        ("Regulation (EU) 2024/1689", Regulation.EU_AI_ACT),
        ("PCI DSS 4.0", None),
        ("NIST SP 800-53 Rev. 5", None),
    ],
)
def test_standard_mapping(standard, regulation):
    assert regulation_of_standard(standard) == regulation


@pytest.mark.parametrize(
    ("regulation", "text", "control"),
    [
        (Regulation.SOC2, "cc_6_1", "CC6.1"),
        (Regulation.SOC2, "CC 6.1 - Logical access", "CC6.1"),
        (
            Regulation.HIPAA,
            "HIPAA Security Rule 164.312(a)(2)(iv) - Encryption",
            "164.312(a)(2)(iv)",
        ),
        (Regulation.GDPR, "GDPR Art. 32 - Security of processing", "Art. 32"),
        (Regulation.GDPR, "Article 5(1)(f)", "Art. 5"),
        (Regulation.GDPR, "Ensure 2 accounts exist", None),
        (Regulation.ISO27001, "8.28", "A.8.28"),
        (Regulation.ISO27001, "A.9.1", None),
    ],
)
def test_control_resolution(regulation, text, control):
    assert resolve_control(regulation, text) == control


@pytest.mark.parametrize(
    ("members", "status"),
    [
        ({"status_id": 1}, FindingStatus.PASS),
        ({"status_id": 3}, FindingStatus.FAIL),
        ({"status_id": 2}, FindingStatus.NOT_ASSESSED),
        ({"status_id": 0}, FindingStatus.NOT_ASSESSED),
        ({"status_id": 99, "status": "Not applicable"}, FindingStatus.NOT_APPLICABLE),
        ({"status_id": None, "status": "FAILED"}, FindingStatus.FAIL),
        ({"status_id": 1, "status": "Fail"}, FindingStatus.PASS),
    ],
)
def test_status_mapping(members, status):
    members = {key: value for key, value in members.items() if value is not None}
    item = finding(compliance={"standards": ["SOC 2"], "requirements": ["CC6.1"], **members})

    parsed, _ = parse([item])

    assert parsed.findings[0].status == status


@pytest.mark.parametrize(
    ("members", "severity"),
    [
        ({"severity_id": 0}, Severity.MEDIUM),
        ({"severity_id": 1}, Severity.LOW),
        ({"severity_id": 2}, Severity.LOW),
        ({"severity_id": 3}, Severity.MEDIUM),
        ({"severity_id": 4}, Severity.HIGH),
        ({"severity_id": 5}, Severity.CRITICAL),
        ({"severity_id": 6}, Severity.CRITICAL),
        ({"severity_id": 99, "severity": "High"}, Severity.HIGH),
        ({"severity_id": None, "severity": "informational"}, Severity.LOW),
    ],
)
def test_severity_mapping(members, severity):
    item = finding(**members)
    if item["severity_id"] is None:
        del item["severity_id"]

    parsed, _ = parse([item])

    assert parsed.findings[0].severity == severity


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ({"time": 1764489600000}, dt.datetime(2025, 11, 30, 8, 0, tzinfo=dt.UTC)),
        ({"time": 1764489600}, dt.datetime(2025, 11, 30, 8, 0, tzinfo=dt.UTC)),
        (
            {"time": 1, "time_dt": "2025-11-30T09:00:00+01:00"},
            dt.datetime(2025, 11, 30, 8, 0, tzinfo=dt.UTC),
        ),
        ({"time_dt": "2025-11-30T08:00:00"}, dt.datetime(2025, 11, 30, 8, 0, tzinfo=dt.UTC)),
    ],
)
def test_time_forms(members, expected):
    parsed, _ = parse([finding(**members)])

    assert parsed.started_at == expected


def test_control_member_is_read():
    item = finding(compliance=compliance(requirements=None, control="Annex IV"))
    item["compliance"]["standards"] = ["EU AI Act"]
    del item["compliance"]["requirements"]

    parsed, _ = parse([item])

    assert [(f.regulation, f.control_id) for f in parsed.findings] == [
        (Regulation.EU_AI_ACT, "Annex IV")
    ]


# Invalid records


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (finding(class_uid=2004), "class_uid 2004 is not a Compliance Finding (2003)"),
        (finding(compliance=None), "missing compliance object"),
        (finding(compliance=compliance(standards=[])), "missing compliance.standards"),
        (finding(compliance=compliance(standards="SOC 2")), "is not an array of strings"),
        (finding(compliance=compliance(requirements=["CC9.9"])), "no requirement names a SOC 2"),
        (finding(compliance=compliance(status_id=4)), "invalid compliance.status_id 4"),
        (finding(compliance=compliance(status_id=99)), "missing compliance status"),
        (finding(severity_id=7), "invalid severity_id 7"),
        (finding(severity_id=True), "invalid severity_id True"),
        (finding(finding_info={"title": "x"}), "missing finding_info.uid"),
        (finding(time="yesterday"), "invalid time 'yesterday'"),
        (finding(time_dt="soon"), "invalid time_dt 'soon'"),
        ("not an object", "expected a JSON object"),
    ],
)
def test_invalid_record_names_it(item, message):
    with pytest.raises(ImportFileError) as raised:
        parse([finding(), item])

    assert str(raised.value).startswith("OCSF record 2 (array index 1): ")
    assert message in str(raised.value)


def test_invalid_record_skipped_with_option():
    parsed, skipped = parse([finding(), finding(severity_id=7), finding()], skip_invalid=True)

    assert parsed.record_count == 2
    [record] = skipped
    assert record.position == 2
    assert record.record == "OCSF record 2 (array index 1)"
    assert record.kind == SkipKind.INVALID
    assert record.reason.startswith("invalid severity_id 7.")


def test_broken_array_rejects_even_with_option():
    data = json.dumps([finding(), finding()]).encode()[:-30]

    with pytest.raises(ImportFileError, match=r"^The file is not valid JSON: line 1, column"):
        IMPORTER.parse(data, RecordReader(skip_invalid=True))


def test_array_syntax_error_names_file_position():
    lines = json.dumps([finding()], indent=2).splitlines()
    lines[5] = lines[5] + " { ,,"
    data = "\n".join(lines).encode()

    with pytest.raises(ImportFileError) as raised:
        IMPORTER.parse(data)

    message = str(raised.value)
    assert message.startswith("The file is not valid JSON: line 6, column ")
    assert "OCSF record" not in message
    assert "array index" not in message


def test_missing_comma_names_file_position():
    record = json.dumps(finding())
    data = f"[\n{record}\n{record}]".encode()

    with pytest.raises(ImportFileError) as raised:
        IMPORTER.parse(data)

    message = str(raised.value)
    assert message.startswith("The file is not valid JSON: line 3, column 1: expected ',' or ']'")
    assert "after OCSF record 1 (array index 0)" in message


def test_json_lines_syntax_error_names_record():
    data = json.dumps(finding()).encode() + b"\n{ ,,\n"

    expected = r"^OCSF record 2 \(line 2\): invalid JSON at column 3"
    with pytest.raises(ImportFileError, match=expected):
        IMPORTER.parse(data)


def test_invalid_json_line_skipped_with_option():
    reader = RecordReader(skip_invalid=True)

    parsed = IMPORTER.parse(BAD_LINE.read_bytes(), reader)

    assert parsed.record_count == 3
    [record] = reader.skipped
    assert record.record == "OCSF record 2 (line 2)"
    assert record.reason.startswith("invalid JSON")


def test_every_record_invalid_is_rejected():
    with pytest.raises(ImportFileError, match="No record could be imported, and 2 records"):
        parse([finding(severity_id=7), finding(time=None)], skip_invalid=True)


def test_only_unsupported_standards_is_rejected():
    item = finding(compliance=compliance(standards=["PCI DSS 4.0"]))

    with pytest.raises(ImportFileError, match="none of its standards"):
        parse([item])


def test_empty_file_is_rejected():
    with pytest.raises(ImportFileError, match="contains no Compliance Findings"):
        IMPORTER.parse(b"[]")


# Storing, through import_results


@pytest.mark.django_db
def test_import_stores_checks_per_regulation(tenant, entity):
    result = import_results(tenant, entity, ARRAY)

    assert result.format == "ocsf-compliance"
    assert result.finding_count == len(EXPECTED_FINDINGS)
    assert sorted(check.regulation for check in result.checks) == sorted(
        {regulation for regulation, _, _ in EXPECTED_FINDINGS}
    )
    assert result.skipped_count == 1
    soc2 = Check.objects.get(entity=entity, regulation=Regulation.SOC2)
    assert soc2.source_name == "aegis-posture"
    assert soc2.status == "failed"


@pytest.mark.django_db
def test_bad_record_stores_nothing_without_option(tenant, entity):
    with pytest.raises(ImportFileError, match=r"OCSF record 3 \(array index 2\): invalid severity"):
        import_results(tenant, entity, BAD_RECORD)

    assert not Check.objects.exists()


@pytest.mark.django_db
def test_bad_record_skipped_and_reimport_is_noop(tenant, entity):
    first = import_results(tenant, entity, BAD_RECORD, skip_invalid=True)
    second = import_results(tenant, entity, BAD_RECORD, skip_invalid=True)

    assert first.already_imported is False
    assert [(s.position, s.record) for s in first.skipped] == [(3, "OCSF record 3 (array index 2)")]
    assert first.finding_count == 4
    assert second.already_imported is True
    assert second.skipped_count == 1
    assert Finding.objects.count() == 4


# The option in the other importers, through the shared reader


def replace_line(path, number, text):
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[number - 1] = text
    return "\n".join(lines).encode()


@pytest.mark.django_db
def test_prowler_csv_bad_row_skipped(tenant, entity):
    data = replace_line(PROWLER_CSV, 3, "only;three;fields")

    with pytest.raises(ImportFileError, match=r"CSV row 2 \(line 3\): has 3 fields"):
        import_results(tenant, entity, data)
    result = import_results(tenant, entity, data, skip_invalid=True)

    assert [(s.position, s.record) for s in result.skipped] == [(2, "CSV row 2 (line 3)")]
    assert result.record_count == 3
    assert result.checks


@pytest.mark.django_db
def test_prowler_ocsf_bad_record_skipped(tenant, entity):
    items = json.loads(PROWLER_OCSF.read_text(encoding="utf-8"))
    items[1]["status_code"] = "MAYBE"
    data = json.dumps(items).encode()

    result = import_results(tenant, entity, data, skip_invalid=True)

    [skipped] = result.skipped
    assert skipped.record == "OCSF record 2 (array index 1)"
    assert "invalid status_code 'MAYBE'" in skipped.reason
    assert result.record_count == len(items) - 1


@pytest.mark.django_db
def test_garak_bad_line_skipped(tenant, entity):
    data = GARAK_REPORT.read_text(encoding="utf-8").rstrip("\n")
    data += '\n{"entry_type": "eval", "probe": "x"}\nnot json\n'
    total_lines = data.count("\n")

    with pytest.raises(ImportFileError, match=f"Line {total_lines - 1}: missing detector"):
        import_results(tenant, entity, data.encode())
    result = import_results(tenant, entity, data.encode(), skip_invalid=True)

    assert [(s.position, s.record) for s in result.skipped] == [
        (total_lines - 1, f"Line {total_lines - 1}"),
        (total_lines, f"Line {total_lines}"),
    ]
    assert result.skipped[1].reason.startswith("invalid JSON")
    assert result.record_count == 1


@pytest.mark.django_db
def test_oscal_bad_finding_skipped(tenant, entity):
    document = json.loads(OSCAL_RESULTS.read_text(encoding="utf-8"))
    findings = document["assessment-results"]["results"][0]["findings"]
    broken = json.loads(json.dumps(findings[0]))
    broken["target"]["status"]["state"] = "unknown"
    findings.insert(0, broken)
    data = json.dumps(document).encode()

    with pytest.raises(ImportFileError, match=r"OSCAL finding 1 \(results\[0\]\.findings\[0\]\)"):
        import_results(tenant, entity, data)
    result = import_results(tenant, entity, data, skip_invalid=True)

    [skipped] = result.skipped
    assert skipped.position == 1
    assert "invalid target.status.state 'unknown'" in skipped.reason
    assert result.record_count == len(findings) - 1
