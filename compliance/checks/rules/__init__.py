"""The rule engine: compliance rules as CEL expressions over an entity's facts.

``loader`` reads and validates the rule files and caches their compiled
programs. ``facts`` defines the fact vocabulary and reads facts from
attributes. ``evaluation`` turns one rule and one entity's facts into a
pass, fail, not applicable or not assessed result. ``tenant`` validates
tenants' own rules and adds them to a tenant's rule set. docs/rules.md
describes the rule files, the tenant rules and the vocabulary.
"""

from compliance.checks.rules.evaluation import RuleResult, evaluate_rule
from compliance.checks.rules.facts import Fact, FactValueError, entity_facts
from compliance.checks.rules.loader import (
    RULES_DIR,
    CompiledRule,
    Rule,
    RuleFileError,
    RuleSet,
    clear_cache,
    load_vocabulary,
    rule_set,
    validate_rule_files,
)
from compliance.checks.rules.tenant import (
    clear_tenant_cache,
    expression_facts,
    tenant_rule_set,
)

__all__ = [
    "RULES_DIR",
    "CompiledRule",
    "Fact",
    "FactValueError",
    "Rule",
    "RuleFileError",
    "RuleResult",
    "RuleSet",
    "clear_cache",
    "clear_tenant_cache",
    "entity_facts",
    "evaluate_rule",
    "expression_facts",
    "load_vocabulary",
    "rule_set",
    "tenant_rule_set",
    "validate_rule_files",
]
