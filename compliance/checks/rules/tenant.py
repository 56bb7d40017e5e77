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
    CompiledRule,
    Rule,
    RuleSet,
    _compile_program,
    _describe_compile_error,
    load_vocabulary,
    rule_set,
)

logger = logging.getLogger(__name__)

TENANT_RULE_FILE = "tenant rule"
IDENTIFIER_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_cache = {}
_cache_lock = threading.Lock()


def expression_facts(expression):
    """Return the fact paths that ``expression`` reads, in vocabulary order.

    Raises ``ValueError`` with a message for the person who wrote the
    expression when it is empty or too long, does not compile, reads a name
    that is not a fact of the vocabulary, returns something other than a
    boolean or reads no fact at all.
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
        raise ValueError(_describe_compile_error(error, vocabulary)) from error
    if program.return_type() != cel.Type.BOOL:
        raise ValueError(
            f"The expression returns {program.return_type().name()}, expected a boolean."
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
        remediation=row.remediation or "Record the facts the rule reads, then run the check again.",
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
