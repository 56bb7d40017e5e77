"""Tenant controls and rules: validation, automated checks, versions, catalog sync and reports."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from compliance.catalog.loader import sync_catalog
from compliance.catalog.models import Control, Regulation, TenantRule, all_entity_types
from compliance.checks.automated import recent_or_new_check, run_automated_check
from compliance.checks.models import FindingStatus
from compliance.checks.rules import clear_cache, clear_tenant_cache, rule_set, tenant_rule_set
from compliance.inventory.models import Entity, EntityType
from compliance.reports.aggregation import build_report

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_cache()
    clear_tenant_cache()
    yield
    clear_cache()
    clear_tenant_cache()


def make_control(tenant, control_id="CC9.4", regulation=Regulation.SOC2, title="Model cards"):
    control = Control(
        tenant=tenant,
        regulation=regulation,
        control_id=control_id,
        title=title,
        catalog_version="tenant",
    )
    control.full_clean()
    control.save()
    return control


def make_rule(tenant, control, expression="logging.retention_days >= 730", **fields):
    rule = TenantRule(
        tenant=tenant,
        regulation=control.regulation,
        control=control,
        title=fields.pop("title", "Logs are kept for two years"),
        expression=expression,
        **fields,
    )
    rule.full_clean()
    rule.save()
    return rule


def rule_errors(tenant, control, expression, **fields):
    rule = TenantRule(
        tenant=tenant,
        regulation=fields.pop("regulation", control.regulation),
        control=control,
        title="A rule",
        expression=expression,
        **fields,
    )
    with pytest.raises(ValidationError) as raised:
        rule.full_clean()
    return raised.value.message_dict


def shipped(regulation, control_id):
    return Control.objects.shipped().get(regulation=regulation, control_id=control_id)


# Control validation


def test_control_id_written_canonically(tenant):
    control = make_control(tenant, control_id="cc_9_4")

    assert control.control_id == "CC9.4"
    assert not control.is_shipped


def test_control_id_malformed(tenant):
    control = Control(tenant=tenant, regulation="SOC2", control_id="nine", title="x")

    with pytest.raises(ValidationError) as raised:
        control.full_clean()

    assert "control_id" in raised.value.message_dict
    assert "Unknown SOC 2 control ID 'nine'" in raised.value.message_dict["control_id"][0]


def test_control_id_collides_with_shipped(tenant):
    control = Control(tenant=tenant, regulation="SOC2", control_id="cc6.1", title="x")

    with pytest.raises(ValidationError) as raised:
        control.full_clean()

    message = raised.value.message_dict["control_id"][0]
    assert "CC6.1 already exists in the shipped catalog" in message


def test_control_id_collides_with_own(tenant):
    make_control(tenant)
    again = Control(tenant=tenant, regulation="SOC2", control_id="CC9.4", title="x")

    with pytest.raises(ValidationError) as raised:
        again.full_clean()

    assert "already exists in your controls" in raised.value.message_dict["control_id"][0]


def test_control_id_free_for_other_tenant(tenant, other_tenant):
    make_control(other_tenant)

    assert make_control(tenant).control_id == "CC9.4"


def test_control_title_required(tenant):
    control = Control(tenant=tenant, regulation="SOC2", control_id="CC9.4", title="   ")

    with pytest.raises(ValidationError) as raised:
        control.full_clean()

    assert "title" in raised.value.message_dict


def test_visible_to_hides_other_tenant(tenant, other_tenant):
    own = make_control(tenant)
    foreign = make_control(other_tenant, control_id="CC9.5")

    visible = Control.objects.visible_to(tenant)

    assert visible.filter(pk=own.pk).exists()
    assert not visible.filter(pk=foreign.pk).exists()
    assert visible.filter(tenant__isnull=True).count() == Control.objects.shipped().count()


def test_entity_types_match_inventory():
    assert all_entity_types() == EntityType.values


# Rule validation


def test_rule_records_facts_read(tenant):
    rule = make_rule(
        tenant, shipped("SOC2", "CC7.2"), "logging.enabled && logging.retention_days >= 730"
    )

    assert rule.facts == ["logging.enabled", "logging.retention_days"]


def test_rule_bad_cel(tenant):
    errors = rule_errors(tenant, shipped("SOC2", "CC7.2"), "logging.enabled &&")

    message = errors["expression"][0]
    assert message == (
        "The expression ends too early, at column 19: a value, a fact or a closing "
        "bracket is missing."
    )
    assert "INVALID_ARGUMENT" not in message


def test_rule_unknown_operator(tenant):
    errors = rule_errors(tenant, shipped("SOC2", "CC7.2"), "logging.enabled &&& true")

    assert errors["expression"][0].startswith("'&' at column 19 is not valid CEL.")


def test_rule_type_mismatch(tenant):
    errors = rule_errors(tenant, shipped("SOC2", "CC7.2"), "logging.retention_days == 'long'")

    message = errors["expression"][0]
    assert message.startswith("At column 24, == cannot be applied to int and string.")
    assert "overload" not in message


def test_rule_syntax_error_on_second_line(tenant):
    errors = rule_errors(tenant, shipped("SOC2", "CC7.2"), "logging.enabled\n)")

    assert errors["expression"][0].startswith("Unexpected ')' at line 2, column 1.")


def test_rule_unknown_fact(tenant):
    errors = rule_errors(tenant, shipped("SOC2", "CC7.2"), "logging.colour == 'blue'")

    message = errors["expression"][0]
    assert message.startswith("logging.colour is not a known fact.")
    assert 'listed under "Available facts" on the rule form' in message
    assert "facts.json" not in message
    assert "container" not in message


def test_rule_misspelt_fact_suggested(tenant):
    errors = rule_errors(tenant, shipped("SOC2", "CC7.2"), "logging.enabeld")

    assert "Did you mean logging.enabled?" in errors["expression"][0]


def test_rule_non_bool(tenant):
    errors = rule_errors(tenant, shipped("SOC2", "CC7.2"), "logging.retention_days + 1")

    assert "returns a value of type int, not true or false" in errors["expression"][0]


def test_rule_reads_no_fact(tenant):
    errors = rule_errors(tenant, shipped("SOC2", "CC7.2"), "1 < 2")

    assert "reads no fact" in errors["expression"][0]


def test_rule_wrong_regulation(tenant):
    errors = rule_errors(
        tenant, shipped("GDPR", "Art. 32"), "logging.enabled", regulation=Regulation.SOC2
    )

    assert errors["control"] == ["Control Art. 32 belongs to GDPR, not to SOC2."]


def test_rule_other_tenant_control(tenant, other_tenant):
    foreign = make_control(other_tenant)

    errors = rule_errors(tenant, foreign, "logging.enabled")

    assert errors["control"] == ["Choose a shipped control or one of your own."]


def test_rule_unknown_entity_type(tenant):
    errors = rule_errors(
        tenant, shipped("SOC2", "CC7.2"), "logging.enabled", entity_types=["robot"]
    )

    assert "Unknown entity types ['robot']" in errors["entity_types"][0]


def test_rule_expression_too_long(tenant):
    expression = "logging.enabled" + " && logging.enabled" * 200

    errors = rule_errors(tenant, shipped("SOC2", "CC7.2"), expression)

    assert "the maximum is 2000" in errors["expression"][0]


# Automated checks


def make_agent(tenant, attributes):
    return Entity.objects.create(
        tenant=tenant,
        entity_type=EntityType.AGENT,
        name="Claims triage agent",
        owner="Ops",
        attributes=attributes,
    )


def tenant_finding(check, rule):
    return check.findings.get(finding_id=f"rule:{rule.regulation}:{rule.rule_id}")


@pytest.mark.parametrize(
    ("attributes", "status"),
    [
        ({"logging": {"retention_days": 800}}, FindingStatus.PASS),
        ({"logging": {"retention_days": 400}}, FindingStatus.FAIL),
        ({}, FindingStatus.NOT_ASSESSED),
    ],
)
def test_tenant_rule_in_check(tenant, attributes, status):
    control = make_control(tenant)
    rule = make_rule(tenant, control, severity="high", remediation="Keep logs for two years.")
    agent = make_agent(tenant, attributes)

    check = run_automated_check(agent, "SOC2")

    finding = tenant_finding(check, rule)
    assert finding.status == status
    assert finding.control_id == "CC9.4"
    assert finding.severity == "high"
    assert finding.title == "Logs are kept for two years"
    assert check.findings.count() == len(rule_set("SOC2").rules) + 1


def test_failed_rule_default_remediation(tenant):
    control = make_control(tenant)
    rule = make_rule(tenant, control)
    agent = make_agent(tenant, {"logging": {"retention_days": 400}})

    finding = tenant_finding(run_automated_check(agent, "SOC2"), rule)

    assert finding.status == FindingStatus.FAIL
    assert finding.remediation == (
        "Change the entity's values of logging.retention_days so that "
        "logging.retention_days >= 730 becomes true, then run the check again."
    )
    assert "Record" not in finding.remediation


def test_unassessed_rule_asks_for_facts(tenant):
    control = make_control(tenant)
    rule = make_rule(tenant, control)
    agent = make_agent(tenant, {})

    finding = tenant_finding(run_automated_check(agent, "SOC2"), rule)

    assert finding.status == FindingStatus.NOT_ASSESSED
    assert finding.remediation == (
        "Record logging.retention_days in the entity's attributes, then run the check again."
    )


def test_tenant_rule_on_shipped_control(tenant):
    rule = make_rule(tenant, shipped("SOC2", "CC7.2"))
    agent = make_agent(tenant, {"logging": {"enabled": True, "retention_days": 400}})

    check = run_automated_check(agent, "SOC2", scope={"controls": ["CC7.2"]})

    statuses = dict(check.findings.values_list("finding_id", "status"))
    assert statuses == {
        "rule:SOC2:logging-retained": FindingStatus.PASS,
        f"rule:SOC2:{rule.rule_id}": FindingStatus.FAIL,
    }


def test_scope_names_own_control(tenant):
    control = make_control(tenant)
    make_rule(tenant, control)
    agent = make_agent(tenant, {"logging": {"retention_days": 800}})

    check = run_automated_check(agent, "SOC2", scope={"controls": ["cc_9_4"]})

    assert check.scope == {"controls": ["CC9.4"]}
    assert list(check.findings.values_list("control_id", flat=True)) == ["CC9.4"]


def test_scope_rejects_other_tenant_control(tenant, other_tenant):
    make_rule(other_tenant, make_control(other_tenant))
    agent = make_agent(tenant, {})

    with pytest.raises(ValueError, match=r"Unknown SOC 2 control IDs: 'CC9\.4'"):
        run_automated_check(agent, "SOC2", scope={"controls": ["CC9.4"]})


def test_other_tenant_rules_not_run(tenant, other_tenant):
    make_rule(other_tenant, make_control(other_tenant))
    agent = make_agent(tenant, {})

    check = run_automated_check(agent, "SOC2")

    assert check.rule_set_version == rule_set("SOC2").version
    assert not check.findings.filter(control_id="CC9.4").exists()


def test_disabled_rule_not_run(tenant):
    make_rule(tenant, make_control(tenant), enabled=False)
    agent = make_agent(tenant, {})

    check = run_automated_check(agent, "SOC2")

    assert not check.findings.filter(control_id="CC9.4").exists()
    assert check.rule_set_version == rule_set("SOC2").version


# Rule-set version


def test_version_changes_with_tenant_rules(tenant):
    shipped_version = rule_set("SOC2").version
    control = make_control(tenant)

    rule = make_rule(tenant, control)
    first = tenant_rule_set("SOC2", tenant).version
    rule.expression = "logging.retention_days >= 1000"
    rule.full_clean()
    rule.save()
    second = tenant_rule_set("SOC2", tenant).version
    rule.delete()
    third = tenant_rule_set("SOC2", tenant).version

    assert first != shipped_version
    assert second not in {shipped_version, first}
    assert third == shipped_version


def test_version_ignores_other_regulations(tenant):
    make_rule(tenant, make_control(tenant, control_id="Art. 200", regulation=Regulation.GDPR))

    assert tenant_rule_set("SOC2", tenant).version == rule_set("SOC2").version
    assert tenant_rule_set("GDPR", tenant).version != rule_set("GDPR").version


def test_edited_rule_gives_new_check(tenant):
    rule = make_rule(tenant, make_control(tenant))
    agent = make_agent(tenant, {"logging": {"retention_days": 800}})
    first, _ = recent_or_new_check(agent, "SOC2")

    rule.expression = "logging.retention_days >= 1000"
    rule.full_clean()
    rule.save()
    second, reused = recent_or_new_check(agent, "SOC2")

    assert not reused
    assert second.rule_set_version != first.rule_set_version
    assert tenant_finding(first, rule).status == FindingStatus.PASS
    assert tenant_finding(second, rule).status == FindingStatus.FAIL


def test_compiled_rules_cached(tenant):
    make_rule(tenant, make_control(tenant))

    assert tenant_rule_set("SOC2", tenant) is tenant_rule_set("SOC2", tenant)


# Catalog sync and reports


def test_sync_catalog_keeps_tenant_controls(tenant):
    control = make_control(tenant)
    rule = make_rule(tenant, control)

    changed = sync_catalog()

    assert changed == 0
    assert Control.objects.filter(pk=control.pk).exists()
    assert TenantRule.objects.filter(pk=rule.pk).exists()


def test_report_counts_tenant_control(tenant, other_tenant):
    make_rule(tenant, make_control(tenant))
    make_control(tenant, control_id="CC9.6", title="Model cards are reviewed")
    make_control(other_tenant, control_id="CC9.5")
    agent = make_agent(tenant, {"logging": {"retention_days": 800}})
    check = run_automated_check(agent, "SOC2", scope={"controls": ["CC9.4"]})
    today = timezone.localdate(check.created_at, tenant.zone)
    shipped_count = Control.objects.shipped().filter(regulation="SOC2").count()

    summary, entries = build_report(tenant, agent, "SOC2", today, today)

    assert summary["controls"]["total"] == shipped_count + 2
    assert summary["controls"]["passing"] == 1
    assert summary["controls_without_evidence"][-1] == "CC9.6"
    assert "CC9.5" not in summary["controls_without_evidence"]
    assert [entry["control_id"] for entry in entries] == ["CC9.4"]
    assert entries[0]["control_title"] == "Model cards"
