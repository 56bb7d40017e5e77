"""run_automated_check and the run_check command: stored checks, scope and status."""

import io
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from compliance.catalog.loader import CATALOG_VERSION
from compliance.catalog.models import Severity
from compliance.checks.automated import run_automated_check
from compliance.checks.models import Check, CheckSource, CheckStatus, Finding, FindingStatus
from compliance.checks.rules import clear_cache, rule_set
from compliance.inventory.models import Entity, EntityType
from compliance.reports.aggregation import build_report

pytestmark = pytest.mark.django_db

# Facts that meet every SOC 2 rule that applies to an agent.
COMPLIANT_AGENT = {
    "training": {"operators_trained": True},
    "technical_documentation": {"url": "https://docs.example/agent", "current": True},
    "risk_management": {"process": "ERM-7", "review_interval_days": 180},
    "monitoring": {"performance_tracked": True, "alerting": True},
    "environment": {"segregated": True},
    "access": {
        "scopes": ["claims_db.read", "policy_lookup", "case_router.assign"],
        "unique_identity": True,
        "review_interval_days": 90,
        "deprovisioning_automated": True,
    },
    "credentials": {"rotation_days": 30, "in_secret_store": True},
    "input_validation": {"enabled": True},
    "output_validation": {"enabled": True},
    "encryption": {"in_transit": True, "at_rest": True},
    "vulnerability_management": {"scan_interval_days": 7},
    "logging": {"enabled": True, "retention_days": 400},
    "incident_reporting": {"contact": "security@example.org"},
    "change_management": {"approval_required": True},
    "continuity": {"plan_documented": True},
    "vendor": {"risk_assessed": True},
}
# SOC 2 rules whose entity types exclude agents.
SOC2_NOT_FOR_AGENTS = {"A1.2", "C1.1", "CC6.5", "P4.2", "PI1.3"}


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_cache()
    yield
    clear_cache()


def make_agent(tenant, attributes, owner="Claims Operations", name="Claims triage agent"):
    return Entity.objects.create(
        tenant=tenant,
        entity_type=EntityType.AGENT,
        name=name,
        owner=owner,
        attributes=attributes,
    )


@pytest.fixture
def agent(tenant):
    return make_agent(tenant, COMPLIANT_AGENT)


def run(*args):
    stdout = io.StringIO()
    call_command("run_check", *args, stdout=stdout)
    return stdout.getvalue()


# The stored check


def test_check_stored_with_findings(agent):
    before = timezone.now()

    check = run_automated_check(agent, "SOC2")

    rules = rule_set("SOC2")
    check.refresh_from_db()
    assert check.source == CheckSource.AUTOMATED
    assert check.status == CheckStatus.PASSED
    assert check.tenant_id == agent.tenant_id
    assert check.entity_id == agent.pk
    assert check.regulation == "SOC2"
    assert check.scope == {}
    assert check.rule_set_version == rules.version
    assert check.catalog_version == CATALOG_VERSION
    assert before <= check.created_at <= check.completed_at <= timezone.now()
    assert check.findings.count() == len(rules.rules)


def test_one_finding_per_control(agent):
    check = run_automated_check(agent, "SOC2")

    control_ids = list(check.findings.values_list("control_id", flat=True))
    assert len(control_ids) == len(set(control_ids))
    assert set(control_ids) == {compiled.rule.control_id for compiled in rule_set("SOC2").rules}


def test_finding_columns_filled(agent):
    check = run_automated_check(agent, "SOC2")

    finding = check.findings.get(control_id="CC7.2")
    assert finding.tenant_id == check.tenant_id
    assert finding.entity_id == check.entity_id
    assert finding.regulation == check.regulation
    assert finding.observed_at == check.created_at
    assert finding.finding_id == "rule:SOC2:logging-retained"
    assert finding.status == FindingStatus.PASS
    assert finding.severity == Severity.HIGH
    assert finding.title == "Activity is logged and logs are kept for a year"
    assert finding.description
    assert finding.evidence["rule"] == "logging-retained"
    assert finding.evidence["facts"] == {"logging.enabled": True, "logging.retention_days": 400}
    assert finding.evidence["rule_set_version"] == check.rule_set_version


def test_agent_gets_not_applicable_findings(agent):
    check = run_automated_check(agent, "SOC2")

    not_applicable = set(
        check.findings.filter(status=FindingStatus.NOT_APPLICABLE).values_list(
            "control_id", flat=True
        )
    )
    assert not_applicable == SOC2_NOT_FOR_AGENTS


def test_regulation_in_any_case(agent):
    check = run_automated_check(agent, "eu_ai_act")

    assert check.regulation == "EU_AI_ACT"


def test_unknown_regulation_rejected(agent):
    with pytest.raises(ValueError, match="Unknown regulation 'SOX'"):
        run_automated_check(agent, "SOX")
    assert not Check.objects.exists()


def test_failed_write_stores_nothing(agent):
    with (
        mock.patch.object(Finding.objects, "bulk_create", side_effect=RuntimeError("disk full")),
        pytest.raises(RuntimeError, match="disk full"),
    ):
        run_automated_check(agent, "SOC2")

    assert not Check.objects.exists()
    assert not Finding.objects.exists()


def test_findings_feed_the_report(agent):
    check = run_automated_check(agent, "SOC2")
    today = timezone.localdate(check.created_at, agent.tenant.zone)

    summary, entries = build_report(agent.tenant, agent, "SOC2", today, today)

    assert summary["controls"]["passing"] == len(rule_set("SOC2").rules) - len(SOC2_NOT_FOR_AGENTS)
    assert summary["controls"]["not_applicable"] == len(SOC2_NOT_FOR_AGENTS)
    assert {entry["control_id"] for entry in entries} >= {"CC6.1", "CC7.2"}


# Scope


def test_scope_restricts_controls(agent):
    check = run_automated_check(agent, "SOC2", scope={"controls": ["cc_6_1", "CC7.2", "CC6.1"]})

    assert check.scope["controls"] == ["CC6.1", "CC7.2"]
    assert check.rule_set_version == rule_set("SOC2").version
    assert sorted(check.findings.values_list("control_id", flat=True)) == ["CC6.1", "CC7.2"]


def test_scope_without_controls_runs_all(agent):
    check = run_automated_check(agent, "SOC2", scope={})

    assert check.findings.count() == len(rule_set("SOC2").rules)
    assert "controls" not in check.scope


def test_unknown_controls_rejected(agent):
    with pytest.raises(ValueError, match=r"Unknown SOC 2 control IDs: 'CC9\.9', 'bogus'\."):
        run_automated_check(agent, "SOC2", scope={"controls": ["CC6.1", "CC9.9", "bogus"]})

    assert not Check.objects.exists()


def test_control_without_rule_rejected(agent):
    with pytest.raises(ValueError, match=r"No automated rule covers SOC 2 controls 'CC1\.1'"):
        run_automated_check(agent, "SOC2", scope={"controls": ["CC1.1", "CC6.1"]})

    assert not Check.objects.exists()


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        ("CC6.1", "scope must be a mapping"),
        ({"controls": "CC6.1"}, "must be a non-empty list"),
        ({"controls": []}, "must be a non-empty list"),
        ({"controls": ["CC6.1"], "rule_set_version": "x"}, "Unknown scope keys: rule_set_version"),
    ],
)
def test_invalid_scope_rejected(agent, scope, message):
    with pytest.raises(ValueError, match=message):
        run_automated_check(agent, "SOC2", scope=scope)

    assert not Check.objects.exists()


# Status derivation


def test_status_failed_on_high_failure(tenant):
    attributes = {**COMPLIANT_AGENT, "logging": {"enabled": True, "retention_days": 30}}
    entity = make_agent(tenant, attributes)

    check = run_automated_check(entity, "SOC2", scope={"controls": ["CC7.2", "CC1.3"]})

    assert check.findings.get(control_id="CC7.2").status == FindingStatus.FAIL
    assert check.status == CheckStatus.FAILED


def test_status_partial_on_medium_failure(tenant):
    entity = make_agent(tenant, COMPLIANT_AGENT, owner="")

    check = run_automated_check(entity, "SOC2", scope={"controls": ["CC7.2", "CC1.3"]})

    assert check.findings.get(control_id="CC1.3").status == FindingStatus.FAIL
    assert check.status == CheckStatus.PARTIAL


def test_status_passed_when_all_pass(agent):
    check = run_automated_check(agent, "SOC2", scope={"controls": ["CC7.2", "CC1.3"]})

    assert set(check.findings.values_list("status", flat=True)) == {FindingStatus.PASS}
    assert check.status == CheckStatus.PASSED


def test_missing_facts_not_assessed(tenant):
    entity = make_agent(tenant, {})

    check = run_automated_check(entity, "SOC2", scope={"controls": ["CC7.2", "CC6.1"]})

    finding = check.findings.get(control_id="CC7.2")
    assert finding.status == FindingStatus.NOT_ASSESSED
    assert finding.evidence["missing"] == ["logging.enabled", "logging.retention_days"]
    assert "logging.enabled" in finding.remediation
    assert check.status == CheckStatus.PARTIAL, "nothing assessed is never passed"


# The run_check command


def test_command_prints_summary(agent):
    output = run(
        "--tenant", "acme", "--entity", str(agent.pk), "--regulation", "soc2",
        "--controls", "CC6.1, cc_7_2",
    )  # fmt: skip

    check = Check.objects.get()
    version = rule_set("SOC2").version
    assert output == (
        f"SOC2 check {check.pk} of Claims triage agent: passed, 2 findings (2 pass), "
        f"rule set {version[:12]}.\n"
    )
    assert check.scope["controls"] == ["CC6.1", "CC7.2"]


def test_command_counts_each_status(tenant):
    entity = make_agent(tenant, {"logging": {"enabled": True, "retention_days": 30}}, owner="")

    output = run("--tenant", "acme", "--entity", str(entity.pk), "--regulation", "SOC2")

    assert ": failed, 24 findings (" in output
    assert "5 not applicable" in output
    assert "2 fail" in output
    assert "not assessed" in output


def test_command_unknown_tenant(agent):
    with pytest.raises(CommandError, match="Tenant 'nope' not found"):
        run("--tenant", "nope", "--entity", str(agent.pk), "--regulation", "SOC2")


def test_command_entity_of_other_tenant(agent, other_entity):
    with pytest.raises(CommandError, match=f"Entity {other_entity.pk} not found in tenant 'acme'"):
        run("--tenant", "acme", "--entity", str(other_entity.pk), "--regulation", "SOC2")
    assert not Check.objects.exists()


def test_command_invalid_entity_id(agent):
    with pytest.raises(CommandError, match="--entity must be an entity UUID"):
        run("--tenant", "acme", "--entity", "42", "--regulation", "SOC2")


def test_command_unknown_controls(agent):
    with pytest.raises(CommandError, match=r"Unknown SOC 2 control IDs: 'CC9\.9'\. Nothing"):
        run(
            "--tenant", "acme", "--entity", str(agent.pk), "--regulation", "SOC2",
            "--controls", "CC6.1,CC9.9",
        )  # fmt: skip
    assert not Check.objects.exists()


def test_command_empty_controls(agent):
    with pytest.raises(CommandError, match="--controls must list at least one control ID"):
        run(
            "--tenant", "acme", "--entity", str(agent.pk), "--regulation", "SOC2", "--controls", ","
        )


def test_command_unknown_regulation(agent):
    with pytest.raises(CommandError, match="Unknown regulation 'SOX'"):
        run("--tenant", "acme", "--entity", str(agent.pk), "--regulation", "SOX")
