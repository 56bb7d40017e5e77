"""Entities, API keys, aggregated reports and idempotency over real HTTP."""

import datetime as dt
import hashlib
import uuid

import pytest
import requests
from django.utils import timezone

from compliance.audit.models import AuditEvent
from compliance.inventory.models import Entity
from compliance.keys.models import ApiKey
from compliance.reports.models import Report
from compliance.tenancy.models import Role
from tests.conftest import Api, assert_status

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_api(live_server, tenant, issue_key):
    return Api(live_server.url, issue_key(tenant, role=Role.ADMIN))


@pytest.fixture
def auditor_api(live_server, tenant, issue_key):
    return Api(live_server.url, issue_key(tenant, role=Role.AUDITOR))


@pytest.fixture
def outsider_api(live_server, other_tenant, issue_key):
    return Api(live_server.url, issue_key(other_tenant, role=Role.ADMIN))


def report_body(entity, days=5):
    end = entity.tenant.today()
    return {
        "entity_type": entity.entity_type,
        "entity_id": str(entity.pk),
        "regulation": "SOC2",
        "period_start": (end - dt.timedelta(days=days - 1)).isoformat(),
        "period_end": end.isoformat(),
    }


class TestEntities:
    def test_create_read_update(self, api, tenant):
        created = api.post(
            "/v1/entities",
            json={
                "entity_type": "Model",
                "name": "  Fraud model ",
                "owner": "Risk team",
                "attributes": {"owner": "Risk team", "encryption": {"at_rest": True}},
            },
        )
        assert_status(created, 201)
        body = created.json()
        assert body["entity_type"] == "model"
        assert body["name"] == "Fraud model"

        fetched = api.get(f"/v1/entities/{body['id']}")
        assert_status(fetched, 200)
        assert fetched.json() == body

        updated = api.session.patch(
            f"{api.base_url}/v1/entities/{body['id']}", json={"description": "Scores claims"}
        )
        assert_status(updated, 200)
        assert updated.json()["description"] == "Scores claims"
        assert Entity.objects.get(pk=body["id"]).tenant == tenant

    def test_list_filters_and_pages(self, api, tenant):
        for index in range(4):
            Entity.objects.create(tenant=tenant, entity_type="dataset", name=f"Set {index}")
        Entity.objects.create(tenant=tenant, entity_type="agent", name="Agent")

        datasets = api.get("/v1/entities", params={"entity_type": "DATASET", "limit": 3}).json()
        searched = api.get("/v1/entities", params={"search": "agent"}).json()

        assert datasets["total"] == 4
        assert len(datasets["items"]) == 3
        assert searched["total"] == 1

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"entity_type": "robot", "name": "x"}, "entity_type"),
            ({"entity_type": "agent", "name": "   "}, "name"),
            ({"entity_type": "agent"}, "name"),
            ({"entity_type": "agent", "name": "x", "attributes": [1, 2]}, "attributes"),
        ],
    )
    def test_create_rejects_bad_body(self, api, body, field):
        response = api.post("/v1/entities", json=body)

        assert_status(response, 400)
        assert field in response.json()["details"]
        assert Entity.objects.count() == 0

    def test_type_cannot_change(self, api, entity):
        response = api.session.patch(
            f"{api.base_url}/v1/entities/{entity.pk}", json={"entity_type": "model"}
        )

        assert_status(response, 400)
        assert "entity_type" in response.json()["details"]

    def test_delete_keeps_evidence(self, api, entity, soc2_history):
        response = api.session.delete(f"{api.base_url}/v1/entities/{entity.pk}")

        assert_status(response, 409)
        assert Entity.objects.filter(pk=entity.pk).exists()

    def test_delete_without_evidence(self, api, entity):
        response = api.session.delete(f"{api.base_url}/v1/entities/{entity.pk}")

        assert_status(response, 204)
        assert not Entity.objects.filter(pk=entity.pk).exists()

    def test_auditor_cannot_write(self, auditor_api, entity):
        created = auditor_api.post("/v1/entities", json={"entity_type": "agent", "name": "x"})
        deleted = auditor_api.session.delete(f"{auditor_api.base_url}/v1/entities/{entity.pk}")

        assert_status(created, 403)
        assert_status(deleted, 403)

    def test_other_tenant_entity_is_404(self, outsider_api, entity):
        read = outsider_api.get(f"/v1/entities/{entity.pk}")
        patched = outsider_api.session.patch(
            f"{outsider_api.base_url}/v1/entities/{entity.pk}", json={"name": "stolen"}
        )
        listed = outsider_api.get("/v1/entities").json()

        assert_status(read, 404)
        assert_status(patched, 404)
        assert listed == {"items": [], "total": 0}

    def test_malformed_id_is_400(self, api):
        response = api.get("/v1/entities/not-a-uuid")

        assert_status(response, 400)
        assert "entity_id" in response.json()["details"]

    def test_put_not_allowed(self, api, entity):
        response = api.session.put(f"{api.base_url}/v1/entities/{entity.pk}", json={})

        assert_status(response, 405)
        assert response.json()["code"] == "method_not_allowed"


class TestApiKeys:
    def test_create_shows_key_once(self, admin_api, live_server):
        created = admin_api.post("/v1/api-keys", json={"name": "CI", "role": "Auditor"})

        assert_status(created, 201)
        body = created.json()
        assert body["role"] == "auditor"
        assert body["status"] == "active"
        assert created.headers["Cache-Control"] == "no-store"
        new_client = Api(live_server.url, body["key"])
        assert_status(new_client.get("/v1/compliance/reports"), 200)
        fetched = admin_api.get(f"/v1/api-keys/{body['id']}").json()
        assert "key" not in fetched
        assert fetched["prefix"] == body["key"][: len(fetched["prefix"])]

    def test_revoke_takes_effect_at_once(self, admin_api, live_server):
        body = admin_api.post("/v1/api-keys", json={"name": "CI", "role": "officer"}).json()
        client = Api(live_server.url, body["key"])
        assert_status(client.get("/v1/compliance/reports"), 200)

        revoked = admin_api.session.delete(f"{admin_api.base_url}/v1/api-keys/{body['id']}")

        assert_status(revoked, 204)
        assert_status(client.get("/v1/compliance/reports"), 401)
        assert admin_api.get(f"/v1/api-keys/{body['id']}").json()["status"] == "revoked"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"name": "x", "role": "owner"}, "role"),
            ({"name": "", "role": "admin"}, "name"),
            ({"name": "x", "role": "admin", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
            ({"name": "x", "role": "admin", "expires_at": "tomorrow"}, "expires_at"),
        ],
    )
    def test_create_rejects_bad_body(self, admin_api, body, field):
        before = ApiKey.objects.count()

        response = admin_api.post("/v1/api-keys", json=body)

        assert_status(response, 400)
        assert field in response.json()["details"]
        assert ApiKey.objects.count() == before

    def test_officer_cannot_manage_keys(self, api):
        assert_status(api.get("/v1/api-keys"), 403)
        assert_status(api.post("/v1/api-keys", json={"name": "x", "role": "admin"}), 403)

    def test_other_tenant_key_is_404(self, admin_api, outsider_api):
        body = admin_api.post("/v1/api-keys", json={"name": "CI", "role": "officer"}).json()

        read = outsider_api.get(f"/v1/api-keys/{body['id']}")
        revoked = outsider_api.session.delete(f"{outsider_api.base_url}/v1/api-keys/{body['id']}")

        assert_status(read, 404)
        assert_status(revoked, 404)
        assert ApiKey.objects.get(pk=body["id"]).revoked_at is None

    def test_expired_key_rejected(self, live_server, tenant):
        api_key, plaintext = ApiKey.issue(
            tenant=tenant,
            name="short",
            role=Role.AUDITOR,
            expires_at=timezone.now() + dt.timedelta(seconds=1),
        )
        ApiKey.objects.filter(pk=api_key.pk).update(
            expires_at=timezone.now() - dt.timedelta(seconds=1)
        )

        assert_status(Api(live_server.url, plaintext).get("/v1/compliance/reports"), 401)


class TestAggregatedReports:
    def test_list_and_filters(self, api, entity, soc2_history):
        api.post("/v1/compliance/reports", json=report_body(entity))
        api.post("/v1/compliance/reports", json={**report_body(entity), "regulation": "gdpr"})

        everything = api.get("/v1/compliance/aggregated-reports").json()
        gdpr = api.get("/v1/compliance/aggregated-reports", params={"regulation": "GDPR"}).json()
        bad = api.get("/v1/compliance/aggregated-reports", params={"regulation": "pci"})

        assert everything["total"] == 2
        assert everything["items"][0]["regulation"] == "GDPR", "newest first"
        assert "findings" not in everything["items"][0]
        assert everything["items"][0]["id"].startswith("maip-report:")
        assert gdpr["total"] == 1
        assert_status(bad, 400)
        assert "regulation" in bad.json()["details"]

    def test_other_tenant_sees_none(self, api, outsider_api, entity):
        api.post("/v1/compliance/reports", json=report_body(entity))

        assert outsider_api.get("/v1/compliance/aggregated-reports").json()["total"] == 0


class TestIdempotency:
    def test_same_key_same_report(self, api, entity, soc2_history):
        headers = {"Idempotency-Key": "create-1"}

        first = api.post("/v1/compliance/reports", json=report_body(entity), headers=headers)
        second = api.post("/v1/compliance/reports", json=report_body(entity), headers=headers)

        assert_status(first, 201)
        assert_status(second, 201)
        assert second.json() == first.json()
        assert second.headers["Idempotent-Replayed"] == "true"
        assert second.headers["Location"] == first.headers["Location"]
        assert Report.objects.count() == 1

    def test_same_key_other_body(self, api, entity):
        headers = {"Idempotency-Key": "create-2"}
        api.post("/v1/compliance/reports", json=report_body(entity), headers=headers)

        response = api.post(
            "/v1/compliance/reports", json=report_body(entity, days=6), headers=headers
        )

        assert_status(response, 422)
        assert response.json()["code"] == "idempotency_key_reused"
        assert Report.objects.count() == 1

    def test_failed_request_not_stored(self, api, entity):
        headers = {"Idempotency-Key": "create-3"}
        body = {**report_body(entity), "entity_id": str(uuid.uuid4())}

        assert_status(api.post("/v1/compliance/reports", json=body, headers=headers), 404)
        assert_status(api.post("/v1/compliance/reports", json=body, headers=headers), 404)

    def test_keys_scoped_to_tenant(self, api, outsider_api, entity, other_entity):
        headers = {"Idempotency-Key": "shared"}

        mine = api.post("/v1/compliance/reports", json=report_body(entity), headers=headers)
        theirs = outsider_api.post(
            "/v1/compliance/reports", json=report_body(other_entity), headers=headers
        )

        assert_status(mine, 201)
        assert_status(theirs, 201)
        assert mine.json()["id"] != theirs.json()["id"]


class TestRequestBodies:
    def test_wrong_content_type_is_415(self, api, entity):
        response = api.post(
            "/v1/compliance/reports",
            data="entity_type=agent",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

        assert_status(response, 415)
        assert response.json()["code"] == "unsupported_media_type"

    def test_oversized_body_is_413(self, api, settings):
        padding = "x" * (settings.API_MAX_JSON_BYTES + 10)

        response = api.post("/v1/entities", json={"entity_type": "agent", "name": padding})

        assert_status(response, 413)
        assert response.json()["code"] == "payload_too_large"

    def test_non_utf8_body_is_400(self, api):
        response = api.post(
            "/v1/entities",
            data='{"entity_type": "agent", "name": "caf\xe9"}'.encode("latin-1"),
            headers={"Content-Type": "application/json"},
        )

        assert_status(response, 400)
        assert "UTF-8" in response.json()["message"]

    def test_nan_is_rejected(self, api):
        response = api.post(
            "/v1/entities",
            data='{"entity_type": "agent", "name": "x", "attributes": {"score": NaN}}',
            headers={"Content-Type": "application/json"},
        )

        assert_status(response, 400)

    def test_json_array_body_is_400(self, api):
        response = api.post("/v1/compliance/reports", json=[1, 2])

        assert_status(response, 400)
        assert response.json()["code"] == "invalid_parameter"

    def test_unknown_api_path_is_json_404(self, api):
        response = api.get("/v1/nothing-here")

        assert_status(response, 404)
        assert response.json()["code"] == "not_found"


class TestOpenApi:
    def test_schema_served(self, live_server, db):
        response = Api(live_server.url, "").get("/v1/openapi.json")

        assert_status(response, 200)
        document = response.json()
        assert document["openapi"].startswith("3.")
        assert "/v1/compliance/reports" in document["paths"]
        assert "Error" in document["components"]["schemas"]
        list_operation = document["paths"]["/v1/compliance/reports"]["get"]
        assert list_operation["responses"]["400"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }

    def test_docs_page_has_no_external_assets(self, live_server, db):
        response = Api(live_server.url, "").get("/v1/docs")

        assert_status(response, 200)
        for marker in ("https://", "http://cdn", "//cdn"):
            assert marker not in response.text


class TestVerification:
    def test_digests_match_downloads(self, api, entity, soc2_history):
        created = api.post("/v1/compliance/reports", json=report_body(entity)).json()

        verification = api.get(f"/v1/compliance/reports/{created['id']}/verification")
        pdf = api.get(f"/v1/compliance/reports/{created['id']}/pdf")

        assert_status(verification, 200)
        body = verification.json()
        assert body["digest"] == created["digest"]
        assert body["pdf_sha256"] == hashlib.sha256(pdf.content).hexdigest()

    def test_generating_report_is_409(self, api, entity):
        created = api.post("/v1/compliance/reports", json=report_body(entity, days=40)).json()

        response = api.get(f"/v1/compliance/reports/{created['id']}/verification")

        assert_status(response, 409)

    def test_other_tenant_is_404(self, api, outsider_api, entity):
        created = api.post("/v1/compliance/reports", json=report_body(entity)).json()

        response = outsider_api.get(f"/v1/compliance/reports/{created['id']}/verification")

        assert_status(response, 404)


class TestAuditOfWrites:
    def test_entity_lifecycle_recorded(self, api, tenant):
        created = api.post("/v1/entities", json={"entity_type": "agent", "name": "Bot"}).json()
        api.session.patch(f"{api.base_url}/v1/entities/{created['id']}", json={"owner": "Ops"})
        api.session.delete(f"{api.base_url}/v1/entities/{created['id']}")

        events = AuditEvent.objects.filter(tenant=tenant, target_id=created["id"])
        actions = list(events.order_by("occurred_at").values_list("action", flat=True))
        assert actions == ["create", "update", "delete"]
        assert events.get(action="update").details["fields"] == ["owner"]
        assert all(event.actor_key_id for event in events)

    def test_key_revocation_recorded_once(self, admin_api, tenant):
        body = admin_api.post("/v1/api-keys", json={"name": "CI", "role": "officer"}).json()

        admin_api.session.delete(f"{admin_api.base_url}/v1/api-keys/{body['id']}")
        admin_api.session.delete(f"{admin_api.base_url}/v1/api-keys/{body['id']}")

        events = AuditEvent.objects.filter(tenant=tenant, target_id=body["id"])
        assert sorted(events.values_list("action", flat=True)) == ["key_created", "key_revoked"]
        assert body["key"] not in str(list(events.values_list("details", flat=True)))


class TestAuditOfExports:
    def test_findings_export_recorded(self, api, entity, soc2_history, tenant):
        created = api.post("/v1/compliance/reports", json=report_body(entity)).json()

        response = api.get(f"/v1/compliance/reports/{created['id']}/findings.csv")

        assert_status(response, 200)
        event = AuditEvent.objects.get(tenant=tenant, action="export_downloaded")
        assert event.details == {
            "report_id": created["id"],
            "format": "csv",
            "digest": created["digest"],
        }

    def test_check_list_export_recorded(self, api, tenant, soc2_history):
        response = api.get("/v1/compliance/checks.csv", params={"framework": "soc2"})

        assert_status(response, 200)
        event = AuditEvent.objects.get(tenant=tenant, action="export_downloaded")
        assert event.details["filters"] == {"framework": "soc2"}
        assert event.details["format"] == "csv"


class TestStrictBodies:
    @pytest.mark.parametrize(
        ("path", "body", "field"),
        [
            (
                "/v1/api-keys",
                {"name": "ci", "role": "officer", "expires_in_days": 1},
                "expires_in_days",
            ),
            ("/v1/entities", {"entity_type": "agent", "name": "x", "ownr": "typo"}, "ownr"),
        ],
    )
    def test_unknown_field_is_400(self, admin_api, path, body, field):
        response = admin_api.post(path, json=body)

        assert_status(response, 400)
        assert "Unknown field" in response.json()["details"][field][0]

    def test_unknown_report_field_is_400(self, api, entity):
        response = api.post("/v1/compliance/reports", json={**report_body(entity), "extra": 1})

        assert_status(response, 400)
        assert "extra" in response.json()["details"]
        assert Report.objects.count() == 0

    def test_every_bad_period_field_named(self, api, entity):
        body = {**report_body(entity), "period_start": "0001-01-01", "period_end": "9999-12-31"}

        response = api.post("/v1/compliance/reports", json=body)

        assert_status(response, 400)
        assert set(response.json()["details"]) == {"period_start", "period_end"}

    def test_bearer_without_jwt_setup_explained(self, live_server, db):
        response = requests.get(
            f"{live_server.url}/v1/compliance/reports",
            headers={"Authorization": "Bearer abc.def.ghi"},
            timeout=30,
        )

        assert_status(response, 401)
        assert "Bearer tokens are not enabled" in response.json()["message"]

    def test_oversized_body_message_names_limit(self, api, settings):
        padding = "x" * (settings.API_MAX_JSON_BYTES + 10)

        response = api.post("/v1/entities", json={"entity_type": "agent", "name": padding})

        assert_status(response, 413)
        assert str(settings.API_MAX_JSON_BYTES) in response.json()["message"]
        assert "DATA_UPLOAD" not in response.json()["message"]
