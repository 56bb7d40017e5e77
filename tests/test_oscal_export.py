"""OSCAL assessment results exports of checks and reports.

Every exported document is validated against NIST's JSON schema for OSCAL
assessment results (``tests/data/oscal``). The schema's patterns use
Unicode property classes such as ``\\p{L}``, which Python's ``re`` rejects,
so the validator checks ``pattern`` with the ``regex`` package instead of
skipping it.
"""

import datetime as dt
import json
import uuid
from pathlib import Path

import jsonschema
import pytest
import regex
from django.urls import reverse
from django.utils import timezone

from compliance.audit.models import AuditAction, AuditEvent
from compliance.catalog.models import Severity
from compliance.checks.importers import import_results
from compliance.checks.models import Check, Finding, FindingStatus
from compliance.inventory.models import Entity, EntityType
from compliance.reports import oscal
from compliance.reports.models import ReportStatus
from compliance.reports.services import request_report
from compliance.tenancy.models import Role
from tests.conftest import make_check

SCHEMA_FILE = (
    Path(__file__).resolve().parent / "data" / "oscal" / ("oscal_assessment-results_schema.json")
)


def regex_pattern(validator, pattern, instance, schema):
    """Check JSON Schema ``pattern`` with the ``regex`` package, which supports ``\\p{L}``."""
    if validator.is_type(instance, "string") and not regex.search(pattern, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


OscalValidator = jsonschema.validators.extend(
    jsonschema.Draft7Validator, {"pattern": regex_pattern}
)


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return OscalValidator(schema)


def schema_errors(validator, document):
    return [
        f"{'/'.join(str(part) for part in error.absolute_path)}: {error.message}"
        for error in validator.iter_errors(document)
    ]


@pytest.fixture
def auditor_key(tenant, issue_key):
    return issue_key(tenant, role=Role.AUDITOR)


def api_get(client, key, path):
    return client.get(path, headers={"X-API-Key": key})


def check_path(check):
    return reverse("api:check-oscal", kwargs={"check_id": check.pk})


def report_path(report):
    return reverse("api:report-oscal", kwargs={"report_id": report.public_id})


@pytest.fixture
def copy_entity(tenant):
    """A second entity of the same tenant that receives the re-imported export."""
    return Entity.objects.create(tenant=tenant, entity_type=EntityType.MODEL, name="Imported copy")


@pytest.fixture
def gdpr_check(entity):
    when = timezone.now().replace(microsecond=0) - dt.timedelta(hours=3)
    return make_check(
        entity,
        "GDPR",
        when,
        [
            ("Art. 32", FindingStatus.FAIL, Severity.HIGH),
            ("Art. 25", FindingStatus.PASS, Severity.MEDIUM),
            ("Art. 30", FindingStatus.NOT_ASSESSED, Severity.LOW),
        ],
    )


@pytest.fixture
def hipaa_report(tenant, entity):
    now = timezone.now().replace(microsecond=0)
    make_check(
        entity,
        "HIPAA",
        now - dt.timedelta(days=2),
        [
            ("164.308(a)(1)(ii)(A)", FindingStatus.PASS, Severity.HIGH),
            ("164.312(a)(2)(iv)", FindingStatus.FAIL, Severity.CRITICAL),
            ("164.312(b)", FindingStatus.NOT_APPLICABLE, Severity.LOW),
        ],
    )
    today = tenant.today()
    report = request_report(
        tenant=tenant,
        entity=entity,
        regulation="HIPAA",
        period_start=today - dt.timedelta(days=6),
        period_end=today,
    )
    assert report.status == ReportStatus.READY, report.error
    return report


def results_of(document):
    return document["assessment-results"]["results"][0]


def findings_by_control(document):
    found = {}
    for finding in results_of(document).get("findings", []):
        props = {prop["name"]: prop["value"] for prop in finding["target"]["props"]}
        found[props["control-id"]] = finding
    return found


def all_uuids(value):
    """Yield every string under a ``uuid`` key of ``value``."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "uuid":
                yield item
            else:
                yield from all_uuids(item)
    elif isinstance(value, list):
        for item in value:
            yield from all_uuids(item)


# The validator itself


def test_validator_checks_unicode_patterns(validator):
    schema_token = {"$ref": "#/definitions/TokenDatatype"}
    token_validator = OscalValidator(
        {**schema_token, "definitions": validator.schema["definitions"]}
    )
    assert token_validator.is_valid("gdpr_art-32")
    assert token_validator.is_valid("régime_1")
    assert not token_validator.is_valid("Art. 32")
    assert not token_validator.is_valid("164.312(b)")


def test_validator_rejects_broken_document(validator, gdpr_check):
    document = oscal.check_assessment_results(gdpr_check)
    results_of(document)["findings"][0]["target"]["target-id"] = "Art. 32"
    errors = schema_errors(validator, document)
    assert any("target-id" in error for error in errors), errors


# Check export


@pytest.mark.django_db
def test_check_export_matches_schema(validator, gdpr_check):
    document = oscal.check_assessment_results(gdpr_check)
    assert schema_errors(validator, document) == []


@pytest.mark.django_db
def test_check_export_states(gdpr_check):
    document = oscal.check_assessment_results(gdpr_check)
    findings = findings_by_control(document)
    assert set(findings) == {"Art. 32", "Art. 25"}
    assert findings["Art. 32"]["target"]["status"]["state"] == "not-satisfied"
    assert findings["Art. 25"]["target"]["status"]["state"] == "satisfied"
    assert findings["Art. 32"]["target"]["target-id"] == "gdpr_art-32"


@pytest.mark.django_db
def test_check_export_observes_every_finding(gdpr_check):
    document = oscal.check_assessment_results(gdpr_check)
    observations = results_of(document)["observations"]
    assert len(observations) == 3
    statuses = {
        prop["value"]
        for observation in observations
        for prop in observation["props"]
        if prop["name"] == "status"
    }
    assert statuses == {"pass", "fail", "not_assessed"}


@pytest.mark.django_db
def test_check_export_links_observations(gdpr_check):
    document = oscal.check_assessment_results(gdpr_check)
    result = results_of(document)
    observation_uuids = {observation["uuid"] for observation in result["observations"]}
    for finding in result["findings"]:
        for related in finding["related-observations"]:
            assert related["observation-uuid"] in observation_uuids


@pytest.mark.django_db
def test_check_export_uuids_are_stable(gdpr_check):
    first = oscal.check_assessment_results(gdpr_check)
    again = oscal.check_assessment_results(Check.objects.get(pk=gdpr_check.pk))
    assert first == again
    uuids = list(all_uuids(first))
    assert len(uuids) == len(set(uuids))
    assert {uuid.UUID(value).version for value in uuids} == {5}


@pytest.mark.django_db
def test_check_export_without_passing_or_failing(validator, entity):
    check = make_check(
        entity,
        "SOC2",
        timezone.now().replace(microsecond=0),
        [("CC6.1", FindingStatus.NOT_ASSESSED, Severity.LOW)],
    )
    document = oscal.check_assessment_results(check)
    assert "findings" not in results_of(document)
    assert schema_errors(validator, document) == []


@pytest.mark.django_db
def test_check_export_hipaa_tokens(validator, entity):
    check = make_check(
        entity,
        "HIPAA",
        timezone.now().replace(microsecond=0),
        [("164.308(a)(1)(ii)(A)", FindingStatus.PASS, Severity.HIGH)],
    )
    document = oscal.check_assessment_results(check)
    finding = results_of(document)["findings"][0]
    assert finding["target"]["target-id"] == "hipaa_164-308-a-1-ii-a"
    assert schema_errors(validator, document) == []


# Report export


@pytest.mark.django_db
def test_report_export_matches_schema(validator, hipaa_report):
    document = oscal.report_assessment_results(hipaa_report)
    assert schema_errors(validator, document) == []


@pytest.mark.django_db
def test_report_export_states(hipaa_report):
    document = oscal.report_assessment_results(hipaa_report)
    findings = findings_by_control(document)
    assert set(findings) == {"164.308(a)(1)(ii)(A)", "164.312(a)(2)(iv)"}
    assert findings["164.308(a)(1)(ii)(A)"]["target"]["status"]["state"] == "satisfied"
    assert findings["164.312(a)(2)(iv)"]["target"]["status"]["state"] == "not-satisfied"
    assert len(results_of(document)["observations"]) == len(hipaa_report.findings)


@pytest.mark.django_db
def test_report_export_covers_period(hipaa_report):
    result = results_of(oscal.report_assessment_results(hipaa_report))
    start = dt.datetime.fromisoformat(result["start"])
    end = dt.datetime.fromisoformat(result["end"])
    assert start.date() == hipaa_report.period_start
    assert end.date() == hipaa_report.period_end
    assert start.utcoffset() is not None


@pytest.mark.django_db
def test_report_export_carries_digest(hipaa_report):
    result = results_of(oscal.report_assessment_results(hipaa_report))
    props = {prop["name"]: prop["value"] for prop in result["props"]}
    assert props["report-digest"] == hipaa_report.digest
    assert props["report-id"] == hipaa_report.public_id


# API


@pytest.mark.django_db
def test_check_download_is_identical(client, auditor_key, gdpr_check):
    first = api_get(client, auditor_key, check_path(gdpr_check))
    again = api_get(client, auditor_key, check_path(gdpr_check))
    assert first.status_code == 200, first.content
    assert first["Content-Type"] == "application/json"
    assert "attachment" in first["Content-Disposition"]
    assert first.content == again.content


@pytest.mark.django_db
def test_check_download_audited(client, auditor_key, gdpr_check):
    api_get(client, auditor_key, check_path(gdpr_check))
    event = AuditEvent.objects.get(action=AuditAction.EXPORT_DOWNLOADED)
    assert event.target_id == str(gdpr_check.pk)
    assert event.details["format"] == "oscal-json"


@pytest.mark.django_db
def test_check_download_rejects_bad_id(client, auditor_key):
    response = api_get(client, auditor_key, "/v1/compliance/checks/not-a-uuid/oscal.json")
    assert response.status_code == 400


@pytest.mark.django_db
def test_check_download_needs_key(client, gdpr_check):
    response = client.get(check_path(gdpr_check))
    assert response.status_code in {401, 403}


@pytest.mark.django_db
def test_report_download_is_identical(client, auditor_key, hipaa_report):
    first = api_get(client, auditor_key, report_path(hipaa_report))
    again = api_get(client, auditor_key, report_path(hipaa_report))
    assert first.status_code == 200, first.content
    assert first.content == again.content
    assert json.loads(first.content) == oscal.report_assessment_results(hipaa_report)


@pytest.mark.django_db
def test_report_download_audited(client, auditor_key, hipaa_report):
    api_get(client, auditor_key, report_path(hipaa_report))
    event = AuditEvent.objects.get(action=AuditAction.EXPORT_DOWNLOADED)
    assert event.details["report_id"] == hipaa_report.public_id
    assert event.details["format"] == "oscal-json"


@pytest.mark.django_db
def test_report_download_generating_conflicts(client, auditor_key, hipaa_report):
    hipaa_report.status = ReportStatus.GENERATING
    hipaa_report.save(update_fields=["status"])
    response = api_get(client, auditor_key, report_path(hipaa_report))
    assert response.status_code == 409
    assert not AuditEvent.objects.filter(action=AuditAction.EXPORT_DOWNLOADED).exists()


# Round trip through the OSCAL importer


@pytest.mark.django_db
def test_check_export_imports_back(tenant, copy_entity, gdpr_check):
    data = oscal.oscal_response(oscal.check_assessment_results(gdpr_check), "x.json").content

    result = import_results(tenant, copy_entity, data, format="oscal-ar")

    imported = Finding.objects.filter(entity=copy_entity)
    statuses = {finding.control_id: finding.status for finding in imported}
    assert statuses == {"Art. 32": FindingStatus.FAIL, "Art. 25": FindingStatus.PASS}
    assert {finding.regulation for finding in imported} == {"GDPR"}
    assert result.unmapped_count == 0
    assert [check.regulation for check in result.checks] == ["GDPR"]


@pytest.mark.django_db
def test_report_export_imports_back(tenant, copy_entity, hipaa_report):
    data = oscal.oscal_response(oscal.report_assessment_results(hipaa_report), "x.json").content

    import_results(tenant, copy_entity, data, format="oscal-ar")

    imported = Finding.objects.filter(entity=copy_entity)
    statuses = {finding.control_id: finding.status for finding in imported}
    assert statuses == {
        "164.308(a)(1)(ii)(A)": FindingStatus.PASS,
        "164.312(a)(2)(iv)": FindingStatus.FAIL,
    }
