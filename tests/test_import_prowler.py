"""Importing Prowler OCSF JSON and CSV output as checks and findings per control."""

import csv
import datetime as dt
import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from compliance.catalog.canonical import canonical_control_id
from compliance.catalog.models import Control
from compliance.checks.importers import ImportFileError, detect_format, import_results
from compliance.checks.models import Check, CheckSource, CheckStatus, Finding
from compliance.inventory.models import Entity, EntityType
from compliance.tenancy.models import Tenant

REPOSITORY = Path(__file__).resolve().parent.parent
SAMPLES_DIR = REPOSITORY / "compliance" / "demo" / "data" / "prowler"
MAPPINGS_DIR = REPOSITORY / "compliance" / "checks" / "importers" / "prowler_mappings"
AZURE_CSV = SAMPLES_DIR / "example_output_azure.csv"
AWS_CSV = SAMPLES_DIR / "example_output_aws.csv"
AZURE_OCSF = SAMPLES_DIR / "example_output_azure.ocsf.json"
AWS_OCSF = SAMPLES_DIR / "example_output_aws.ocsf.json"

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant():
    return Tenant.objects.create(slug="acme", name="Acme Health", time_zone="Europe/Berlin")


@pytest.fixture
def entity(tenant):
    return Entity.objects.create(tenant=tenant, entity_type=EntityType.AGENT, name="Claims agent")


# Expected values, computed from the mapping files and samples without the importer.


def mapped_controls():
    """Return ``{(provider, check id): {(regulation, canonical control ID)}}``."""
    controls = {}
    for path in MAPPINGS_DIR.glob("*.json"):
        mapping = json.loads(path.read_text(encoding="utf-8"))
        regulation = mapping["Framework"]
        provider = mapping["Provider"].lower()
        for requirement in mapping["Requirements"]:
            control_id = canonical_control_id(regulation, requirement["Id"])
            for check_id in requirement["Checks"]:
                controls.setdefault((provider, check_id), set()).add((regulation, control_id))
    return controls


def csv_records(path):
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    return [
        (row["PROVIDER"], row["CHECK_ID"], row["STATUS"], row["SEVERITY"].lower()) for row in rows
    ]


def ocsf_records(path):
    items = json.loads(path.read_text(encoding="utf-8"))
    return [
        (
            item["cloud"]["provider"],
            item["metadata"]["event_code"],
            item["status_code"],
            item["severity"].lower(),
        )
        for item in items
    ]


def expected_outcome(records):
    """Return expected finding counts, control IDs and check status per regulation."""
    controls = mapped_controls()
    counts = Counter()
    control_ids = {}
    worst = {}
    for provider, check_id, status, severity in records:
        for regulation, control_id in controls.get((provider, check_id), ()):
            counts[regulation] += 1
            control_ids.setdefault(regulation, set()).add(control_id)
            if status == "FAIL":
                high = severity in {"high", "critical"}
                previous = worst.get(regulation)
                worst[regulation] = "failed" if high or previous == "failed" else "partial"
    statuses = {regulation: worst.get(regulation, "passed") for regulation in counts}
    return counts, control_ids, statuses


def stored_counts(tenant):
    return Counter(Finding.objects.filter(tenant=tenant).values_list("regulation", flat=True))


# Counts, IDs and columns of the real samples.


@pytest.mark.parametrize(
    ("path", "records"),
    [
        (AZURE_CSV, csv_records),
        (AWS_CSV, csv_records),
        (AZURE_OCSF, ocsf_records),
        (AWS_OCSF, ocsf_records),
    ],
    ids=["azure-csv", "aws-csv", "azure-ocsf", "aws-ocsf"],
)
def test_sample_counts_match_mappings(tenant, entity, path, records):
    expected_counts, expected_ids, expected_statuses = expected_outcome(records(path))

    result = import_results(tenant, entity, path)

    assert not result.already_imported
    assert stored_counts(tenant) == expected_counts
    assert result.finding_count == sum(expected_counts.values())
    checks = Check.objects.filter(tenant=tenant)
    assert sorted(checks.values_list("regulation", flat=True)) == sorted(expected_counts)
    for check in checks:
        control_ids = set(check.findings.values_list("control_id", flat=True))
        assert control_ids == expected_ids[check.regulation]
        assert check.status == expected_statuses[check.regulation]


def test_azure_csv_expected_numbers(tenant, entity):
    result = import_results(tenant, entity, AZURE_CSV)

    assert result.record_count == 4
    assert result.unmapped_count == 0
    assert stored_counts(tenant) == {"HIPAA": 6, "ISO27001": 7, "SOC2": 2}
    assert Check.objects.get(regulation="SOC2").status == CheckStatus.FAILED


def test_aws_ocsf_counts_unmapped_record(tenant, entity):
    result = import_results(tenant, entity, AWS_OCSF)

    assert result.record_count == 5
    assert result.unmapped_count == 1
    assert stored_counts(tenant) == {"ISO27001": 4}


def test_azure_csv_canonical_control_ids(tenant, entity):
    import_results(tenant, entity, AZURE_CSV)

    hipaa = set(Finding.objects.filter(regulation="HIPAA").values_list("control_id", flat=True))
    assert hipaa == {
        "164.308(a)(4)(ii)(B)",
        "164.308(a)(1)(ii)(B)",
        "164.310(a)(1)",
        "164.312(a)(1)",
    }
    soc2 = set(Finding.objects.filter(regulation="SOC2").values_list("control_id", flat=True))
    assert soc2 == {"CC3.3", "CC6.1"}
    catalog = set(Control.objects.values_list("regulation", "control_id"))
    for regulation, control_id in Finding.objects.values_list("regulation", "control_id"):
        assert (regulation, control_id) in catalog


def test_check_columns_from_csv(tenant, entity):
    data = AZURE_CSV.read_bytes()

    import_results(tenant, entity, data)

    scan_time = dt.datetime(2025, 2, 14, 14, 27, 30, 710664, tzinfo=dt.UTC)
    for check in Check.objects.all():
        assert check.source == CheckSource.IMPORTED
        assert check.source_name == "prowler"
        assert check.source_digest == hashlib.sha256(data).hexdigest()
        assert check.created_at == scan_time
        assert check.completed_at == scan_time
        assert check.is_demo is False
        assert check.scope == {"format": "prowler-csv", "providers": ["azure"]}


def test_finding_columns_denormalised(tenant, entity):
    import_results(tenant, entity, AZURE_OCSF)

    scan_time = dt.datetime.fromtimestamp(1739539650, tz=dt.UTC)
    findings = list(Finding.objects.select_related("compliance_check"))
    assert findings
    for finding in findings:
        assert finding.tenant_id == tenant.pk
        assert finding.entity_id == entity.pk
        assert finding.regulation == finding.compliance_check.regulation
        assert finding.observed_at == finding.compliance_check.created_at
        assert finding.observed_at == scan_time


def test_finding_fields_from_ocsf(tenant, entity):
    import_results(tenant, entity, AZURE_OCSF)

    finding = Finding.objects.get(regulation="HIPAA", control_id="164.312(b)")
    assert finding.status == "fail"
    assert finding.severity == "low"
    assert finding.title == "Ensure Application Insights are Configured."
    assert finding.description.startswith("There are no AppInsight configured")
    assert finding.remediation.startswith("1. Navigate to Application Insights")
    assert finding.evidence["prowler_check_id"] == "appinsights_ensure_is_configured"
    assert finding.evidence["resource_uid"] == "AppInsights"
    assert finding.evidence["resource_name"] == "AppInsights"
    assert finding.evidence["region"] == "global"
    assert finding.evidence["status_extended"] == finding.description
    assert finding.evidence["muted"] is False


def test_manual_status_is_not_assessed(tenant, entity):
    import_results(tenant, entity, AWS_CSV)

    manual = Finding.objects.filter(
        evidence__prowler_check_id="account_maintain_current_contact_details"
    )
    assert manual.count() == 1
    assert manual.get().status == "not_assessed"


# Status, severity and muting conversions on edited copies of a sample.


def edited_csv(**changes):
    """Return the Azure CSV sample with columns of its first data row replaced."""
    with open(AZURE_CSV, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter=";")
        header = reader.fieldnames
        rows = list(reader)
    rows[0].update(changes)
    lines = [";".join(header)] + [";".join(row[column] for column in header) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def test_informational_severity_becomes_low(tenant, entity):
    data = edited_csv(SEVERITY="informational", STATUS="FAIL")

    import_results(tenant, entity, data)

    finding = Finding.objects.get(evidence__prowler_check_id="aks_cluster_rbac_enabled")
    assert finding.severity == "low"
    assert finding.status == "fail"


def test_muted_finding_keeps_status(tenant, entity):
    data = edited_csv(MUTED="True", STATUS="FAIL", SEVERITY="critical")

    import_results(tenant, entity, data)

    finding = Finding.objects.get(evidence__prowler_check_id="aks_cluster_rbac_enabled")
    assert finding.status == "fail"
    assert finding.severity == "critical"
    assert finding.evidence["muted"] is True
    assert Check.objects.get(regulation="HIPAA").status == CheckStatus.FAILED


def test_muted_ocsf_finding_recorded(tenant, entity):
    items = json.loads(AZURE_OCSF.read_text(encoding="utf-8"))
    items[0]["status"] = "Suppressed"
    items[0]["status_id"] = 3

    import_results(tenant, entity, json.dumps(items).encode())

    first = Finding.objects.filter(evidence__prowler_check_id="appinsights_ensure_is_configured")
    assert first.count() == 2
    assert all(finding.evidence["muted"] is True for finding in first)
    assert all(finding.status == "fail" for finding in first)


def test_csv_timestamp_read_as_utc(tenant, entity):
    data = edited_csv(TIMESTAMP="2025-03-01 08:00:00")

    import_results(tenant, entity, data)

    check = Check.objects.get(regulation="HIPAA")
    assert check.created_at == dt.datetime(2025, 2, 14, 14, 27, 30, 710664, tzinfo=dt.UTC)
    assert check.completed_at == dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)


# Repeated imports.


def test_reimport_changes_nothing(tenant, entity):
    first = import_results(tenant, entity, AZURE_CSV)
    checks_before = set(Check.objects.values_list("id", flat=True))
    findings_before = Finding.objects.count()

    second = import_results(tenant, entity, AZURE_CSV.read_bytes())

    assert first.already_imported is False
    assert second.already_imported is True
    assert {check.id for check in second.checks} == checks_before
    assert second.finding_count == findings_before
    assert set(Check.objects.values_list("id", flat=True)) == checks_before
    assert Finding.objects.count() == findings_before


def test_same_file_other_entity_imported(tenant, entity):
    other = Entity.objects.create(tenant=tenant, entity_type=EntityType.MODEL, name="Risk model")
    import_results(tenant, entity, AZURE_CSV)

    result = import_results(tenant, other, AZURE_CSV)

    assert result.already_imported is False
    assert Check.objects.filter(entity=other).count() == 3


def test_entity_of_other_tenant_rejected(tenant):
    other_tenant = Tenant.objects.create(slug="other", name="Other")
    foreign = Entity.objects.create(tenant=other_tenant, entity_type=EntityType.MODEL, name="M")

    with pytest.raises(ValueError, match="does not belong to tenant 'acme'"):
        import_results(tenant, foreign, AZURE_CSV)
    assert Check.objects.count() == 0


# Malformed files store nothing and name the record.


def assert_nothing_stored():
    assert Check.objects.count() == 0
    assert Finding.objects.count() == 0


def test_bad_status_names_row(tenant, entity):
    lines = AZURE_CSV.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace(";FAIL;", ";BROKEN;", 1)

    with pytest.raises(ImportFileError) as excinfo:
        import_results(tenant, entity, ("\n".join(lines) + "\n").encode())

    assert "CSV row 3 (line 4)" in str(excinfo.value)
    assert "invalid STATUS 'BROKEN'" in str(excinfo.value)
    assert_nothing_stored()


def test_bad_severity_names_row(tenant, entity):
    with pytest.raises(ImportFileError, match=r"CSV row 1 \(line 2\): invalid SEVERITY 'severe'"):
        import_results(tenant, entity, edited_csv(SEVERITY="severe"))
    assert_nothing_stored()


def test_short_csv_row_names_row(tenant, entity):
    text = AZURE_CSV.read_text(encoding="utf-8")
    lines = text.splitlines()
    lines.append("<auth_method>;2025-02-14 14:27:30;x;y")

    with pytest.raises(ImportFileError, match=r"CSV row 5 \(line 6\): has 4 fields but the header"):
        import_results(tenant, entity, "\n".join(lines).encode())
    assert_nothing_stored()


def test_truncated_json_is_invalid_json(tenant, entity):
    data = AZURE_OCSF.read_bytes()
    items = json.loads(data)
    end_of_third = len(json.dumps(items[:3], indent=2)) - 2

    truncated = json.dumps(items, indent=2)[: end_of_third + 200].encode()

    with pytest.raises(ImportFileError, match=r"^The file is not valid JSON: line \d+, column"):
        import_results(tenant, entity, truncated)
    assert_nothing_stored()


def test_unclosed_json_array_rejected(tenant, entity):
    text = AZURE_OCSF.read_text(encoding="utf-8").rstrip()
    assert text.endswith("]")

    with pytest.raises(ImportFileError, match=r"ends after OCSF record 5 .* truncated"):
        import_results(tenant, entity, text[:-1].encode())
    assert_nothing_stored()


def test_wrong_class_names_record(tenant, entity):
    items = json.loads(AZURE_OCSF.read_text(encoding="utf-8"))
    items[1]["class_uid"] = 2003

    with pytest.raises(ImportFileError, match=r"OCSF record 2 \(array index 1\): class_uid 2003"):
        import_results(tenant, entity, json.dumps(items).encode())
    assert_nothing_stored()


def test_missing_check_id_names_record(tenant, entity):
    items = json.loads(AZURE_OCSF.read_text(encoding="utf-8"))
    del items[4]["metadata"]["event_code"]

    with pytest.raises(ImportFileError, match=r"OCSF record 5 .*: missing metadata.event_code"):
        import_results(tenant, entity, json.dumps(items).encode())
    assert_nothing_stored()


def test_failed_write_stores_nothing(tenant, entity, monkeypatch):
    def fail_bulk_create(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Finding.objects, "bulk_create", fail_bulk_create)

    with pytest.raises(RuntimeError, match="disk full"):
        import_results(tenant, entity, AZURE_CSV)
    assert Check.objects.count() == 0


# Format detection and the explicit format.


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (AZURE_CSV, "prowler-csv"),
        (AWS_CSV, "prowler-csv"),
        (AZURE_OCSF, "prowler-ocsf"),
        (AWS_OCSF, "prowler-ocsf"),
    ],
)
def test_detect_format_of_samples(path, expected):
    assert detect_format(path.read_bytes()) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"hello world",
        b'{"class_uid": 2004}',
        b"CHECK_ID,STATUS\nx,PASS\n",
    ],
)
def test_detect_format_lists_supported(data):
    with pytest.raises(ImportFileError) as excinfo:
        detect_format(data)
    message = str(excinfo.value)
    assert "Unsupported file format" in message
    assert "prowler-ocsf" in message
    assert "prowler-csv" in message


def test_detect_format_rejects_empty():
    with pytest.raises(ImportFileError, match="The file is empty"):
        detect_format(b"  \n")


@pytest.mark.parametrize("data", [b"[]", b" [ \n ] \n", b"\xef\xbb\xbf[]"])
def test_detect_format_rejects_empty_array(data):
    with pytest.raises(ImportFileError, match=r"^The file contains no records"):
        detect_format(data)


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        ('[{"class_uid": 2004}]'.encode("utf-16"), "UTF-16"),
        ("CHECK_ID;STATUS\nx;PASS\n".encode("utf-16-be").join([b"\xfe\xff", b""]), "UTF-16"),
        ('[{"class_uid": 2004}]'.encode("utf-32"), "UTF-32"),
    ],
)
def test_detect_format_names_utf16(data, encoding):
    with pytest.raises(ImportFileError) as excinfo:
        detect_format(data)
    message = str(excinfo.value)
    assert message.startswith(f"The file is {encoding}, but imports must be UTF-8.")
    assert "Save it as UTF-8" in message
    assert "Unsupported file format" not in message


def test_explicit_format_names_utf16(tenant, entity):
    data = AZURE_OCSF.read_text(encoding="utf-8").encode("utf-16")

    with pytest.raises(ImportFileError, match=r"^The file is UTF-16, but imports must be UTF-8"):
        import_results(tenant, entity, data, format="prowler-ocsf")
    assert_nothing_stored()


def test_explicit_format_overrides_detection(tenant, entity):
    with pytest.raises(ImportFileError, match="CSV header is missing the Prowler column"):
        import_results(tenant, entity, AZURE_OCSF, format="prowler-csv")
    assert_nothing_stored()


def test_explicit_format_reads_undetectable_file(tenant, entity):
    broken = b'[{"message": "cut off'

    with pytest.raises(ImportFileError, match="Unsupported file format"):
        import_results(tenant, entity, broken)
    with pytest.raises(ImportFileError, match=r"^The file is not valid JSON: line 1, column 14"):
        import_results(tenant, entity, broken, format="prowler-ocsf")
    assert_nothing_stored()


def test_unknown_format_rejected(tenant, entity):
    with pytest.raises(ImportFileError, match="Unknown import format 'nessus'"):
        import_results(tenant, entity, AZURE_CSV, format="nessus")
