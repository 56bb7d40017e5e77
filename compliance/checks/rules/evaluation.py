"""Evaluate one compiled rule against an entity's facts.

Outcomes:

* ``not_applicable`` when the entity's type is not in the rule's
  ``entity_types``.
* ``not_assessed`` when a fact the rule lists has a value of the wrong type,
  or when evaluation ends in a CEL error. A missing fact is left unbound,
  so reading it is an error, unless CEL's ``&&``, ``||`` and ``?:`` make
  the result independent of it (``!phi.processed || baa.signed`` passes
  without ``baa.signed`` when ``phi.processed`` is false).
* ``pass`` or ``fail`` when the expression returns true or false.

The evidence names the rule and its expression and contains the facts the
rule read with their values. Where there are any, it also lists missing
facts, invalid facts and the CEL error.
"""

import logging
from dataclasses import dataclass, field

from cel_expr_python import cel

from compliance.checks.models import FindingStatus
from compliance.checks.rules.facts import MISSING, FactValueError, coerce, lookup

logger = logging.getLogger(__name__)

# The failure description quotes the facts read; the evidence keeps them whole.
MAX_SUMMARY_LENGTH = 500


@dataclass(frozen=True)
class RuleResult:
    """The outcome of one rule for one entity, ready to store as a finding."""

    status: FindingStatus
    description: str
    remediation: str
    evidence: dict = field(default_factory=dict)


@dataclass
class _ReadFacts:
    bound: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)
    missing: list = field(default_factory=list)
    invalid: dict = field(default_factory=dict)


def evaluate_rule(compiled, entity_type, facts):
    """Return the ``RuleResult`` of ``compiled`` for an entity of ``entity_type`` with ``facts``."""
    rule = compiled.rule
    if entity_type not in rule.entity_types:
        return _not_applicable(rule, entity_type)

    read = _read_facts(compiled, facts)
    evidence = {"rule": rule.id, "expression": rule.expression, "facts": read.values}
    if read.missing:
        evidence["missing"] = read.missing
    if read.invalid:
        evidence["invalid"] = read.invalid
        return _invalid_facts(evidence, read.invalid)

    outcome, error = _run(compiled, read.bound)
    if error is not None:
        evidence["error"] = error
        return _evaluation_error(rule, evidence, read.missing, error)
    if outcome:
        return RuleResult(
            status=FindingStatus.PASS,
            description="The recorded facts meet the rule.",
            remediation="",
            evidence=evidence,
        )
    return RuleResult(
        status=FindingStatus.FAIL,
        description=f"The recorded facts do not meet the rule: {_summary(read.values)}.",
        remediation=rule.remediation,
        evidence=evidence,
    )


def _read_facts(compiled, facts):
    read = _ReadFacts()
    for fact in compiled.facts:
        try:
            value = lookup(facts, fact.path)
            if value is MISSING:
                read.missing.append(fact.path)
                continue
            read.bound[fact.path] = coerce(fact, value)
        except FactValueError as error:
            read.invalid[fact.path] = str(error)
            continue
        read.values[fact.path] = value
    return read


def _run(compiled, bound):
    """Return ``(bool result, None)`` or ``(None, error message)``."""
    try:
        value = compiled.program.eval(data=bound)
    except (RuntimeError, ValueError, TypeError) as error:
        return None, str(error)
    if value.type() == cel.Type.ERROR:
        return None, str(value.value())
    result = value.value()
    if not isinstance(result, bool):
        return None, f"expression returned {result!r}, expected a boolean"
    return result, None


def _not_applicable(rule, entity_type):
    applies_to = sorted(rule.entity_types)
    description = (
        f"The rule applies to {', '.join(applies_to)} entities, not to {entity_type} entities."
    )
    return RuleResult(
        status=FindingStatus.NOT_APPLICABLE,
        description=description,
        remediation="",
        evidence={"rule": rule.id, "entity_type": entity_type, "applies_to": applies_to},
    )


def _invalid_facts(evidence, invalid):
    problems = "; ".join(invalid.values())
    return RuleResult(
        status=FindingStatus.NOT_ASSESSED,
        description=f"Not assessed because facts have invalid values: {problems}.",
        remediation=(
            f"Correct {', '.join(invalid)} in the entity's attributes to the type the "
            "description names, then run the check again."
        ),
        evidence=evidence,
    )


def _evaluation_error(rule, evidence, missing, error):
    if missing:
        return RuleResult(
            status=FindingStatus.NOT_ASSESSED,
            description=f"Not assessed because facts are missing: {', '.join(missing)}.",
            remediation=(
                f"Record {', '.join(missing)} in the entity's attributes, then run the check again."
            ),
            evidence=evidence,
        )
    logger.warning("rule %s of %s failed to evaluate: %s", rule.id, rule.regulation, error)
    return RuleResult(
        status=FindingStatus.NOT_ASSESSED,
        description=f"Not assessed because the rule failed to evaluate: {error}",
        remediation=(
            f"Check the recorded values of {', '.join(evidence['facts']) or 'the facts'} "
            f"against the expression {rule.expression}, then run the check again."
        ),
        evidence=evidence,
    )


def _summary(values):
    text = ", ".join(f"{path} = {_format(value)}" for path, value in values.items())
    if len(text) > MAX_SUMMARY_LENGTH:
        return text[: MAX_SUMMARY_LENGTH - 1] + "…"
    return text


def _format(value):
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_format(item) for item in value) + "]"
    return str(value)
