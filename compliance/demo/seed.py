"""Demo data: a tenant with users, entities, two real Prowler scans and generated history.

``seed_demo`` can run any number of times. A second run creates nothing that
already exists. It only revokes the previous demo API key and issues a new
one, because a key's plaintext is shown once and never stored. It also sets
the attributes of existing demo entities to the ones below, so a demo
database from an older version gets the current facts.

The entities' attributes are invented demo facts in the vocabulary of
docs/rules.md. The automated checks that ``seed_demo`` runs on them, one per
entity and regulation, are real evaluations of the shipped rules and are
not marked ``is_demo``: the rules and results are genuine, only the facts
are made up.

The generated history is marked ``is_demo`` and its findings carry
``{"demo": true}`` in their evidence, so it is never mistaken for evidence.
It is stable: every random choice comes from a ``random.Random`` seeded with
the entity name, regulation, control and week, so the same week always gets
the same checks.
"""

import datetime as dt
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from compliance.catalog.loader import CATALOG_VERSION, sync_catalog
from compliance.catalog.models import Control, Regulation, Severity
from compliance.checks.automated import run_automated_check
from compliance.checks.importers import import_results
from compliance.checks.models import (
    Check,
    CheckSource,
    Finding,
    FindingStatus,
    status_from_findings,
)
from compliance.checks.rollups import record_rollups
from compliance.checks.rules import tenant_rule_set
from compliance.inventory.models import Entity, EntityType
from compliance.keys.models import ApiKey
from compliance.reports.models import Report
from compliance.reports.services import request_report
from compliance.tenancy.models import Membership, Role, Tenant
from compliance.tenancy.scope import clear_scope

logger = logging.getLogger(__name__)

TENANT_SLUG = "demo"
TENANT_NAME = "Demo Health AI"
TENANT_TIME_ZONE = "Europe/Berlin"
DEMO_PASSWORD = "demo-password-123"  # noqa: S105 - a published demo login, not a secret
API_KEY_NAME = "Demo API key"
API_KEY_ROLE = Role.ADMIN
USERS = [
    ("officer", Role.OFFICER),
    ("auditor", Role.AUDITOR),
    ("auditor-limited", Role.AUDITOR),
    ("admin", Role.ADMIN),
]
# The second auditor is limited to one entity, two regulations and the 90 days
# up to the day of the latest seed_demo run, which moves that period each time,
# so the demo shows what a limited auditor gets. The first auditor is unlimited.
LIMITED_AUDITOR = "auditor-limited"
LIMITED_REGULATIONS = [Regulation.HIPAA, Regulation.SOC2]
LIMITED_DAYS = 90

HISTORY_WEEKS = 26
SKIPPED_WEEK_RATE = 0.08
REGRESSION_WEEK_RATE = 0.12
REGRESSION_FAIL_RATE = 0.3
NOT_ASSESSED_RATE = 0.04
NOT_APPLICABLE_RATE = 0.05
SEVERITY_WEIGHTS = {
    Severity.LOW: 30,
    Severity.MEDIUM: 38,
    Severity.HIGH: 22,
    Severity.CRITICAL: 10,
}

SAMPLES_DIR = Path(__file__).resolve().parent / "data" / "prowler"
PROWLER_SAMPLES = ("example_output_azure.csv", "example_output_aws.ocsf.json")
IMPORT_ENTITY_NAME = "Claims triage agent"
# Reports ready in a new demo: (regulation, period length in days), ending today.
DEMO_REPORTS = [(Regulation.SOC2, 90), (Regulation.HIPAA, 28), (Regulation.EU_AI_ACT, 180)]

# Each entity records the facts its rules read. A few gaps are left open on
# purpose, so the automated checks show failures of several severities, and
# two facts that are not recorded make some rules not assessed.
ENTITIES = [
    {
        "entity_type": EntityType.AGENT,
        "name": "Claims triage agent",
        "description": "Reads incoming health insurance claims, flags likely fraud and routes "
        "each claim to a human reviewer.",
        "owner": "Claims Operations",
        # Open gaps: logs are not tamper-evident, no fundamental rights impact
        # assessment, a 30-minute idle timeout, and whether a decision can be
        # explained is not recorded.
        "attributes": {
            "model_provider": "Azure OpenAI",
            "deployment": {"cloud": "azure", "region": "westeurope"},
            "training": {"operators_trained": True},
            "technical_documentation": {
                "url": "https://docs.demo.example/claims-triage-agent",
                "current": True,
                "retention_years": 10,
            },
            "risk_management": {
                "process": "AI risk management procedure v3",
                "review_interval_days": 180,
            },
            "monitoring": {"performance_tracked": True, "alerting": True},
            "environment": {"segregated": True},
            "access": {
                "scopes": ["claims_db.read", "policy_lookup", "case_router.assign"],
                "unique_identity": True,
                "review_interval_days": 90,
                "deprovisioning_automated": True,
                "mfa_required": True,
                "session_timeout_minutes": 30,
            },
            "credentials": {"rotation_days": 90, "in_secret_store": True},
            "input_validation": {"enabled": True},
            "output_validation": {"enabled": True},
            "encryption": {"at_rest": True, "in_transit": True},
            "vulnerability_management": {"scan_interval_days": 7},
            "logging": {"enabled": True, "retention_days": 400, "tamper_evident": False},
            "incident_reporting": {
                "contact": "security@demo.example",
                "notification_hours": 48,
                "subject_notification_process": True,
            },
            "change_management": {"approval_required": True, "rollback_possible": True},
            "continuity": {"plan_documented": True},
            "vendor": {"risk_assessed": True},
            "testing": {
                "security_tested": True,
                "robustness_tested": True,
                "accuracy": 0.93,
                "accuracy_target": 0.9,
            },
            "phi": {"processed": True},
            "baa": {"signed": True},
            "personal_data": {
                "processed": True,
                "lawful_basis": "contract",
                "minimised": True,
                "special_categories": True,
                "special_category_condition": "health_care",
                "privacy_notice_url": "https://demo.example/privacy",
                "request_response_days": 30,
                "subject_rights_process": True,
                "export_supported": True,
                "processing_record": True,
                "high_risk_processing": True,
                "transfers_outside_eea": False,
                "dpo_contact": "dpo@demo.example",
            },
            "processors": {"dpa_signed": True},
            "dpia": {"on_file": True},
            "automated_decisions": {"significant_effect": True},
            "human_oversight": {"enabled": True, "can_override": True},
            "transparency": {
                "user_notice": True,
                "instructions_url": "https://docs.demo.example/claims-triage-agent/instructions",
            },
            "ai_act": {
                "risk_class": "high",
                "interacts_with_people": True,
                "fria_on_file": False,
                "conformity_declared": True,
                "registered": True,
            },
            "quality_management": {"system": "QMS for AI systems"},
            "post_market_monitoring": {
                "plan_url": "https://docs.demo.example/claims-triage-agent/monitoring"
            },
        },
    },
    {
        "entity_type": EntityType.MODEL,
        "name": "Claims risk scoring model",
        "description": "Gradient-boosted classifier that scores each claim's fraud risk.",
        "owner": "Data Science",
        # Open gaps: accuracy fell below the release target, restores were
        # never tested, and how model copies are deleted is not recorded.
        "attributes": {
            "framework": "xgboost",
            "version": "3.2.0",
            "task": "binary classification",
            "training_dataset": "De-identified claims 2019-2024",
            "metrics": {"auc": 0.91, "false_positive_rate": 0.07},
            "training": {"operators_trained": True},
            "technical_documentation": {
                "url": "https://docs.demo.example/claims-risk-model",
                "current": True,
                "retention_years": 10,
            },
            "risk_management": {
                "process": "AI risk management procedure v3",
                "review_interval_days": 90,
            },
            "monitoring": {"performance_tracked": True, "alerting": True},
            "environment": {"segregated": True},
            "encryption": {"at_rest": True, "in_transit": True},
            "vulnerability_management": {"scan_interval_days": 14},
            "logging": {"enabled": True, "retention_days": 365, "tamper_evident": True},
            "incident_reporting": {
                "contact": "security@demo.example",
                "notification_hours": 48,
                "subject_notification_process": True,
            },
            "change_management": {"approval_required": True, "rollback_possible": True},
            "vendor": {"risk_assessed": True},
            "backup": {"enabled": True, "restore_tested": False},
            "data_governance": {"integrity_verified": True},
            "testing": {
                "security_tested": True,
                "robustness_tested": True,
                "accuracy": 0.87,
                "accuracy_target": 0.88,
            },
            "phi": {"processed": True},
            "baa": {"signed": True},
            "personal_data": {
                "processed": True,
                "lawful_basis": "contract",
                "minimised": True,
                "pseudonymised": True,
                "special_categories": True,
                "special_category_condition": "health_care",
                "processing_record": True,
                "high_risk_processing": True,
                "transfers_outside_eea": False,
                "dpo_contact": "dpo@demo.example",
            },
            "processors": {"dpa_signed": True},
            "dpia": {"on_file": True},
            # The model only scores claims. A reviewer decides, helped by SHAP values.
            "automated_decisions": {"significant_effect": False},
            "human_oversight": {"enabled": True, "can_override": True},
            "transparency": {
                "instructions_url": "https://docs.demo.example/claims-risk-model/model-card",
                "explanations_available": True,
            },
            "ai_act": {
                "risk_class": "high",
                "interacts_with_people": False,
                "conformity_declared": True,
                "registered": True,
            },
            "quality_management": {"system": "QMS for AI systems"},
            "post_market_monitoring": {
                "plan_url": "https://docs.demo.example/claims-risk-model/monitoring"
            },
        },
    },
    {
        "entity_type": EntityType.DATASET,
        "name": "De-identified claims 2019-2024",
        "description": "Historical claims with direct identifiers removed, used to train and "
        "validate the risk model.",
        "owner": "Data Governance",
        # Open gaps: access is reviewed twice a year, and people cannot export
        # their records in a machine-readable format.
        "attributes": {
            "records": 4_200_000,
            "deidentification": "HIPAA Safe Harbor",
            "storage": {"cloud": "aws", "region": "us-east-1", "service": "s3"},
            "data": {"classification": "restricted"},
            "technical_documentation": {
                "url": "https://docs.demo.example/datasets/claims-2019-2024",
                "current": True,
                "retention_years": 10,
            },
            "risk_management": {
                "process": "Data protection risk procedure v2",
                "review_interval_days": 365,
            },
            "access": {"review_interval_days": 180, "deprovisioning_automated": True},
            "encryption": {"at_rest": True, "in_transit": True},
            "incident_reporting": {
                "contact": "security@demo.example",
                "notification_hours": 48,
                "subject_notification_process": True,
            },
            "backup": {"enabled": True, "restore_tested": True},
            "data_governance": {
                "disposal_process": True,
                "lineage_documented": True,
                "quality_checks": True,
                "bias_examined": True,
                "integrity_verified": True,
            },
            # Safe Harbor de-identification takes the data out of HIPAA, but
            # under the GDPR it is still pseudonymised personal data.
            "phi": {"processed": False},
            "personal_data": {
                "processed": True,
                "retention_days": 2555,
                "lawful_basis": "legitimate_interests",
                "minimised": True,
                "pseudonymised": True,
                "special_categories": True,
                "special_category_condition": "health_care",
                "privacy_notice_url": "https://demo.example/privacy",
                "request_response_days": 30,
                "subject_rights_process": True,
                "export_supported": False,
                "processing_record": True,
                "high_risk_processing": True,
                "transfers_outside_eea": True,
                "transfer_safeguard": "standard_contractual_clauses",
                "dpo_contact": "dpo@demo.example",
            },
            "processors": {"dpa_signed": True},
            "dpia": {"on_file": True},
        },
    },
    {
        "entity_type": EntityType.WORKFLOW,
        "name": "Prior authorization review",
        "description": "Intake, automated triage, clinical review and decision letter for "
        "prior authorization requests.",
        "owner": "Utilization Management",
        # Open gaps: vulnerability scans run every 60 days, the breach
        # procedure allows 96 hours to notify the authority, and the workflow
        # is not yet registered in the EU database.
        "attributes": {
            "steps": ["intake", "agent triage", "clinical review", "decision letter"],
            "agents": ["Claims triage agent"],
            "sla_hours": 72,
            "training": {"operators_trained": True},
            "technical_documentation": {
                "url": "https://docs.demo.example/prior-authorization",
                "current": True,
                "retention_years": 10,
            },
            "risk_management": {
                "process": "AI risk management procedure v3",
                "review_interval_days": 365,
            },
            "monitoring": {"performance_tracked": True, "alerting": True},
            "environment": {"segregated": True},
            "access": {
                "scopes": ["intake.read", "case_router.assign", "letters.send"],
                "unique_identity": True,
                "review_interval_days": 90,
                "deprovisioning_automated": True,
                "mfa_required": True,
                "session_timeout_minutes": 15,
            },
            "credentials": {"rotation_days": 60, "in_secret_store": True},
            "input_validation": {"enabled": True},
            "output_validation": {"enabled": True},
            "encryption": {"at_rest": True, "in_transit": True},
            "vulnerability_management": {"scan_interval_days": 60},
            "logging": {"enabled": True, "retention_days": 730, "tamper_evident": True},
            "incident_reporting": {
                "contact": "privacy-incidents@demo.example",
                "notification_hours": 96,
                "subject_notification_process": True,
            },
            "change_management": {"approval_required": True, "rollback_possible": True},
            "continuity": {"plan_documented": True},
            "data_governance": {"disposal_process": True},
            "testing": {"security_tested": True},
            "phi": {"processed": True},
            "baa": {"signed": True},
            "personal_data": {
                "processed": True,
                "retention_days": 3650,
                "lawful_basis": "contract",
                "minimised": True,
                "special_categories": True,
                "special_category_condition": "health_care",
                "privacy_notice_url": "https://demo.example/privacy",
                "request_response_days": 30,
                "subject_rights_process": True,
                "export_supported": True,
                "processing_record": True,
                "high_risk_processing": True,
                "transfers_outside_eea": False,
                "dpo_contact": "dpo@demo.example",
            },
            "processors": {"dpa_signed": True},
            "dpia": {"on_file": True},
            "automated_decisions": {"significant_effect": True},
            "human_oversight": {"enabled": True, "can_override": True},
            "transparency": {
                "user_notice": True,
                "instructions_url": "https://docs.demo.example/prior-authorization/instructions",
                "explanations_available": True,
            },
            "ai_act": {
                "risk_class": "high",
                "interacts_with_people": True,
                "fria_on_file": True,
                "conformity_declared": True,
                "registered": False,
            },
            "quality_management": {"system": "QMS for AI systems"},
            "post_market_monitoring": {
                "plan_url": "https://docs.demo.example/prior-authorization/monitoring"
            },
        },
    },
]

# Controls the generated history reports on: the ones an AI claims system is
# typically assessed against, all present in the bundled catalog.
DEMO_CONTROLS = {
    Regulation.SOC2: [
        "CC1.1",
        "CC2.1",
        "CC3.2",
        "CC4.1",
        "CC5.2",
        "CC6.1",
        "CC6.2",
        "CC6.3",
        "CC6.6",
        "CC6.7",
        "CC7.1",
        "CC7.2",
        "CC7.3",
        "CC8.1",
        "CC9.2",
        "A1.2",
        "C1.1",
        "PI1.2",
    ],
    Regulation.ISO27001: [
        "A.5.1",
        "A.5.9",
        "A.5.15",
        "A.5.23",
        "A.5.24",
        "A.5.34",
        "A.8.2",
        "A.8.5",
        "A.8.8",
        "A.8.12",
        "A.8.15",
        "A.8.16",
        "A.8.24",
        "A.8.25",
        "A.8.28",
        "A.8.32",
    ],
    Regulation.GDPR: [
        "Art. 5",
        "Art. 6",
        "Art. 9",
        "Art. 13",
        "Art. 22",
        "Art. 25",
        "Art. 28",
        "Art. 30",
        "Art. 32",
        "Art. 33",
        "Art. 35",
        "Art. 44",
    ],
    Regulation.HIPAA: [
        "164.308(a)(1)(ii)(A)",
        "164.308(a)(1)(ii)(B)",
        "164.308(a)(1)(ii)(D)",
        "164.308(a)(3)",
        "164.308(a)(4)(ii)(B)",
        "164.308(a)(5)(ii)(C)",
        "164.308(a)(6)(ii)",
        "164.308(a)(7)(ii)(A)",
        "164.312(a)(1)",
        "164.312(a)(2)(i)",
        "164.312(a)(2)(iv)",
        "164.312(b)",
        "164.312(c)(1)",
        "164.312(d)",
        "164.312(e)(1)",
        "164.312(e)(2)(ii)",
    ],
    Regulation.EU_AI_ACT: [
        "Art. 9",
        "Art. 10",
        "Art. 11",
        "Art. 12",
        "Art. 13",
        "Art. 14",
        "Art. 15",
        "Art. 17",
        "Art. 26",
        "Art. 27",
        "Art. 50",
        "Art. 72",
        "Art. 73",
        "Annex IV",
    ],
}

GAPS = [
    "the owner's sign-off is missing",
    "the last review is older than 90 days",
    "logs are kept for less than the required retention period",
    "the risk register entry does not cover the current model version",
    "the access review found accounts of people who have left",
    "the documentation does not match the deployed version",
    "the test evidence is from a previous release",
]


@dataclass
class SeedResult:
    """The counts of one ``seed_demo`` run, and the new API key's plaintext."""

    tenant: Tenant
    api_key: str
    users: list = field(default_factory=list)
    entities_created: int = 0
    entities_updated: int = 0
    checks_created: int = 0
    findings_created: int = 0
    files_imported: int = 0
    files_already_imported: int = 0
    keys_revoked: int = 0
    reports_created: int = 0
    automated_checks_created: int = 0


def _tenant():
    tenant, _ = Tenant.objects.get_or_create(
        slug=TENANT_SLUG, defaults={"name": TENANT_NAME, "time_zone": TENANT_TIME_ZONE}
    )
    return tenant


def _users(tenant):
    """Create the demo users and memberships. A password is set only on a new user."""
    user_model = get_user_model()
    users = {}
    for username, role in USERS:
        user, created = user_model.objects.get_or_create(
            username=username, defaults={"email": f"{username}@demo.example"}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        Membership.objects.update_or_create(user=user, tenant=tenant, defaults={"role": role})
        users[username] = user
    return users


def _limit_auditors(tenant, users, entity, today):
    """Leave the plain auditor unlimited and limit the second one to ``entity`` and 90 days."""
    memberships = Membership.objects.filter(tenant=tenant)
    clear_scope(memberships.get(user=users["auditor"]))

    limited = memberships.get(user=users[LIMITED_AUDITOR])
    limited.scope_regulations = [regulation.value for regulation in LIMITED_REGULATIONS]
    limited.scope_start = today - dt.timedelta(days=LIMITED_DAYS - 1)
    limited.scope_end = today
    limited.save(update_fields=["scope_regulations", "scope_start", "scope_end"])
    limited.scope_entities.set([entity])


def _entities(tenant):
    """Return the demo entities by name, and how many were created and updated.

    An existing demo entity whose type, description, owner or attributes
    differ from its spec is overwritten, and one that matches is not saved,
    so a second run changes nothing.
    """
    entities, created_count, updated_count = {}, 0, 0
    for spec in ENTITIES:
        defaults = {key: value for key, value in spec.items() if key != "name"}
        entity, created = Entity.objects.get_or_create(
            tenant=tenant, name=spec["name"], defaults=defaults
        )
        if not created and _update_entity(entity, defaults):
            updated_count += 1
        entities[entity.name] = entity
        created_count += int(created)
    return entities, created_count, updated_count


def _update_entity(entity, values):
    """Set ``values`` on ``entity`` and save it when any of them differs.

    Return whether the entity was saved.
    """
    changed = [name for name, value in values.items() if getattr(entity, name) != value]
    if not changed:
        return False

    for name in changed:
        setattr(entity, name, values[name])
    entity.save(update_fields=[*changed, "updated_at"])
    logger.info("updated demo entity %s: %s", entity.pk, ", ".join(changed))
    return True


def _import_samples(tenant, entity, result):
    for file_name in PROWLER_SAMPLES:
        imported = import_results(tenant, entity, SAMPLES_DIR / file_name)
        if imported.already_imported:
            result.files_already_imported += 1
        else:
            result.files_imported += 1


def _issue_api_key(tenant, created_by):
    """Revoke the active demo keys and return ``(revoked count, new plaintext)``."""
    revoked = 0
    for api_key in ApiKey.objects.active().filter(tenant=tenant, name=API_KEY_NAME):
        api_key.revoke()
        revoked += 1
    _, plaintext = ApiKey.issue(
        tenant=tenant, name=API_KEY_NAME, role=API_KEY_ROLE, created_by=created_by
    )
    return revoked, plaintext


# Generated history


@dataclass(frozen=True)
class ControlProfile:
    """The fixed traits of one control of one entity across all weeks."""

    control: Control
    severity: Severity
    # Share of the history after which the control passes. Below 0 it passed
    # from the start, above 1 it still fails today.
    fixed_at: float
    not_applicable: bool


def _profiles(entity, regulation, controls):
    # Teams fix high and critical gaps first, so those pass by 80% of the
    # history at the latest, while a few low and medium gaps stay open.
    latest_fix = {
        Severity.LOW: 1.15,
        Severity.MEDIUM: 1.1,
        Severity.HIGH: 0.8,
        Severity.CRITICAL: 0.7,
    }
    profiles = []
    for control in controls:
        rng = random.Random(f"{entity.name}|{regulation}|{control.control_id}")  # noqa: S311
        severity = rng.choices(list(SEVERITY_WEIGHTS), weights=SEVERITY_WEIGHTS.values())[0]
        profiles.append(
            ControlProfile(
                control=control,
                severity=severity,
                fixed_at=rng.uniform(-0.6, latest_fix[severity]),
                not_applicable=rng.random() < NOT_APPLICABLE_RATE,
            )
        )
    return profiles


def _status(profile, progress, regression, rng):
    if profile.not_applicable:
        return FindingStatus.NOT_APPLICABLE
    if rng.random() < NOT_ASSESSED_RATE:
        return FindingStatus.NOT_ASSESSED
    if progress < profile.fixed_at:
        return FindingStatus.FAIL
    if regression and rng.random() < REGRESSION_FAIL_RATE:
        return FindingStatus.FAIL
    return FindingStatus.PASS


def _texts(profile, status, entity, rng):
    """Return ``(description, remediation)`` for a generated finding."""
    if status == FindingStatus.PASS:
        return f"Evidence reviewed for {entity.name}: the control operates as designed.", ""
    if status == FindingStatus.NOT_APPLICABLE:
        return f"The control does not apply to this {entity.get_entity_type_display()}.", ""
    if status == FindingStatus.NOT_ASSESSED:
        return "No evidence was collected for this control in this run.", ""
    gap = rng.choice(GAPS)
    return (
        f"Evidence for {entity.name} shows a gap: {gap}.",
        f"Assign an owner for {profile.control.control_id}, close the gap and attach new "
        "evidence before the next weekly check.",
    )


def _finding(check, profile, status, entity, rng):
    control = profile.control
    description, remediation = _texts(profile, status, entity, rng)
    title = f"{control.control_id} {control.title}" if control.title else control.control_id
    return Finding(
        compliance_check=check,
        tenant_id=check.tenant_id,
        entity_id=check.entity_id,
        regulation=check.regulation,
        observed_at=check.created_at,
        finding_id=f"demo:{entity.pk}:{check.regulation}:{control.control_id}:"
        f"{check.created_at:%Y-%m-%d}",
        control_id=control.control_id,
        status=status,
        severity=profile.severity,
        title=title,
        description=description,
        remediation=remediation,
        evidence={"demo": True},
    )


def _week_check(
    tenant, entity, regulation, week_start, progress, profiles, today, rule_set_version
):
    """Return ``(check, findings)`` for one week, or ``None`` for a skipped week.

    The check records the current catalog and rule-set versions, as
    ``run_automated_check`` does, because it stands for a weekly run of
    the automated checks.
    """
    rng = random.Random(f"{entity.name}|{regulation}|{week_start.isoformat()}")  # noqa: S311
    if rng.random() < SKIPPED_WEEK_RATE:
        return None
    day = week_start + dt.timedelta(days=rng.randint(0, 4))
    # Only days before today, so that a second run on the same day adds nothing.
    if day >= today:
        return None

    created_at = dt.datetime.combine(
        day, dt.time(rng.randint(7, 17), rng.randint(0, 59)), tzinfo=tenant.zone
    )
    check = Check(
        tenant=tenant,
        entity=entity,
        regulation=regulation,
        scope={"generator": "seed_demo"},
        source=CheckSource.AUTOMATED,
        catalog_version=CATALOG_VERSION,
        rule_set_version=rule_set_version,
        is_demo=True,
        created_at=created_at,
        completed_at=created_at + dt.timedelta(minutes=rng.randint(2, 25)),
    )
    regression = rng.random() < REGRESSION_WEEK_RATE
    findings = [
        _finding(check, profile, _status(profile, progress, regression, rng), entity, rng)
        for profile in profiles
    ]
    check.status = status_from_findings(findings)
    return check, findings


def _history(tenant, entities, today):
    """Build the missing weekly checks of every entity and regulation, unsaved."""
    existing = set(
        Check.objects.filter(tenant=tenant, is_demo=True).values_list(
            "entity_id", "regulation", "created_at"
        )
    )
    controls = {
        (control.regulation, control.control_id): control
        for control in Control.objects.visible_to(tenant).filter(regulation__in=list(DEMO_CONTROLS))
    }
    this_week = today - dt.timedelta(days=today.weekday())
    rule_set_versions = {
        regulation: tenant_rule_set(regulation, tenant).version for regulation in DEMO_CONTROLS
    }

    checks, findings = [], []
    for entity in entities.values():
        for regulation, control_ids in DEMO_CONTROLS.items():
            selected = [controls[(regulation.value, control_id)] for control_id in control_ids]
            profiles = _profiles(entity, regulation, selected)
            for week in range(HISTORY_WEEKS):
                week_start = this_week - dt.timedelta(weeks=HISTORY_WEEKS - 1 - week)
                progress = week / (HISTORY_WEEKS - 1)
                generated = _week_check(
                    tenant,
                    entity,
                    regulation,
                    week_start,
                    progress,
                    profiles,
                    today,
                    rule_set_versions[regulation],
                )
                if generated is None:
                    continue
                check, check_findings = generated
                if (entity.pk, regulation.value, check.created_at) in existing:
                    continue
                checks.append(check)
                findings.extend(check_findings)
    return checks, findings


def _record_history_versions(tenant):
    """Store the current versions on generated checks that an older seed saved without them.

    Return the number of checks updated.
    """
    updated = 0
    for regulation in Regulation:
        updated += Check.objects.filter(
            tenant=tenant, is_demo=True, regulation=regulation, catalog_version=""
        ).update(
            catalog_version=CATALOG_VERSION,
            rule_set_version=tenant_rule_set(regulation, tenant).version,
        )
    return updated


def _automated_checks(tenant, entities):
    """Run every regulation's rules on each entity that has no automated check of it yet.

    Return the number of checks run. The generated history is also stored
    with source ``automated``, but it is marked ``is_demo``, so it does not
    count as an automated check here.
    """
    existing = set(
        Check.objects.filter(
            tenant=tenant, source=CheckSource.AUTOMATED, is_demo=False
        ).values_list("entity_id", "regulation")
    )
    created = 0
    for entity in entities.values():
        for regulation in Regulation:
            if (entity.pk, regulation.value) in existing:
                continue
            run_automated_check(entity, regulation)
            created += 1
    return created


def _reports(tenant, entity, users, today):
    """Generate the demo reports once, so a new demo has reports to open."""
    if Report.objects.for_tenant(tenant).exists():
        return 0
    for regulation, days in DEMO_REPORTS:
        request_report(
            tenant=tenant,
            entity=entity,
            regulation=regulation,
            period_start=today - dt.timedelta(days=days - 1),
            period_end=today,
            user=users["officer"],
            in_background=False,
        )
    return len(DEMO_REPORTS)


def seed_demo(today=None):
    """Create or complete the demo tenant and return a ``SeedResult``.

    ``today`` (a date in the tenant's time zone, default the current one) is
    the end of the generated history: checks fall on days before it.
    """
    with transaction.atomic():
        if not Control.objects.shipped().exists():
            sync_catalog()
        tenant = _tenant()
        today = today or timezone.now().astimezone(tenant.zone).date()

        users = _users(tenant)
        entities, entities_created, entities_updated = _entities(tenant)
        revoked, plaintext = _issue_api_key(tenant, users["admin"])
        _limit_auditors(tenant, users, entities[IMPORT_ENTITY_NAME], today)
        result = SeedResult(
            tenant=tenant,
            api_key=plaintext,
            users=[(username, role) for username, role in USERS],
            entities_created=entities_created,
            entities_updated=entities_updated,
            keys_revoked=revoked,
        )
        _import_samples(tenant, entities[IMPORT_ENTITY_NAME], result)

        versions_recorded = _record_history_versions(tenant)
        if versions_recorded:
            logger.info("recorded versions on %d generated demo checks", versions_recorded)
        checks, findings = _history(tenant, entities, today)
        Check.objects.bulk_create(checks)
        Finding.objects.bulk_create(findings, batch_size=2000)
        record_rollups(checks, findings)
        result.checks_created = len(checks)
        result.findings_created = len(findings)
        # Before the reports, so that a new demo's reports include the rule results.
        result.automated_checks_created = _automated_checks(tenant, entities)
        result.reports_created = _reports(tenant, entities[IMPORT_ENTITY_NAME], users, today)

    logger.info(
        "seeded demo tenant %s: %d entities created, %d updated, %d checks, %d findings, "
        "%d automated checks created, %d key(s) revoked",
        tenant.slug,
        result.entities_created,
        result.entities_updated,
        result.checks_created,
        result.findings_created,
        result.automated_checks_created,
        result.keys_revoked,
    )
    return result
