"""POST /v1/compliance/check: both body shapes, the 24-hour reuse and bad input."""

import datetime as dt

import pytest

from compliance.checks.models import Check
from compliance.inventory.models import Entity
from compliance.tenancy.models import Role
from tests.conftest import Api, assert_status

pytestmark = pytest.mark.django_db(transaction=True)

FACTS = {
    "owner": "Ops",
    "logging": {"enabled": True, "retention_days": 400},
    "access": {"scopes": ["claims.read"], "unique_identity": True},
}


@pytest.fixture
def agent(tenant):
    return Entity.objects.create(
        tenant=tenant, entity_type="agent", name="Agent", owner="Ops", attributes=FACTS
    )


def test_first_shape_runs_check(api, agent):
    response = api.post(
        "/v1/compliance/check",
        json={"entity_type": "agent", "entity_id": str(agent.pk), "regulation": "SOC2"},
    )

    assert_status(response, 201)
    body = response.json()
    assert body["agent_id"] == str(agent.pk)
    assert body["framework"] == "soc2"
    assert body["status"] in {"passed", "failed", "partial"}
    assert len(body["findings"]) > 1
    assert Check.objects.get().source == "automated"


def test_both_shapes_give_same_result(api, agent):
    first = api.post(
        "/v1/compliance/check",
        json={
            "entity_type": "agent",
            "entity_id": str(agent.pk),
            "regulation": "soc2",
            "scope": {"controls": ["CC7.2", "cc_6_1"]},
        },
    )
    second = api.post(
        "/v1/compliance/check",
        json={
            "agent_id": str(agent.pk),
            "framework": "SOC2",
            "scope": {"controls": ["CC6.1", "CC7.2"]},
        },
    )

    assert_status(first, 201)
    assert_status(second, 200)
    assert second.json() == first.json()
    assert {finding["control_id"] for finding in first.json()["findings"]} == {"CC6.1", "CC7.2"}
    assert Check.objects.count() == 1


def test_other_scope_runs_again(api, agent):
    body = {"agent_id": str(agent.pk), "framework": "soc2"}

    everything = api.post("/v1/compliance/check", json=body)
    narrowed = api.post("/v1/compliance/check", json={**body, "scope": {"controls": ["CC7.2"]}})

    assert_status(everything, 201)
    assert_status(narrowed, 201)
    assert Check.objects.count() == 2


def test_old_check_not_reused(api, agent):
    body = {"agent_id": str(agent.pk), "framework": "soc2"}
    api.post("/v1/compliance/check", json=body)
    Check.objects.update(created_at=Check.objects.get().created_at - dt.timedelta(hours=25))

    response = api.post("/v1/compliance/check", json=body)

    assert_status(response, 201)
    assert Check.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"framework": "soc2"}, "agent_id"),
        ({"entity_id": "{agent}"}, "regulation"),
        ({"agent_id": "{agent}", "framework": "pci"}, "framework"),
        ({"agent_id": "{agent}", "framework": "soc2", "scope": {"controls": ["CC99.1"]}}, "scope"),
        ({"agent_id": "{agent}", "framework": "soc2", "scope": {"tags": ["x"]}}, "scope"),
        ({"agent_id": "{agent}", "framework": "soc2", "scope": {"controls": "CC6.1"}}, "scope"),
        ({"agent_id": "{agent}", "framework": "soc2", "scope": []}, "scope"),
        ({"agent_id": "{agent}", "regulation": "SOC2"}, "non_field_errors"),
    ],
)
def test_bad_body_is_400(api, agent, body, field):
    body = {name: (str(agent.pk) if value == "{agent}" else value) for name, value in body.items()}

    response = api.post("/v1/compliance/check", json=body)

    assert_status(response, 400)
    assert field in response.json()["details"]
    assert Check.objects.count() == 0


def test_entity_type_mismatch_is_404(api, agent):
    body = {"entity_type": "dataset", "entity_id": str(agent.pk), "regulation": "SOC2"}

    assert_status(api.post("/v1/compliance/check", json=body), 404)


def test_other_tenant_entity_is_404(live_server, other_tenant, issue_key, agent):
    outsider = Api(live_server.url, issue_key(other_tenant))

    response = outsider.post(
        "/v1/compliance/check", json={"agent_id": str(agent.pk), "framework": "soc2"}
    )

    assert_status(response, 404)
    assert Check.objects.count() == 0


def test_auditor_cannot_run_checks(live_server, tenant, issue_key, agent):
    auditor = Api(live_server.url, issue_key(tenant, role=Role.AUDITOR))

    response = auditor.post(
        "/v1/compliance/check", json={"agent_id": str(agent.pk), "framework": "soc2"}
    )

    assert_status(response, 403)
