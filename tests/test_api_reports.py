"""The v1 compliance API over real HTTP against the live server."""

import datetime as dt
import hashlib
import io
import json
import uuid

import pytest
from django.utils import timezone
from pypdf import PdfReader

from compliance.catalog.models import Severity
from compliance.checks.models import FindingStatus
from compliance.lib.canonical_json import canonical_json
from compliance.reports.models import Report
from compliance.tenancy.models import Role
from tests.conftest import Api, assert_status

pytestmark = pytest.mark.django_db(transaction=True)

ITEM_KEYS = {"check_id", "agent_id", "framework", "scope", "status", "findings", "created_at"}
FINDING_KEYS = {"finding_id", "severity", "title", "description"}


def report_request(entity, days, end=None, **overrides):
    end = end or entity.tenant.today()
    body = {
        "entity_type": entity.entity_type,
        "entity_id": str(entity.pk),
        "regulation": "SOC2",
        "period_start": (end - dt.timedelta(days=days - 1)).isoformat(),
        "period_end": end.isoformat(),
    }
    body.update(overrides)
    return body


class TestCheckList:
    def test_list_item_shape(self, api, soc2_history):
        response = api.get("/v1/compliance/reports")

        assert_status(response, 200)
        body = response.json()
        assert set(body) == {"items", "total"}
        assert body["total"] == 3
        item = body["items"][0]
        assert set(item) == ITEM_KEYS
        assert item["check_id"] == str(soc2_history.pk)
        assert item["framework"] == "soc2"
        assert item["status"] == "failed"
        assert item["created_at"].endswith("Z")
        for finding in item["findings"]:
            assert set(finding) >= FINDING_KEYS
            assert finding["severity"] in {"low", "medium", "high", "critical"}

    def test_list_newest_first_without_overlap(self, api, entity, check_factory):
        same_time = timezone.now().replace(microsecond=0)
        for _ in range(7):
            check_factory(
                entity, "GDPR", same_time, [("Art. 32", FindingStatus.PASS, Severity.LOW)]
            )

        seen = []
        for offset in range(0, 9, 3):
            response = api.get("/v1/compliance/reports", params={"limit": 3, "offset": offset})
            assert_status(response, 200)
            seen += [item["check_id"] for item in response.json()["items"]]

        assert len(seen) == 7
        assert len(set(seen)) == 7

    def test_list_filters(self, api, entity, soc2_history, check_factory):
        check_factory(
            entity, "HIPAA", timezone.now(), [("164.312(b)", FindingStatus.PASS, Severity.LOW)]
        )

        by_framework = api.get("/v1/compliance/reports", params={"framework": "HIPAA"}).json()
        by_status = api.get("/v1/compliance/reports", params={"status": "Passed"}).json()
        by_agent = api.get("/v1/compliance/reports", params={"agent_id": str(uuid.uuid4())}).json()

        assert by_framework["total"] == 1
        assert by_framework["items"][0]["framework"] == "hipaa"
        assert {item["status"] for item in by_status["items"]} == {"passed"}
        assert by_status["total"] == 2
        assert by_agent == {"items": [], "total": 0}

    def test_offset_past_end(self, api, soc2_history):
        body = api.get("/v1/compliance/reports", params={"offset": 50}).json()

        assert body == {"items": [], "total": 3}

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"limit": "0"}, "limit"),
            ({"limit": "101"}, "limit"),
            ({"limit": "ten"}, "limit"),
            ({"offset": "-1"}, "offset"),
            ({"offset": "1e3"}, "offset"),
            ({"offset": str(2**40)}, "offset"),
            ({"framework": "pci"}, "framework"),
            ({"status": "done"}, "status"),
            ({"agent_id": "not-a-uuid"}, "agent_id"),
            ({"agent_id": ""}, "agent_id"),
            ({"frameworks": "soc2"}, "frameworks"),
            ([("limit", "5"), ("limit", "6")], "limit"),
            ({"limit": " 5"}, "limit"),
            ({"offset": "+5"}, "offset"),
        ],
    )
    def test_list_rejects_bad_parameters(self, api, params, field):
        response = api.get("/v1/compliance/reports", params=params)

        assert_status(response, 400)
        body = response.json()
        assert body["code"] == "invalid_parameter"
        assert field in body["details"]
        assert field in body["message"]

    def test_list_reports_every_bad_parameter(self, api):
        params = {"limit": "0", "offset": "-1", "framework": "x", "status": "y", "agent_id": "z"}

        response = api.get("/v1/compliance/reports", params=params)

        assert_status(response, 400)
        assert set(response.json()["details"]) == set(params)

    def test_errors_are_json_whatever_accept(self, live_server, db):
        response = Api(live_server.url, "").get(
            "/v1/compliance/reports", headers={"Accept": "text/html"}
        )

        assert_status(response, 401)
        assert response.json()["code"] == "unauthenticated"

    def test_list_scoped_to_key_tenant(self, live_server, other_tenant, issue_key, soc2_history):
        outsider = Api(live_server.url, issue_key(other_tenant))

        body = outsider.get("/v1/compliance/reports").json()

        assert body == {"items": [], "total": 0}

    def test_check_detail_other_tenant_is_404(
        self, live_server, other_tenant, issue_key, soc2_history
    ):
        outsider = Api(live_server.url, issue_key(other_tenant))

        response = outsider.get(f"/v1/compliance/checks/{soc2_history.pk}")

        assert_status(response, 404)
        assert response.json()["code"] == "not_found"


class TestAuthentication:
    def test_missing_key_is_401(self, live_server, db):
        response = Api(live_server.url, "").get("/v1/compliance/reports")

        assert_status(response, 401)
        assert "X-API-Key" in response.headers["WWW-Authenticate"]
        assert response.json()["code"] == "unauthenticated"

    def test_wrong_secret_is_401(self, live_server, tenant, issue_key):
        key = issue_key(tenant)
        forged = key[: key.rindex("_") + 1] + "x" * 43

        response = Api(live_server.url, forged).get("/v1/compliance/reports")

        assert_status(response, 401)

    def test_revoked_key_is_401(self, live_server, tenant):
        from compliance.keys.models import ApiKey

        api_key, plaintext = ApiKey.issue(tenant=tenant, name="old", role=Role.AUDITOR)
        client = Api(live_server.url, plaintext)
        assert_status(client.get("/v1/compliance/reports"), 200)

        api_key.revoke()

        assert_status(client.get("/v1/compliance/reports"), 401)

    def test_key_in_query_string_is_ignored(self, live_server, tenant, issue_key):
        key = issue_key(tenant)
        response = Api(live_server.url, "").get("/v1/compliance/reports", params={"api_key": key})

        assert_status(response, 401)

    def test_tenant_header_must_match(self, api, other_tenant, tenant):
        mismatch = api.get("/v1/compliance/reports", headers={"X-Tenant-ID": other_tenant.slug})
        by_slug = api.get("/v1/compliance/reports", headers={"X-Tenant-ID": tenant.slug})
        by_uuid = api.get("/v1/compliance/reports", headers={"X-Tenant-ID": str(tenant.pk)})

        assert_status(mismatch, 403)
        assert_status(by_slug, 200)
        assert_status(by_uuid, 200)

    def test_auditor_cannot_generate(self, live_server, tenant, entity, issue_key):
        auditor = Api(live_server.url, issue_key(tenant, role=Role.AUDITOR))

        response = auditor.post("/v1/compliance/reports", json=report_request(entity, 7))

        assert_status(response, 403)
        assert response.json()["code"] == "forbidden"
        assert Report.objects.count() == 0


class TestReportGeneration:
    def test_short_period_is_ready_at_once(self, api, entity, soc2_history):
        response = api.post("/v1/compliance/reports", json=report_request(entity, 29))

        assert_status(response, 201)
        body = response.json()
        assert body["id"].startswith("maip-report:")
        assert body["status"] == "ready"
        assert response.headers["Location"].endswith(body["id"])
        assert body["regulation"] == "SOC2"
        assert body["entity_type"] == "agent"
        summary = body["summary"]
        assert summary["checks"]["total"] == 3
        assert summary["checks"]["by_status"]["failed"] == 1
        assert summary["controls"]["passing"] == 1
        assert summary["controls"]["failing"] == 1
        assert summary["controls"]["not_applicable"] == 1
        assert summary["compliance_score"] == 50.0
        assert summary["open_findings_by_severity"]["high"] == 1
        assert "CC1.1" in summary["controls_without_evidence"]
        statuses = {entry["control_id"]: entry["status"] for entry in body["findings"]}
        assert statuses == {"CC6.1": "fail", "CC7.2": "pass", "A1.2": "not_applicable"}

    def test_digest_covers_canonical_json(self, api, entity, soc2_history):
        body = api.post("/v1/compliance/reports", json=report_request(entity, 10)).json()

        digest = body.pop("digest")
        expected = "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()

        assert digest == expected

    def test_report_detail_round_trip(self, api, entity, soc2_history):
        created = api.post("/v1/compliance/reports", json=report_request(entity, 10)).json()

        fetched = api.get(f"/v1/compliance/reports/{created['id']}")

        assert_status(fetched, 200)
        assert fetched.json() == created

    def test_lower_case_enums_accepted(self, api, entity, soc2_history):
        body = report_request(entity, 5, regulation="soc2", entity_type="AGENT")

        response = api.post("/v1/compliance/reports", json=body)

        assert_status(response, 201)
        assert response.json()["regulation"] == "SOC2"

    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"period_start": "2026-02-30"}, "period_start"),
            ({"period_end": "2026/03/01"}, "period_end"),
            ({"period_start": "2026-03-10", "period_end": "2026-03-01"}, "period_end"),
            ({"period_start": "2020-01-01", "period_end": "2026-01-01"}, "period_end"),
            ({"period_start": "0001-01-01", "period_end": "0001-01-02"}, "period_start"),
            ({"period_end": "9999-12-31"}, "period_end"),
            ({"regulation": "PCI"}, "regulation"),
            ({"entity_type": "robot"}, "entity_type"),
            ({"entity_id": "123"}, "entity_id"),
        ],
    )
    def test_bad_body_is_400(self, api, entity, overrides, field):
        response = api.post("/v1/compliance/reports", json=report_request(entity, 5, **overrides))

        assert_status(response, 400)
        assert field in response.json()["details"]
        assert Report.objects.count() == 0

    def test_future_end_is_400(self, api, entity, tenant):
        tomorrow = tenant.today() + dt.timedelta(days=1)
        body = report_request(entity, 5, end=tomorrow)

        response = api.post("/v1/compliance/reports", json=body)

        assert_status(response, 400)
        assert "in the future" in response.json()["details"]["period_end"][0]

    def test_array_body_message(self, api):
        response = api.post("/v1/compliance/reports", json=["not", "an", "object"])

        assert_status(response, 400)
        assert "non_field_errors" not in response.json()["message"]

    def test_malformed_json_is_400(self, api):
        response = api.post(
            "/v1/compliance/reports", data="{not json", headers={"Content-Type": "application/json"}
        )

        assert_status(response, 400)
        assert response.json()["code"] == "malformed_request"

    def test_unknown_entity_is_404(self, api, other_entity, entity):
        foreign = report_request(other_entity, 5)
        missing = report_request(entity, 5, entity_id=str(uuid.uuid4()))

        assert_status(api.post("/v1/compliance/reports", json=foreign), 404)
        assert_status(api.post("/v1/compliance/reports", json=missing), 404)

    def test_wrong_entity_type_is_400(self, api, entity):
        wrong_type = report_request(entity, 5, entity_type="dataset")

        response = api.post("/v1/compliance/reports", json=wrong_type)

        assert_status(response, 400)
        message = response.json()["details"]["entity_type"][0]
        assert message == f"Entity {entity.pk} is an agent, not a dataset."
        assert Report.objects.count() == 0

    def test_foreign_entity_type_not_revealed(self, api, other_entity):
        body = report_request(other_entity, 5, entity_type="dataset")

        response = api.post("/v1/compliance/reports", json=body)

        assert_status(response, 404)
        assert other_entity.entity_type not in response.text

    def test_other_tenant_report_is_404(self, api, live_server, other_tenant, issue_key, entity):
        created = api.post("/v1/compliance/reports", json=report_request(entity, 5)).json()
        outsider = Api(live_server.url, issue_key(other_tenant))

        assert_status(outsider.get(f"/v1/compliance/reports/{created['id']}"), 404)
        assert_status(outsider.get(f"/v1/compliance/reports/{created['id']}/pdf"), 404)

    def test_malformed_report_id_is_400(self, api):
        response = api.get("/v1/compliance/reports/maip-report:not-a-ulid")

        assert_status(response, 400)
        assert "id" in response.json()["details"]

    def test_pdf_download(self, api, entity, soc2_history, tenant):
        created = api.post("/v1/compliance/reports", json=report_request(entity, 20)).json()

        response = api.get(f"/v1/compliance/reports/{created['id']}/pdf")

        assert_status(response, 200)
        assert response.headers["Content-Type"] == "application/pdf"
        assert response.headers["X-Content-SHA256"] == hashlib.sha256(response.content).hexdigest()
        text = "\n".join(
            page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages
        )
        assert created["id"] in text
        assert tenant.name in text
        assert "CC6.1" in text


@pytest.mark.worker
class TestBackgroundGeneration:
    def test_long_period_goes_through_worker(self, api, entity, soc2_history, run_worker):
        response = api.post("/v1/compliance/reports", json=report_request(entity, 90))

        assert_status(response, 202)
        created = response.json()
        assert created["status"] == "generating"
        assert created["summary"] is None
        location = response.headers["Location"]
        assert_status(api.get(location.removeprefix(api.base_url) + "/pdf"), 409)

        run_worker()

        ready = api.get(f"/v1/compliance/reports/{created['id']}").json()
        assert ready["status"] == "ready"
        assert ready["summary"]["checks"]["total"] == 3
        assert ready["digest"].startswith("sha256:")
        report = Report.objects.get()
        assert report.pdf_sha256, "the worker renders the PDF with the report"
        pdf = api.get(f"/v1/compliance/reports/{created['id']}/pdf")
        assert_status(pdf, 200)
        assert hashlib.sha256(pdf.content).hexdigest() == report.pdf_sha256

    def test_generating_report_json_serialisable(self, api, entity):
        response = api.post("/v1/compliance/reports", json=report_request(entity, 30))

        assert_status(response, 202)
        assert json.loads(response.text)["status"] == "generating"
