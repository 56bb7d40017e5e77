"""Ingestion of outside results over HTTP: JSON documents and scanner file uploads."""

from pathlib import Path

import pytest

from compliance.audit.models import AuditAction, AuditEvent
from compliance.catalog.models import Control
from compliance.checks.models import Check, Finding
from compliance.tenancy.models import Role
from tests.conftest import Api, assert_status

pytestmark = pytest.mark.django_db(transaction=True)

SAMPLES = Path(__file__).resolve().parent.parent / "compliance" / "demo" / "data"
AZURE_CSV = SAMPLES / "prowler" / "example_output_azure.csv"
OSCAL_RESULTS = SAMPLES / "oscal" / "ifa_assessment-results-example.json"
GARAK_REPORT = SAMPLES / "garak" / "test.report.jsonl"
OCSF_DIR = Path(__file__).resolve().parent / "data" / "ocsf"
OCSF_FINDINGS = OCSF_DIR / "compliance_findings.jsonl"
OCSF_BAD_RECORD = OCSF_DIR / "compliance_findings_bad_record.json"


def document(entity, **overrides):
    body = {
        "entity_id": str(entity.pk),
        "regulation": "soc2",
        "source": "ci-pipeline",
        "observed_at": "2026-11-30T08:00:00Z",
        "findings": [
            {"control_id": "cc_6_1", "status": "FAIL", "severity": "high", "title": "MFA off"},
            {"control_id": "CC7.2", "status": "pass", "severity": "low", "title": "Alerts on"},
        ],
    }
    body.update(overrides)
    return body


class TestJsonDocument:
    def test_stores_one_check(self, api, entity):
        response = api.post("/v1/compliance/results", json=document(entity))

        assert_status(response, 201)
        body = response.json()
        assert body["already_imported"] is False
        assert body["format"] == "json"
        [check] = body["checks"]
        assert check["framework"] == "soc2"
        assert check["status"] == "failed"
        assert check["created_at"] == "2026-11-30T08:00:00Z"
        assert {finding["control_id"] for finding in check["findings"]} == {"CC6.1", "CC7.2"}
        stored = Check.objects.get()
        assert stored.source == "imported"
        assert stored.source_name == "ci-pipeline"

    def test_same_document_stored_once(self, api, entity):
        first = api.post("/v1/compliance/results", json=document(entity))
        second = api.post("/v1/compliance/results", json=document(entity))

        assert_status(first, 201)
        assert_status(second, 200)
        assert second.json()["already_imported"] is True
        assert second.json()["checks"][0]["check_id"] == first.json()["checks"][0]["check_id"]
        assert Check.objects.count() == 1

    def test_one_bad_finding_stores_nothing(self, api, entity):
        body = document(entity)
        body["findings"].append(
            {"control_id": "CC99.9", "status": "pass", "severity": "low", "title": "x"}
        )

        response = api.post("/v1/compliance/results", json=body)

        assert_status(response, 400)
        assert "findings[2].control_id" in response.json()["details"]
        assert Check.objects.count() == 0
        assert Finding.objects.count() == 0

    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"observed_at": "2026-11-30T08:00:00"}, "observed_at"),
            ({"observed_at": "2999-01-01T00:00:00Z"}, "observed_at"),
            ({"regulation": "pci"}, "regulation"),
            ({"findings": []}, "findings"),
            ({"source": "has spaces"}, "source"),
            ({"entity_id": "nope"}, "entity_id"),
        ],
    )
    def test_rejects_bad_document(self, api, entity, overrides, field):
        response = api.post("/v1/compliance/results", json=document(entity, **overrides))

        assert_status(response, 400)
        assert field in response.json()["details"]
        assert Check.objects.count() == 0

    def test_accepts_own_control(self, api, tenant, entity):
        Control.objects.create(
            tenant=tenant, regulation="SOC2", control_id="CC9.4", title="Model cards"
        )
        body = document(entity)
        body["findings"].append(
            {"control_id": "cc_9_4", "status": "fail", "severity": "low", "title": "No card"}
        )

        response = api.post("/v1/compliance/results", json=body)

        assert_status(response, 201)
        [check] = response.json()["checks"]
        assert "CC9.4" in {finding["control_id"] for finding in check["findings"]}

    def test_rejects_other_tenant_control(self, api, other_tenant, entity):
        Control.objects.create(
            tenant=other_tenant, regulation="SOC2", control_id="CC9.4", title="Model cards"
        )
        body = document(entity)
        body["findings"].append(
            {"control_id": "CC9.4", "status": "fail", "severity": "low", "title": "No card"}
        )

        response = api.post("/v1/compliance/results", json=body)

        assert_status(response, 400)
        [message] = response.json()["details"]["findings[2].control_id"]
        assert "not one of your own controls" in message
        assert Check.objects.count() == 0

    def test_bad_status_names_the_finding(self, api, entity):
        body = document(entity)
        body["findings"][1]["status"] = "green"

        response = api.post("/v1/compliance/results", json=body)

        assert_status(response, 400)
        assert "findings[1].status" in response.json()["details"]
        assert Check.objects.count() == 0

    def test_other_tenant_entity_is_404(self, live_server, other_tenant, issue_key, entity):
        outsider = Api(live_server.url, issue_key(other_tenant))

        response = outsider.post("/v1/compliance/results", json=document(entity))

        assert_status(response, 404)
        assert Check.objects.count() == 0

    def test_auditor_cannot_ingest(self, live_server, tenant, issue_key, entity):
        auditor = Api(live_server.url, issue_key(tenant, role=Role.AUDITOR))

        assert_status(auditor.post("/v1/compliance/results", json=document(entity)), 403)

    def test_idempotency_key_without_observed_at(self, api, entity):
        body = document(entity)
        del body["observed_at"]
        headers = {"Idempotency-Key": "nightly-42"}

        first = api.post("/v1/compliance/results", json=body, headers=headers)
        second = api.post("/v1/compliance/results", json=body, headers=headers)
        third = api.post("/v1/compliance/results", json=body)

        assert_status(first, 201)
        assert_status(second, 201)
        assert second.json() == first.json()
        assert_status(third, 201)
        assert Check.objects.count() == 2


class TestFileUpload:
    def test_prowler_csv_upload(self, api, entity):
        with AZURE_CSV.open("rb") as handle:
            response = api.post(
                "/v1/compliance/results",
                data={"entity_id": str(entity.pk)},
                files={"file": ("scan.csv", handle, "text/csv")},
            )

        assert_status(response, 201)
        body = response.json()
        assert body["format"] == "prowler-csv"
        assert {check["framework"] for check in body["checks"]} == {"soc2", "iso27001", "hipaa"}

    def test_same_file_twice_is_noop(self, api, entity):
        def upload():
            with OSCAL_RESULTS.open("rb") as handle:
                return api.post(
                    "/v1/compliance/results",
                    data={"entity_id": str(entity.pk), "format": "oscal-ar"},
                    files={"file": ("results.json", handle, "application/json")},
                )

        first = upload()
        checks = Check.objects.count()
        second = upload()

        assert_status(first, 201)
        assert_status(second, 200)
        assert second.json()["already_imported"] is True
        assert Check.objects.count() == checks

    def test_unmapped_file_twice_is_noop(self, api, entity):
        def upload():
            return api.post(
                "/v1/compliance/results",
                data={"entity_id": str(entity.pk)},
                files={"file": ("report.jsonl", GARAK_REPORT.read_bytes(), "application/json")},
            )

        first = upload()
        second = upload()

        assert_status(first, 201)
        assert first.json()["checks"] == []
        assert first.json()["unmapped_reasons"] == [
            "Probe test.Test has no OWASP LLM Top 10 tag in the bundled probe table."
        ]
        assert_status(second, 200)
        assert second.json()["already_imported"] is True
        assert Check.objects.count() == 0

    def test_unreadable_file_names_the_problem(self, api, entity):
        response = api.post(
            "/v1/compliance/results",
            data={"entity_id": str(entity.pk)},
            files={"file": ("scan.txt", b"hello, world\n", "text/plain")},
        )

        assert_status(response, 400)
        assert "Unsupported file format" in response.json()["details"]["file"][0]
        assert Check.objects.count() == 0

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            ('[{"class_uid": 2003}]'.encode("utf-16"), "The file is UTF-16"),
            (b"[]", "The file contains no records"),
        ],
    )
    def test_unreadable_file_says_why(self, api, entity, content, message):
        response = api.post(
            "/v1/compliance/results",
            data={"entity_id": str(entity.pk)},
            files={"file": ("scan.json", content, "application/json")},
        )

        assert_status(response, 400)
        detail = response.json()["details"]["file"][0]
        assert detail.startswith(message)
        assert "Unsupported file format" not in detail
        assert Check.objects.count() == 0

    def test_wrong_content_type_is_415(self, api):
        response = api.post(
            "/v1/compliance/results",
            data="a,b",
            headers={"Content-Type": "text/csv"},
        )

        assert_status(response, 415)


def upload_file(api, entity, path, **fields):
    return api.post(
        "/v1/compliance/results",
        data={"entity_id": str(entity.pk), **fields},
        files={"file": (path.name, path.read_bytes(), "application/json")},
    )


class TestSkipInvalid:
    def test_ocsf_compliance_upload(self, api, entity):
        response = upload_file(api, entity, OCSF_FINDINGS)

        assert_status(response, 201)
        body = response.json()
        assert body["format"] == "ocsf-compliance"
        assert body["record_count"] == 7
        assert body["skipped_count"] == 1
        [skipped] = body["skipped_records"]
        assert skipped["position"] == 6
        assert skipped["record"] == "OCSF record 6 (line 6)"
        assert skipped["kind"] == "unsupported"
        frameworks = {check["framework"] for check in body["checks"]}
        assert frameworks == {"soc2", "iso27001", "hipaa", "gdpr", "eu_ai_act"}

    def test_bad_record_without_option_stores_nothing(self, api, entity):
        response = upload_file(api, entity, OCSF_BAD_RECORD)

        assert_status(response, 400)
        message = response.json()["details"]["file"][0]
        assert message.startswith("OCSF record 3 (array index 2): invalid severity_id 7.")
        assert Check.objects.count() == 0

    def test_bad_record_with_option_is_skipped(self, api, entity):
        response = upload_file(api, entity, OCSF_BAD_RECORD, skip_invalid="true")

        assert_status(response, 201)
        body = response.json()
        assert body["skipped_count"] == 1
        assert body["skipped_records"] == [
            {
                "position": 3,
                "record": "OCSF record 3 (array index 2)",
                "reason": "invalid severity_id 7. Expected one of 0, 1, 2, 3, 4, 5, 6 or 99 "
                "with a severity label.",
                "kind": "invalid",
            }
        ]
        assert Finding.objects.count() == 4
        events = AuditEvent.objects.filter(action=AuditAction.CREATE)
        assert events.count() == len(body["checks"])
        assert {event.details["skipped_count"] for event in events} == {1}

    def test_same_file_with_option_twice_is_noop(self, api, entity):
        first = upload_file(api, entity, OCSF_BAD_RECORD, skip_invalid="true")
        second = upload_file(api, entity, OCSF_BAD_RECORD, skip_invalid="true")

        assert_status(first, 201)
        assert_status(second, 200)
        assert second.json()["already_imported"] is True
        assert second.json()["skipped_count"] == 1
        assert Finding.objects.count() == 4

    def test_invalid_option_value_is_400(self, api, entity):
        response = upload_file(api, entity, OCSF_BAD_RECORD, skip_invalid="perhaps")

        assert_status(response, 400)
        assert "skip_invalid" in response.json()["details"]
