"""The rule engine: compliance rules as CEL expressions over an entity's facts.

``loader`` reads and validates the rule files and caches their compiled
programs. ``facts`` defines the fact vocabulary and reads facts from
attributes. ``evaluation`` turns one rule and one entity's facts into a
pass, fail, not applicable or not assessed result. docs/rules.md describes
the rule files and the vocabulary.
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
    rule_set,
    validate_rule_files,
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
    "entity_facts",
    "evaluate_rule",
    "rule_set",
    "validate_rule_files",
]
