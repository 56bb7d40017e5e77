"""Run the automated rules of one regulation against an entity and store the check."""

import datetime as dt
import logging

from django.db import transaction
from django.utils import timezone

from compliance.catalog.canonical import canonical_control_id, canonical_form
from compliance.catalog.loader import CATALOG_VERSION
from compliance.catalog.models import Control, Regulation
from compliance.checks.models import Check, CheckSource, Finding, status_from_findings
from compliance.checks.rollups import record_rollups
from compliance.checks.rules import entity_facts, evaluate_rule, tenant_rule_set

logger = logging.getLogger(__name__)

SCOPE_KEYS = {"controls"}
# How long a stored automated check is returned for a repeated request of the same scope.
CHECK_CACHE_AGE = dt.timedelta(hours=24)
FINDING_ID_PREFIX = "rule"


def run_automated_check(entity, regulation, scope=None):
    """Evaluate the regulation's rules for ``entity`` and return the stored ``Check``.

    The rules are the shipped rules plus the enabled rules of the entity's
    tenant. ``scope`` is ``None`` for every rule of the regulation, or
    ``{"controls": [...]}`` to evaluate only the rules of those controls, in
    any spelling that ``canonical_control_id`` accepts, or the canonical
    form of one of the tenant's own controls. Raises ``ValueError``
    naming the control IDs that are unknown or have no rule, and
    ``RuleFileError`` when the rule files are invalid.

    The check and one finding per evaluated control are written in one
    transaction. The check records the canonical controls in its scope, and
    the catalog and rule-set versions (SHA-256 of the rule files, and of the
    tenant's rules when it has any) it used.
    """
    regulation = Regulation.parse(regulation)
    controls = _scope_controls(regulation, scope, entity.tenant_id)
    rules = tenant_rule_set(regulation, entity.tenant)
    selected = _select_rules(rules, controls, regulation)

    created_at = timezone.now()
    facts = entity_facts(entity)
    results = [
        (compiled.rule, evaluate_rule(compiled, entity.entity_type, facts)) for compiled in selected
    ]

    check_scope = {"controls": controls} if controls is not None else {}
    check = _save(entity, regulation, check_scope, rules.version, results, created_at)
    logger.info(
        "automated %s check %s of entity %s: %s, %d findings, rule set %s",
        regulation,
        check.pk,
        entity.pk,
        check.status,
        len(results),
        rules.version[:12],
    )
    return check


def _scope_controls(regulation, scope, tenant_id):
    """Return the canonical control IDs that ``scope`` requests, or ``None`` for all rules."""
    if scope is None:
        return None
    if not isinstance(scope, dict):
        raise ValueError(f"scope must be a mapping such as {{'controls': [...]}}, got {scope!r}.")
    unknown_keys = sorted(set(scope) - SCOPE_KEYS)
    if unknown_keys:
        raise ValueError(f"Unknown scope keys: {', '.join(unknown_keys)}. Use 'controls'.")
    if "controls" not in scope:
        return None

    requested = scope["controls"]
    if isinstance(requested, str) or not isinstance(requested, list | tuple) or not requested:
        raise ValueError("scope['controls'] must be a non-empty list of control IDs.")

    canonical, unknown = [], []
    for raw in requested:
        control_id = _canonical_scope_id(regulation, raw, tenant_id)
        if control_id is None:
            unknown.append(raw)
            continue
        if control_id not in canonical:
            canonical.append(control_id)
    if unknown:
        raise ValueError(
            f"Unknown {regulation.label} control IDs: {', '.join(map(repr, unknown))}."
        )
    return sorted(canonical)


def _canonical_scope_id(regulation, raw, tenant_id):
    """Return the canonical ID of a shipped control or of the tenant's own, else ``None``."""
    try:
        return canonical_control_id(regulation, raw)
    except ValueError:
        pass
    try:
        control_id = canonical_form(regulation, raw)
    except ValueError:
        return None
    own = Control.objects.filter(tenant_id=tenant_id, regulation=regulation, control_id=control_id)
    return control_id if own.exists() else None


def recent_or_new_check(entity, regulation, scope=None, max_age=CHECK_CACHE_AGE):
    """Return a recent check of the same scope and rules, or run a new one.

    The result is ``(check, reused)``. A check is recent when it is younger
    than ``max_age``. Two scopes are the same when they name the same controls in any order and
    spelling. A change of the rule files or of the tenant's rules makes earlier
    checks stale.
    """
    regulation = Regulation.parse(regulation)
    controls = _scope_controls(regulation, scope, entity.tenant_id)
    rules = tenant_rule_set(regulation, entity.tenant)
    recent = (
        Check.objects.filter(
            tenant_id=entity.tenant_id,
            entity=entity,
            regulation=regulation,
            source=CheckSource.AUTOMATED,
            rule_set_version=rules.version,
            created_at__gte=timezone.now() - max_age,
        )
        .order_by("-created_at", "-id")
        .only("id", "scope")
    )
    requested_scope = {"controls": controls} if controls is not None else {}
    for candidate in recent:
        if candidate.scope == requested_scope:
            return Check.objects.get(pk=candidate.pk), True
    return run_automated_check(entity, regulation, scope), False


def _select_rules(rules, controls, regulation):
    if controls is None:
        return list(rules.rules)
    by_control = rules.all_by_control()
    uncovered = [control_id for control_id in controls if control_id not in by_control]
    if uncovered:
        raise ValueError(
            f"No automated rule covers {regulation.label} controls "
            f"{', '.join(map(repr, uncovered))}. "
            f"Controls with rules: {', '.join(sorted(by_control))}."
        )
    return [compiled for control_id in controls for compiled in by_control[control_id]]


def _save(entity, regulation, scope, rule_set_version, results, created_at):
    check = Check(
        tenant_id=entity.tenant_id,
        entity=entity,
        regulation=regulation,
        scope=scope,
        source=CheckSource.AUTOMATED,
        catalog_version=CATALOG_VERSION,
        rule_set_version=rule_set_version,
        created_at=created_at,
        completed_at=timezone.now(),
    )
    findings = [_finding(check, rule, result) for rule, result in results]
    check.status = status_from_findings(findings)
    with transaction.atomic():
        check.save()
        Finding.objects.bulk_create(findings)
        record_rollups([check], findings)
    return check


def _finding(check, rule, result):
    return Finding(
        compliance_check=check,
        tenant_id=check.tenant_id,
        entity_id=check.entity_id,
        regulation=check.regulation,
        observed_at=check.created_at,
        finding_id=f"{FINDING_ID_PREFIX}:{rule.regulation.value}:{rule.id}",
        control_id=rule.control_id,
        status=result.status,
        severity=rule.severity,
        title=rule.title,
        description=result.description,
        evidence={**result.evidence, "rule_set_version": check.rule_set_version},
        remediation=result.remediation,
    )
