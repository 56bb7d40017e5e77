"""Controls and tenant rules over the API: listing, writes, validation, roles and tenancy."""

import json

import pytest
from django.test import Client

from compliance.audit.models import AuditEvent
from compliance.catalog.models import Control, TenantRule
from compliance.checks.models import Check
from compliance.checks.rules import clear_tenant_cache
from compliance.tenancy.models import Role
from tests.conftest import assert_status

pytestmark = pytest.mark.django_db

RULE = {
    "regulation": "soc2",
    "control_id": "cc_7_2",
    "title": "Logs are kept for two years",
    "severity": "high",
    "expression": "logging.enabled && logging.retention_days >= 730",
    "remediation": "Keep logs for two years.",
}


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_tenant_cache()
    yield
    clear_tenant_cache()


class Caller:
    """A test client that sends one API key with JSON bodies."""

    def __init__(self, key):
        self.client = Client()
        self.headers = {"X-API-Key": key}

    def get(self, path, params=None):
        return self.client.get(path, params or {}, headers=self.headers)

    def send(self, method, path, body=None):
        data = json.dumps(body) if body is not None else ""
        return self.client.generic(
            method, path, data, content_type="application/json", headers=self.headers
        )


@pytest.fixture
def officer(tenant, issue_key):
    return Caller(issue_key(tenant, role=Role.OFFICER))


@pytest.fixture
def auditor(tenant, issue_key):
    return Caller(issue_key(tenant, role=Role.AUDITOR))


@pytest.fixture
def outsider(other_tenant, issue_key):
    return Caller(issue_key(other_tenant, role=Role.ADMIN))


def create_control(caller, **fields):
    body = {"regulation": "SOC2", "control_id": "cc_9_4", "title": "Model cards", **fields}
    response = caller.send("POST", "/v1/compliance/controls", body)
    assert_status(response, 201)
    return response.json()


def create_rule(caller, **fields):
    response = caller.send("POST", "/v1/compliance/rules", {**RULE, **fields})
    assert_status(response, 201)
    return response.json()


# Controls


def test_control_create_and_read(officer, tenant):
    body = create_control(officer, guidance="Publish a model card for every model.")

    assert body["control_id"] == "CC9.4"
    assert body["shipped"] is False
    assert body["guidance"] == "Publish a model card for every model."
    fetched = officer.get(f"/v1/compliance/controls/{body['id']}")
    assert_status(fetched, 200)
    assert fetched.json() == body
    event = AuditEvent.objects.get(tenant=tenant, target_id=str(body["id"]))
    assert event.action == "create"
    assert event.details == {"regulation": "SOC2", "control_id": "CC9.4"}


def test_control_list_filters_regulation(officer):
    create_control(officer)

    response = officer.get("/v1/compliance/controls", {"regulation": "soc2", "limit": 100})

    assert_status(response, 200)
    items = response.json()["items"]
    regulations = {item["regulation"] for item in items}
    assert regulations == {"SOC2"}
    assert response.json()["total"] == Control.objects.filter(regulation="SOC2").count()
    assert {"guidance", "requirement", "shipped"} <= set(items[0])


def test_control_list_shipped_filter(officer):
    create_control(officer)

    response = officer.get("/v1/compliance/controls", {"shipped": "false"})

    assert_status(response, 200)
    assert response.json()["total"] == 1


def test_control_collision_named(officer):
    response = officer.send(
        "POST",
        "/v1/compliance/controls",
        {"regulation": "SOC2", "control_id": "CC6.1", "title": "x"},
    )

    assert_status(response, 400)
    details = response.json()["details"]
    assert "already exists in the shipped catalog" in details["control_id"][0]


def test_control_unknown_field(officer):
    response = officer.send(
        "POST",
        "/v1/compliance/controls",
        {"regulation": "SOC2", "control_id": "CC9.4", "title": "x", "tenant": "other"},
    )

    assert_status(response, 400)
    assert "tenant" in response.json()["details"]


def test_control_patch_and_delete(officer, tenant):
    body = create_control(officer)
    path = f"/v1/compliance/controls/{body['id']}"

    patched = officer.send("PATCH", path, {"title": "Model cards are published"})
    deleted = officer.send("DELETE", path)

    assert_status(patched, 200)
    assert patched.json()["title"] == "Model cards are published"
    assert_status(deleted, 204)
    assert not Control.objects.filter(pk=body["id"]).exists()
    actions = list(
        AuditEvent.objects.filter(tenant=tenant, target_id=str(body["id"]))
        .order_by("occurred_at", "id")
        .values_list("action", flat=True)
    )
    assert actions == ["create", "update", "delete"]


def test_control_regulation_fixed(officer):
    body = create_control(officer)

    response = officer.send(
        "PATCH", f"/v1/compliance/controls/{body['id']}", {"regulation": "GDPR"}
    )

    assert_status(response, 400)
    assert "cannot change" in response.json()["details"]["regulation"][0]


def test_shipped_control_read_only(officer):
    shipped = Control.objects.shipped().get(regulation="SOC2", control_id="CC6.1")
    path = f"/v1/compliance/controls/{shipped.pk}"

    patched = officer.send("PATCH", path, {"title": "Mine now"})
    deleted = officer.send("DELETE", path)

    assert_status(patched, 403)
    assert_status(deleted, 403)
    shipped.refresh_from_db()
    assert shipped.title != "Mine now"


def test_auditor_reads_only(officer, auditor):
    body = create_control(officer)

    read = auditor.get(f"/v1/compliance/controls/{body['id']}")
    created = auditor.send(
        "POST",
        "/v1/compliance/controls",
        {"regulation": "SOC2", "control_id": "CC9.5", "title": "x"},
    )
    rule_created = auditor.send("POST", "/v1/compliance/rules", RULE)

    assert_status(read, 200)
    assert_status(created, 403)
    assert_status(rule_created, 403)


def test_other_tenant_control_404(officer, outsider):
    body = create_control(officer)
    path = f"/v1/compliance/controls/{body['id']}"

    listed = outsider.get("/v1/compliance/controls", {"shipped": "false"})

    assert_status(outsider.get(path), 404)
    assert_status(outsider.send("PATCH", path, {"title": "taken"}), 404)
    assert_status(outsider.send("DELETE", path), 404)
    assert listed.json()["total"] == 0


def test_control_id_not_numeric_404(officer):
    assert_status(officer.get("/v1/compliance/controls/CC6.1"), 404)


# Rules


def test_rule_create_and_read(officer, tenant):
    body = create_rule(officer)

    assert body["regulation"] == "SOC2"
    assert body["control_id"] == "CC7.2"
    assert body["facts"] == ["logging.enabled", "logging.retention_days"]
    assert body["entity_types"] == ["agent", "model", "dataset", "workflow"]
    assert body["enabled"] is True
    fetched = officer.get(f"/v1/compliance/rules/{body['id']}")
    assert_status(fetched, 200)
    assert fetched.json() == body
    assert AuditEvent.objects.filter(tenant=tenant, target_id=body["id"], action="create").exists()


def test_rule_on_own_control(officer):
    create_control(officer)

    body = create_rule(officer, control_id="CC9.4", entity_types=["model"])

    assert body["control_id"] == "CC9.4"
    assert body["entity_types"] == ["model"]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"expression": "logging.enabled &&"}, "expression", "The expression ends too early"),
        ({"expression": "logging.colour"}, "expression", "logging.colour is not a known fact"),
        ({"expression": "logging.retention_days"}, "expression", "not true or false"),
        ({"control_id": "CC9.9"}, "control_id", "has no control CC9.9"),
        ({"control_id": "Art. 32"}, "control_id", "Unknown SOC 2 control ID"),
        ({"entity_types": ["robot"]}, "entity_types", "not a valid choice"),
        ({"severity": "urgent"}, "severity", "Unknown value"),
    ],
)
def test_rule_validation_errors(officer, fields, field, message):
    response = officer.send("POST", "/v1/compliance/rules", {**RULE, **fields})

    assert_status(response, 400)
    details = response.json()["details"]
    joined = " ".join(
        value for key, values in details.items() if key.startswith(field) for value in values
    )
    assert message in joined
    assert not TenantRule.objects.exists()


def test_rule_other_tenant_control_rejected(officer, outsider):
    create_control(outsider)

    response = officer.send("POST", "/v1/compliance/rules", {**RULE, "control_id": "CC9.4"})

    assert_status(response, 400)
    assert "has no control CC9.4" in response.json()["details"]["control_id"][0]


def test_rule_patch_recomputes_facts(officer, tenant):
    body = create_rule(officer)

    response = officer.send(
        "PATCH", f"/v1/compliance/rules/{body['id']}", {"expression": "encryption.at_rest"}
    )

    assert_status(response, 200)
    assert response.json()["facts"] == ["encryption.at_rest"]
    assert TenantRule.objects.get(pk=body["id"]).facts == ["encryption.at_rest"]


def test_rule_patch_enabled(officer):
    body = create_rule(officer)

    response = officer.send("PATCH", f"/v1/compliance/rules/{body['id']}", {"enabled": False})

    assert_status(response, 200)
    assert response.json()["enabled"] is False


def test_rule_delete(officer, tenant):
    body = create_rule(officer)

    response = officer.send("DELETE", f"/v1/compliance/rules/{body['id']}")

    assert_status(response, 204)
    assert not TenantRule.objects.exists()
    assert AuditEvent.objects.filter(tenant=tenant, target_id=body["id"], action="delete").exists()


def test_other_tenant_rule_404(officer, outsider):
    body = create_rule(officer)
    path = f"/v1/compliance/rules/{body['id']}"

    listed = outsider.get("/v1/compliance/rules")

    assert_status(outsider.get(path), 404)
    assert_status(outsider.send("PATCH", path, {"enabled": False}), 404)
    assert_status(outsider.send("DELETE", path), 404)
    assert listed.json()["total"] == 0
    assert TenantRule.objects.get(pk=body["id"]).enabled is True


def test_rule_list_filters(officer):
    create_rule(officer)
    create_rule(officer, regulation="GDPR", control_id="Art. 32", expression="encryption.at_rest")

    response = officer.get("/v1/compliance/rules", {"regulation": "gdpr"})

    assert_status(response, 200)
    assert response.json()["total"] == 1


# Automated checks


def test_check_runs_own_rule(officer, entity):
    create_control(officer)
    rule = create_rule(officer, control_id="CC9.4", expression="logging.retention_days >= 730")
    entity.attributes = {"logging": {"retention_days": 365}}
    entity.save()
    body = {"entity_id": str(entity.pk), "regulation": "SOC2", "scope": {"controls": ["cc_9_4"]}}

    first = officer.send("POST", "/v1/compliance/check", body)
    patched = officer.send(
        "PATCH",
        f"/v1/compliance/rules/{rule['id']}",
        {"expression": "logging.retention_days >= 300"},
    )
    second = officer.send("POST", "/v1/compliance/check", body)

    assert_status(first, 201)
    assert_status(patched, 200)
    assert_status(second, 201)
    checks = list(Check.objects.filter(entity=entity).order_by("created_at"))
    assert len(checks) == 2
    assert checks[0].rule_set_version != checks[1].rule_set_version
    assert [finding.status for finding in checks[0].findings.all()] == ["fail"]
    assert [finding.status for finding in checks[1].findings.all()] == ["pass"]
