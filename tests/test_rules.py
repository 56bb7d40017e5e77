"""The rule engine: shipped rule files, fact reading, evaluation, validation and caching."""

import json
import shutil
from pathlib import Path
from unittest import mock

import pytest

from compliance.catalog.canonical import catalog_ids
from compliance.catalog.models import Control, Regulation
from compliance.checks.models import FindingStatus
from compliance.checks.rules import (
    RULES_DIR,
    RuleFileError,
    clear_cache,
    entity_facts,
    evaluate_rule,
    rule_set,
    validate_rule_files,
)
from compliance.checks.rules import loader as rules_loader
from compliance.checks.rules.facts import FACTS_FILE_NAME, MAX_LIST_ITEMS, parse_vocabulary
from compliance.checks.rules.loader import read_rule_files, rule_set_version
from compliance.inventory.models import Entity, EntityType

REPOSITORY = Path(__file__).resolve().parent.parent
CASES_FILE = Path(__file__).resolve().parent / "data" / "rule_cases.json"
CASES = json.loads(CASES_FILE.read_text(encoding="utf-8"))
OUTCOMES = {
    "pass": FindingStatus.PASS,
    "fail": FindingStatus.FAIL,
    "not_assessed": FindingStatus.NOT_ASSESSED,
}
MIN_RULES_PER_REGULATION = 20


def shipped_rules():
    return validate_rule_files()


def rule_by_id(regulation, rule_id):
    for compiled in rule_set(regulation).rules:
        if compiled.rule.id == rule_id:
            return compiled
    raise LookupError(f"no rule {rule_id!r} in {regulation}")


def rule_case_params():
    return [
        pytest.param(regulation, rule_id, outcome, id=f"{regulation}-{rule_id}-{outcome}")
        for regulation, rules in CASES.items()
        for rule_id in rules
        for outcome in OUTCOMES
    ]


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def rules_dir(tmp_path):
    """A copy of the shipped rules folder that a test may break."""
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target)
    return target


def write_rules(rules_dir, regulation, rules):
    path = rules_dir / f"{regulation}.json"
    path.write_text(json.dumps({"regulation": regulation, "rules": rules}), encoding="utf-8")
    return path


def valid_rule(**changes):
    rule = {
        "id": "logging-retained",
        "control_id": "CC7.2",
        "title": "Activity is logged",
        "severity": "high",
        "entity_types": ["agent"],
        "facts": ["logging.enabled", "logging.retention_days"],
        "expression": "logging.enabled && logging.retention_days >= 365",
        "remediation": "Turn on logging.",
    }
    rule.update(changes)
    return rule


def problems_for(rules_dir, rule):
    write_rules(rules_dir, "SOC2", [rule])
    with pytest.raises(RuleFileError) as raised:
        rule_set("SOC2", rules_dir)
    return raised.value.problems


# Shipped rule files


def test_regulations_have_enough_rules():
    rule_sets = shipped_rules()

    assert set(rule_sets) == set(Regulation)
    for regulation, compiled in rule_sets.items():
        assert len(compiled.rules) >= MIN_RULES_PER_REGULATION, regulation


def test_rule_controls_in_catalog():
    for regulation, compiled in shipped_rules().items():
        for rule in (item.rule for item in compiled.rules):
            assert rule.control_id in catalog_ids()[regulation], (regulation, rule.id)


@pytest.mark.django_db
def test_rule_controls_in_control_table():
    stored = set(Control.objects.values_list("regulation", "control_id"))

    for regulation, compiled in shipped_rules().items():
        for rule in (item.rule for item in compiled.rules):
            assert (regulation.value, rule.control_id) in stored, (regulation, rule.id)


def test_rule_cases_cover_every_rule():
    for regulation, compiled in shipped_rules().items():
        shipped_ids = {item.rule.id for item in compiled.rules}
        assert set(CASES[regulation.value]) == shipped_ids, regulation


def test_rule_cases_use_applicable_types():
    for regulation, rules in CASES.items():
        for rule_id, case in rules.items():
            rule = rule_by_id(regulation, rule_id).rule
            assert case["entity_type"] in rule.entity_types, (regulation, rule_id)


@pytest.mark.parametrize(("regulation", "rule_id", "outcome"), rule_case_params())
def test_rule_case(regulation, rule_id, outcome):
    case = CASES[regulation][rule_id]
    compiled = rule_by_id(regulation, rule_id)

    result = evaluate_rule(compiled, case["entity_type"], case[outcome])

    assert result.status == OUTCOMES[outcome], result.evidence
    assert result.evidence["rule"] == rule_id


def test_rules_not_applicable_to_other_types():
    checked = 0
    for compiled_set in shipped_rules().values():
        for compiled in compiled_set.rules:
            case = CASES[compiled.rule.regulation.value][compiled.rule.id]
            for entity_type in set(EntityType.values) - compiled.rule.entity_types:
                result = evaluate_rule(compiled, entity_type, case["pass"])
                assert result.status == FindingStatus.NOT_APPLICABLE, compiled.rule.id
                assert result.evidence["entity_type"] == entity_type
                assert f"not to {entity_type} entities" in result.description
                checked += 1
    assert checked > 0


def test_remediation_only_when_not_passing():
    compiled = rule_by_id("SOC2", "logging-retained")
    case = CASES["SOC2"]["logging-retained"]

    assert evaluate_rule(compiled, "agent", case["pass"]).remediation == ""
    assert evaluate_rule(compiled, "agent", case["fail"]).remediation == compiled.rule.remediation
    assert (
        "logging.retention_days"
        in evaluate_rule(compiled, "agent", case["not_assessed"]).remediation
    )


def test_vocabulary_facts_are_all_used():
    used = {
        path
        for compiled_set in shipped_rules().values()
        for compiled in compiled_set.rules
        for path in compiled.rule.facts
    }
    vocabulary, problems = parse_vocabulary(
        json.loads((RULES_DIR / FACTS_FILE_NAME).read_text(encoding="utf-8"))
    )

    assert problems == []
    assert set(vocabulary) - used == set()


def test_vocabulary_is_documented():
    text = (REPOSITORY / "docs" / "rules.md").read_text(encoding="utf-8")
    vocabulary, _ = parse_vocabulary(
        json.loads((RULES_DIR / FACTS_FILE_NAME).read_text(encoding="utf-8"))
    )

    undocumented = [path for path in vocabulary if f"`{path}`" not in text]
    assert undocumented == []


# Evaluation


def test_evidence_contains_facts_read():
    compiled = rule_by_id("SOC2", "logging-retained")

    result = evaluate_rule(
        compiled, "agent", {"logging": {"enabled": True, "retention_days": 30}, "other": 1}
    )

    assert result.status == FindingStatus.FAIL
    assert result.evidence["facts"] == {"logging.enabled": True, "logging.retention_days": 30}
    assert result.evidence["expression"] == compiled.rule.expression
    assert "logging.retention_days = 30" in result.description


def test_missing_fact_recorded_in_evidence():
    compiled = rule_by_id("SOC2", "logging-retained")

    result = evaluate_rule(compiled, "agent", {"logging": {"enabled": True}})

    assert result.status == FindingStatus.NOT_ASSESSED
    assert result.evidence["missing"] == ["logging.retention_days"]
    assert "error" in result.evidence


def test_null_fact_counts_as_missing():
    compiled = rule_by_id("SOC2", "logging-retained")

    result = evaluate_rule(
        compiled, "agent", {"logging": {"enabled": True, "retention_days": None}}
    )

    assert result.status == FindingStatus.NOT_ASSESSED
    assert result.evidence["missing"] == ["logging.retention_days"]


def test_irrelevant_missing_fact_still_decides():
    compiled = rule_by_id("HIPAA", "business-associates")

    result = evaluate_rule(compiled, "agent", {"phi": {"processed": False}})

    assert result.status == FindingStatus.PASS
    assert result.evidence["missing"] == ["baa.signed"]


def test_false_conjunct_fails_without_fact():
    compiled = rule_by_id("SOC2", "logging-retained")

    result = evaluate_rule(compiled, "agent", {"logging": {"enabled": False}})

    assert result.status == FindingStatus.FAIL


@pytest.mark.parametrize(
    ("facts", "message"),
    [
        ({"logging": {"enabled": "true", "retention_days": 400}}, "expected bool"),
        ({"logging": {"enabled": True, "retention_days": True}}, "expected int"),
        ({"logging": {"enabled": True, "retention_days": 400.5}}, "expected int"),
        ({"logging": {"enabled": True, "retention_days": 2**64}}, "64-bit"),
        ({"logging": "enabled"}, "expected an object"),
    ],
)
def test_type_mismatch_not_assessed(facts, message):
    compiled = rule_by_id("SOC2", "logging-retained")

    result = evaluate_rule(compiled, "agent", facts)

    assert result.status == FindingStatus.NOT_ASSESSED
    assert message in " ".join(result.evidence["invalid"].values())


def test_wrong_type_blocks_irrelevant_fact():
    compiled = rule_by_id("HIPAA", "business-associates")

    result = evaluate_rule(compiled, "agent", {"phi": {"processed": False}, "baa": {"signed": 1}})

    assert result.status == FindingStatus.NOT_ASSESSED
    assert set(result.evidence["invalid"]) == {"baa.signed"}


def test_oversized_list_not_assessed():
    compiled = rule_by_id("SOC2", "least-privilege-scopes")
    scopes = [f"scope{index}.read" for index in range(MAX_LIST_ITEMS + 1)]

    result = evaluate_rule(compiled, "agent", {"access": {"scopes": scopes}})

    assert result.status == FindingStatus.NOT_ASSESSED
    assert "maximum" in result.evidence["invalid"]["access.scopes"]


def test_integer_accepted_for_double_fact():
    compiled = rule_by_id("SOC2", "accuracy-target")

    result = evaluate_rule(compiled, "model", {"testing": {"accuracy": 1, "accuracy_target": 0.9}})

    assert result.status == FindingStatus.PASS


@pytest.mark.parametrize(
    ("scopes", "expected"),
    [
        (["claims.read"], FindingStatus.PASS),
        (["*"], FindingStatus.FAIL),
        (["claims:*"], FindingStatus.FAIL),
        (["claims.*"], FindingStatus.FAIL),
        (["claims.read", "admin:*"], FindingStatus.FAIL),
    ],
)
def test_wildcard_scopes(scopes, expected):
    compiled = rule_by_id("ISO27001", "least-privilege-scopes")

    result = evaluate_rule(compiled, "agent", {"access": {"scopes": scopes}})

    assert result.status == expected


@pytest.mark.django_db
def test_entity_facts_owner_from_column(tenant):
    entity = Entity.objects.create(
        tenant=tenant,
        entity_type=EntityType.AGENT,
        name="Agent",
        owner="Claims Operations",
        attributes={"logging": {"enabled": True}},
    )

    assert entity_facts(entity) == {"logging": {"enabled": True}, "owner": "Claims Operations"}


@pytest.mark.django_db
def test_entity_facts_owner_from_attributes(tenant):
    entity = Entity.objects.create(
        tenant=tenant,
        entity_type=EntityType.AGENT,
        name="Agent",
        owner="Column owner",
        attributes={"owner": "Attribute owner"},
    )

    assert entity_facts(entity)["owner"] == "Attribute owner"


@pytest.mark.django_db
def test_blank_owner_fails_rule(tenant):
    entity = Entity.objects.create(tenant=tenant, entity_type=EntityType.MODEL, name="Model")
    compiled = rule_by_id("SOC2", "owner-named")

    result = evaluate_rule(compiled, entity.entity_type, entity_facts(entity))

    assert result.status == FindingStatus.FAIL


# Rule-set version and compile cache


def test_version_is_sha256_of_files(rules_dir):
    version = rule_set("SOC2", rules_dir).version

    assert version == rule_set_version(read_rule_files(rules_dir))
    assert len(version) == 64
    assert rule_set("GDPR", rules_dir).version == version


def test_version_changes_with_file(rules_dir):
    before = rule_set("SOC2", rules_dir).version
    path = rules_dir / "GDPR.json"
    path.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")

    after = rule_set("SOC2", rules_dir)

    assert after.version != before


def test_second_evaluation_does_not_recompile():
    with mock.patch.object(
        rules_loader, "_compile_program", wraps=rules_loader._compile_program
    ) as compile_program:
        first = rule_set("SOC2")
        compiles_after_first = compile_program.call_count
        evaluate_rule(first.rules[0], "agent", {"owner": "Ops"})

        second = rule_set("SOC2")
        evaluate_rule(second.rules[0], "agent", {"owner": "Ops"})

    assert compiles_after_first >= len(first.rules)
    assert compile_program.call_count == compiles_after_first
    assert second is first
    assert second.rules[0].program is first.rules[0].program


def test_edited_rule_file_recompiles(rules_dir):
    first = rule_set("SOC2", rules_dir)
    write_rules(rules_dir, "SOC2", [valid_rule()])

    second = rule_set("SOC2", rules_dir)

    assert second is not first
    assert [compiled.rule.id for compiled in second.rules] == ["logging-retained"]


# Rule file validation


def test_valid_rule_loads(rules_dir):
    write_rules(rules_dir, "SOC2", [valid_rule()])

    compiled = rule_set("SOC2", rules_dir)

    assert compiled.rules[0].rule.control_id == "CC7.2"


def test_error_names_file_and_rule(rules_dir):
    write_rules(rules_dir, "SOC2", [valid_rule(control_id="CC9.9")])

    with pytest.raises(RuleFileError) as raised:
        rule_set("SOC2", rules_dir)

    message = str(raised.value)
    assert str(rules_dir / "SOC2.json") in message
    assert "rule 'logging-retained'" in message
    assert "CC9.9" in message


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"control_id": "CC9.9"}, "unknown control"),
        ({"control_id": "cc_7_2"}, "canonical form 'CC7.2'"),
        ({"severity": "urgent"}, "invalid severity 'urgent'"),
        ({"entity_types": ["agent", "robot"]}, "unknown entity types ['robot']"),
        ({"entity_types": []}, "entity_types must be a non-empty list"),
        ({"id": "Logging Retained"}, "invalid id"),
        ({"title": ""}, "title must be a non-empty string"),
        ({"facts": []}, "facts must be a non-empty list"),
        ({"expression": "logging.enabled &&"}, "invalid CEL expression"),
        (
            {"expression": "logging.enabled && logging.retention_days >= '365'"},
            "no matching overload",
        ),
        ({"expression": "logging.retention_days"}, "returns INT, expected a boolean"),
        (
            {"expression": "logging.enabled && logging.tamper_evident"},
            "reads fact 'logging.tamper_evident', which is not in its facts list",
        ),
        (
            {"expression": "logging.enabled && logging.retention_days >= 365 && secret.value"},
            "reads 'secret.value', which is not a fact",
        ),
        (
            {"facts": ["logging.enabled", "logging.retention_days", "owner"]},
            "facts ['owner'] are listed but the expression does not read them",
        ),
        ({"facts": ["logging.enabled", "logging.level"]}, "unknown facts ['logging.level']"),
        ({"expression": "logging.enabled || " * 200 + "logging.enabled"}, "the maximum is"),
    ],
)
def test_rule_validation_errors(rules_dir, changes, expected):
    problems = problems_for(rules_dir, valid_rule(**changes))

    assert len(problems) == 1, problems
    assert expected in problems[0]
    assert "SOC2.json" in problems[0]


def test_missing_and_unknown_keys(rules_dir):
    rule = valid_rule(notes="extra")
    del rule["remediation"]

    problems = problems_for(rules_dir, rule)

    assert len(problems) == 2
    assert "missing keys: remediation" in problems[0]
    assert "unknown keys: notes" in problems[1]


def test_duplicate_control_and_id(rules_dir):
    second = valid_rule(id="logging-again")
    third = valid_rule(control_id="CC7.3")

    write_rules(rules_dir, "SOC2", [valid_rule(), second, third])
    with pytest.raises(RuleFileError) as raised:
        rule_set("SOC2", rules_dir)

    message = str(raised.value)
    assert "rule 'logging-again': control CC7.2 already has rule 'logging-retained'" in message
    assert "rule 'logging-retained': duplicate rule id" in message


def test_all_problems_reported_together(rules_dir):
    write_rules(
        rules_dir,
        "SOC2",
        [valid_rule(severity="urgent"), valid_rule(id="second", control_id="CC7.3", title="")],
    )

    with pytest.raises(RuleFileError) as raised:
        rule_set("SOC2", rules_dir)

    assert len(raised.value.problems) == 2


def test_invalid_json_names_file(rules_dir):
    (rules_dir / "HIPAA.json").write_text("{not json", encoding="utf-8")

    with pytest.raises(RuleFileError, match=r"HIPAA\.json: invalid JSON"):
        rule_set("HIPAA", rules_dir)


def test_regulation_mismatch(rules_dir):
    path = rules_dir / "GDPR.json"
    path.write_text(json.dumps({"regulation": "HIPAA", "rules": [valid_rule()]}), encoding="utf-8")

    with pytest.raises(RuleFileError, match="the file name says 'GDPR'"):
        rule_set("GDPR", rules_dir)


def test_missing_regulation_file(rules_dir):
    (rules_dir / "EU_AI_ACT.json").unlink()

    with pytest.raises(RuleFileError, match=r"EU_AI_ACT\.json: file not found"):
        rule_set("EU_AI_ACT", rules_dir)


def test_unexpected_file_rejected(rules_dir):
    (rules_dir / "SOC3.json").write_text("{}", encoding="utf-8")

    with pytest.raises(RuleFileError, match=r"SOC3\.json: unexpected file"):
        validate_rule_files(rules_dir)


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        ([{"path": "a.b", "type": "bool", "description": "x"}] * 2, "declared twice"),
        ([{"path": "Bad-Path", "type": "bool", "description": "x"}], "invalid path"),
        ([{"path": "logging.in", "type": "bool", "description": "x"}], "invalid path"),
        ([{"path": "a", "type": "date", "description": "x"}], "unknown type 'date'"),
        ([{"path": "a", "type": "bool", "description": ""}], "missing description"),
        (
            [
                {"path": "a", "type": "bool", "description": "x"},
                {"path": "a.b", "type": "bool", "description": "x"},
            ],
            "fact 'a' is a prefix of fact 'a.b'",
        ),
    ],
)
def test_vocabulary_validation(rules_dir, facts, expected):
    (rules_dir / FACTS_FILE_NAME).write_text(json.dumps({"facts": facts}), encoding="utf-8")

    with pytest.raises(RuleFileError) as raised:
        rule_set("SOC2", rules_dir)

    assert expected in str(raised.value)
    assert FACTS_FILE_NAME in str(raised.value)


# The documented example


def documented_example():
    text = (REPOSITORY / "docs" / "rules.md").read_text(encoding="utf-8")
    section = text.split("## Example attributes", 1)[1]
    block = section.split("```json\n", 1)[1].split("\n```", 1)[0]
    return json.loads(block)


def test_documented_example_outcomes():
    facts = {**documented_example(), "owner": "Claims Operations"}
    expected_failures = {
        ("SOC2", "CC6.2"),
        ("ISO27001", "A.5.17"),
        ("HIPAA", "164.308(a)(5)(ii)(D)"),
        ("HIPAA", "164.312(b)"),
        ("EU_AI_ACT", "Art. 27"),
    }

    failures, unexpected = set(), []
    for regulation, compiled_set in shipped_rules().items():
        for compiled in compiled_set.rules:
            result = evaluate_rule(compiled, EntityType.AGENT, facts)
            if result.status == FindingStatus.FAIL:
                failures.add((regulation.value, compiled.rule.control_id))
            elif result.status == FindingStatus.NOT_ASSESSED:
                unexpected.append((regulation.value, compiled.rule.id))

    assert unexpected == []
    assert failures == expected_failures
