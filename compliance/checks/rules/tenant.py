"""Tenants' own rules: validate their expressions and add them to the shipped rule set.

A tenant's rule set for a regulation is the shipped rule set plus the
tenant's enabled ``TenantRule`` rows. Its version is the shipped version
when the tenant has no enabled rules, and otherwise the SHA-256 of the
shipped version and the content of each tenant rule, so a check records
exactly which rules produced it.

Compiled tenant rule sets are cached per process by tenant and regulation.
Saving or deleting a tenant rule drops the entry (see ``forget_tenant``), and
a version mismatch rebuilds it, so another process's edit is picked up on the
next check.
"""

import difflib
import hashlib
import json
import logging
import re
import threading

from cel_expr_python import cel
from django.db.models.signals import post_delete, post_save

from compliance.catalog.models import Regulation, Severity, TenantRule
from compliance.checks.rules.loader import (
    MAX_EXPRESSION_LENGTH,
    UNDECLARED_PATTERN,
    CompiledRule,
    Rule,
    RuleSet,
    _compile_program,
    load_vocabulary,
    rule_set,
)

logger = logging.getLogger(__name__)

TENANT_RULE_FILE = "tenant rule"
IDENTIFIER_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The pointer to the rule form's list of facts, added to the messages below.
FACTS_HINT = 'The facts you can use are listed under "Available facts" on the rule form.'

# cel-expr-python reports ``ERROR: <input>:line:column: message`` followed by
# the expression and a caret line. Only the first error is shown to people.
CEL_ERROR_PATTERN = re.compile(r"ERROR: <input>:(\d+):(\d+): ([^\n]*)")
CEL_OPERATORS = {
    "_==_": "==",
    "_!=_": "!=",
    "_<_": "<",
    "_<=_": "<=",
    "_>_": ">",
    "_>=_": ">=",
    "_+_": "+",
    "_-_": "-",
    "_*_": "*",
    "_/_": "/",
    "_%_": "%",
    "_&&_": "&&",
    "_||_": "||",
    "!_": "!",
    "-_": "-",
    "@in": "in",
    "_[_]": "[]",
    "_?_:_": "?:",
}
OVERLOAD_PATTERN = re.compile(r"found no matching overload for '([^']+)' applied to '\(([^)]*)\)'")
TOKEN_PATTERN = re.compile(r"token recognition error at: '([^']*)'")
INPUT_PATTERN = re.compile(r"(?:mismatched|extraneous) input '([^']*)'")

_cache = {}
_cache_lock = threading.Lock()


def expression_facts(expression):
    """Return the fact paths that ``expression`` reads, in vocabulary order.

    Raises ``ValueError`` with a message for the person who wrote the
    expression when it is empty or too long, or does not compile. It also
    raises when the expression reads a name that is not a fact of the
    vocabulary, returns something other than a boolean or reads no fact.
    """
    if not isinstance(expression, str) or not expression.strip():
        raise ValueError("Enter a CEL expression that returns true or false.")
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise ValueError(
            f"The expression has {len(expression)} characters; "
            f"the maximum is {MAX_EXPRESSION_LENGTH}."
        )

    vocabulary = load_vocabulary()
    declarations = {path: fact.cel_type for path, fact in vocabulary.items()}
    try:
        program = _compile_program(declarations, expression)
    except (RuntimeError, ValueError) as error:
        raise ValueError(describe_expression_error(str(error), expression, vocabulary)) from error
    if program.return_type() != cel.Type.BOOL:
        raise ValueError(
            f"The expression returns a value of type {program.return_type().name().lower()}, "
            "not true or false. Compare the value, for example with >= or ==."
        )

    # A fact is read when the expression stops compiling without it. Only
    # facts whose first segment appears as a word can be read, which saves
    # compiling once per fact of the whole vocabulary.
    words = set(IDENTIFIER_PATTERN.findall(expression))
    candidates = [path for path in vocabulary if path.split(".")[0] in words]
    read = [path for path in candidates if not _compiles_without(declarations, path, expression)]
    if not read:
        raise ValueError("The expression reads no fact; use at least one fact of the vocabulary.")
    return read


def describe_expression_error(message, expression, vocabulary):
    """Return a message for people from CEL's compile error ``message`` for ``expression``."""
    match = CEL_ERROR_PATTERN.search(message)
    if match is None:
        return f"The expression is not valid CEL: {message.strip().splitlines()[0]}"
    line, column, detail = int(match.group(1)), int(match.group(2)), match.group(3)
    where = f"column {column}" if "\n" not in expression else f"line {line}, column {column}"

    undeclared = UNDECLARED_PATTERN.search(detail)
    if undeclared:
        return _unknown_name_message(undeclared.group(1), vocabulary)
    overload = OVERLOAD_PATTERN.search(detail)
    if overload:
        operator = CEL_OPERATORS.get(overload.group(1), overload.group(1))
        operands = " and ".join(overload.group(2).split(", "))
        return (
            f"At {where}, {operator} cannot be applied to {operands}. Compare each fact "
            "with a value of its type, such as a number for an int fact or text in quotes "
            "for a string fact."
        )
    if detail.startswith("Syntax error"):
        return _syntax_error_message(detail, where)
    detail = detail.removesuffix(" (in container '')")
    return f"The expression is not valid CEL at {where}: {detail}."


def _unknown_name_message(name, vocabulary):
    close = difflib.get_close_matches(name, list(vocabulary), n=1)
    suggestion = f" Did you mean {close[0]}?" if close else ""
    return f"{name} is not a known fact.{suggestion} {FACTS_HINT}"


def _syntax_error_message(detail, where):
    token = TOKEN_PATTERN.search(detail)
    if token:
        return (
            f"{token.group(1).strip()!r} at {where} is not valid CEL. Use && for and, || for "
            "or, ! for not, and == or != to compare."
        )
    unexpected = INPUT_PATTERN.search(detail)
    if unexpected and unexpected.group(1) == "<EOF>":
        return (
            f"The expression ends too early, at {where}: a value, a fact or a closing "
            "bracket is missing."
        )
    if unexpected:
        return f"Unexpected {unexpected.group(1)!r} at {where}. Check the operators and brackets."
    return f"The expression has a syntax error at {where}. Check the operators and brackets."


def failing_rule_remediation(facts, expression):
    """Return the remediation of a failed tenant rule whose author gave none."""
    return (
        f"Change the entity's values of {', '.join(facts)} so that {expression} "
        "becomes true, then run the check again."
    )


def _compiles_without(declarations, path, expression):
    reduced = {name: cel_type for name, cel_type in declarations.items() if name != path}
    try:
        _compile_program(reduced, expression)
    except (RuntimeError, ValueError):
        return False
    return True


def tenant_rule_set(regulation, tenant):
    """Return the ``RuleSet`` of ``regulation`` for ``tenant``: shipped plus enabled own rules.

    Raises ``RuleFileError`` when the shipped rule files are invalid. A tenant
    rule that no longer compiles, because the vocabulary changed after it was
    saved, is left out with a warning but still counts in the version.
    """
    regulation = Regulation.parse(regulation)
    shipped = rule_set(regulation)
    rows = list(
        TenantRule.objects.filter(tenant=tenant, regulation=regulation, enabled=True)
        .select_related("control")
        .order_by("created_at", "id")
    )
    if not rows:
        return shipped

    version = tenant_rule_set_version(shipped.version, rows)
    key = (tenant.pk, regulation)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None and cached.version == version:
            return cached

    compiled = tuple(filter(None, (_compile_row(row) for row in rows)))
    combined = RuleSet(regulation=regulation, version=version, rules=shipped.rules + compiled)
    with _cache_lock:
        _cache[key] = combined
    logger.info(
        "compiled %d tenant rules of tenant %s for %s, rule set %s",
        len(compiled),
        tenant.pk,
        regulation,
        version[:12],
    )
    return combined


def tenant_rule_set_version(shipped_version, rows):
    """Return the SHA-256 over the shipped version and every field that changes a result."""
    digest = hashlib.sha256(shipped_version.encode())
    for row in rows:
        content = {
            "id": str(row.pk),
            "control_id": row.control.control_id,
            "title": row.title,
            "severity": row.severity,
            "entity_types": sorted(row.entity_types),
            "facts": list(row.facts),
            "expression": row.expression,
            "remediation": row.remediation,
        }
        digest.update(b"\0")
        digest.update(json.dumps(content, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()


def _compile_row(row):
    vocabulary = load_vocabulary()
    unknown = [path for path in row.facts if path not in vocabulary]
    declarations = {path: vocabulary[path].cel_type for path in row.facts if path in vocabulary}
    try:
        if unknown or not declarations:
            raise ValueError(f"facts {unknown!r} are not in the vocabulary")
        program = _compile_program(declarations, row.expression)
    except (RuntimeError, ValueError) as error:
        logger.warning(
            "tenant rule %s of tenant %s left out, it no longer compiles: %s",
            row.pk,
            row.tenant_id,
            error,
        )
        return None

    rule = Rule(
        regulation=Regulation(row.regulation),
        id=row.rule_id,
        control_id=row.control.control_id,
        title=row.title,
        severity=Severity(row.severity),
        entity_types=frozenset(row.entity_types),
        facts=tuple(row.facts),
        expression=row.expression,
        remediation=row.remediation or failing_rule_remediation(row.facts, row.expression),
        file_name=TENANT_RULE_FILE,
    )
    facts = tuple(vocabulary[path] for path in row.facts)
    return CompiledRule(rule=rule, program=program, facts=facts)


def forget_tenant(tenant_id, regulation=None):
    """Drop the cached rule sets of ``tenant_id``, of one regulation or of all."""
    with _cache_lock:
        for key in [k for k in _cache if k[0] == tenant_id]:
            if regulation is None or key[1] == regulation:
                del _cache[key]


def clear_tenant_cache():
    """Forget every tenant's compiled rule set."""
    with _cache_lock:
        _cache.clear()


def _forget_saved_rule(sender, instance, **kwargs):
    forget_tenant(instance.tenant_id, instance.regulation)


# The cache lives in this module, so connecting here covers every process that can fill it.
post_save.connect(_forget_saved_rule, sender=TenantRule, dispatch_uid="tenant-rule-saved")
post_delete.connect(_forget_saved_rule, sender=TenantRule, dispatch_uid="tenant-rule-deleted")
