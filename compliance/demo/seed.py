"""Demo data: a tenant with users, entities, two real Prowler scans and generated history.

``seed_demo`` can run any number of times. A second run creates nothing that
already exists. It only revokes the previous demo API key and issues a new
one, because a key's plaintext is shown once and never stored.

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

from compliance.catalog.loader import sync_catalog
from compliance.catalog.models import Control, Regulation, Severity
from compliance.checks.importers import import_results
from compliance.checks.models import (
    Check,
    CheckSource,
    Finding,
    FindingStatus,
    status_from_findings,
)
from compliance.inventory.models import Entity, EntityType
from compliance.keys.models import ApiKey
from compliance.reports.models import Report
from compliance.reports.services import request_report
from compliance.tenancy.models import Membership, Role, Tenant

logger = logging.getLogger(__name__)

TENANT_SLUG = "demo"
TENANT_NAME = "Demo Health AI"
TENANT_TIME_ZONE = "Europe/Berlin"
DEMO_PASSWORD = "demo-password-123"  # noqa: S105 - a published demo login, not a secret
API_KEY_NAME = "Demo API key"
API_KEY_ROLE = Role.ADMIN
USERS = [("officer", Role.OFFICER), ("auditor", Role.AUDITOR), ("admin", Role.ADMIN)]

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

ENTITIES = [
    {
        "entity_type": EntityType.AGENT,
        "name": "Claims triage agent",
        "description": "Reads incoming health insurance claims, flags likely fraud and routes "
        "each claim to a human reviewer.",
        "owner": "Claims Operations",
        "attributes": {
            "model_provider": "Azure OpenAI",
            "autonomy": "human-in-the-loop",
            "tools": ["claims_db.read", "policy_lookup", "case_router.assign"],
            "processes_phi": True,
            "eu_ai_act_risk_class": "high",
            "deployment": {"cloud": "azure", "region": "westeurope"},
            "human_oversight": "a reviewer approves every denial",
        },
    },
    {
        "entity_type": EntityType.MODEL,
        "name": "Claims risk scoring model",
        "description": "Gradient-boosted classifier that scores each claim's fraud risk.",
        "owner": "Data Science",
        "attributes": {
            "framework": "xgboost",
            "version": "3.2.0",
            "task": "binary classification",
            "training_dataset": "De-identified claims 2019-2024",
            "metrics": {"auc": 0.91, "false_positive_rate": 0.07},
            "explainability": "SHAP values per decision",
            "fairness_review": "quarterly",
        },
    },
    {
        "entity_type": EntityType.DATASET,
        "name": "De-identified claims 2019-2024",
        "description": "Historical claims with direct identifiers removed, used to train and "
        "validate the risk model.",
        "owner": "Data Governance",
        "attributes": {
            "records": 4_200_000,
            "contains_phi": False,
            "deidentification": "HIPAA Safe Harbor",
            "lawful_basis": "GDPR Art. 6(1)(f) legitimate interests",
            "retention_years": 7,
            "storage": {"cloud": "aws", "service": "s3", "encryption": "SSE-KMS"},
        },
    },
    {
        "entity_type": EntityType.WORKFLOW,
        "name": "Prior authorization review",
        "description": "Intake, automated triage, clinical review and decision letter for "
        "prior authorization requests.",
        "owner": "Utilization Management",
        "attributes": {
            "steps": ["intake", "agent triage", "clinical review", "decision letter"],
            "agents": ["Claims triage agent"],
            "human_review_required": True,
            "sla_hours": 72,
            "audit_log": "enabled",
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
    checks_created: int = 0
    findings_created: int = 0
    files_imported: int = 0
    files_already_imported: int = 0
    keys_revoked: int = 0
    reports_created: int = 0


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


def _entities(tenant):
    """Return the demo entities by name, and how many were created."""
    entities, created_count = {}, 0
    for spec in ENTITIES:
        defaults = {key: value for key, value in spec.items() if key != "name"}
        entity, created = Entity.objects.get_or_create(
            tenant=tenant, name=spec["name"], defaults=defaults
        )
        entities[entity.name] = entity
        created_count += int(created)
    return entities, created_count


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


def _week_check(tenant, entity, regulation, week_start, progress, profiles, today):
    """Return ``(check, findings)`` for one week, or ``None`` for a skipped week."""
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
        for control in Control.objects.filter(regulation__in=list(DEMO_CONTROLS))
    }
    this_week = today - dt.timedelta(days=today.weekday())

    checks, findings = [], []
    for entity in entities.values():
        for regulation, control_ids in DEMO_CONTROLS.items():
            selected = [controls[(regulation.value, control_id)] for control_id in control_ids]
            profiles = _profiles(entity, regulation, selected)
            for week in range(HISTORY_WEEKS):
                week_start = this_week - dt.timedelta(weeks=HISTORY_WEEKS - 1 - week)
                progress = week / (HISTORY_WEEKS - 1)
                generated = _week_check(
                    tenant, entity, regulation, week_start, progress, profiles, today
                )
                if generated is None:
                    continue
                check, check_findings = generated
                if (entity.pk, regulation.value, check.created_at) in existing:
                    continue
                checks.append(check)
                findings.extend(check_findings)
    return checks, findings


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
        if not Control.objects.exists():
            sync_catalog()
        tenant = _tenant()
        today = today or timezone.now().astimezone(tenant.zone).date()

        users = _users(tenant)
        entities, entities_created = _entities(tenant)
        revoked, plaintext = _issue_api_key(tenant, users["admin"])
        result = SeedResult(
            tenant=tenant,
            api_key=plaintext,
            users=[(username, role) for username, role in USERS],
            entities_created=entities_created,
            keys_revoked=revoked,
        )
        _import_samples(tenant, entities[IMPORT_ENTITY_NAME], result)

        checks, findings = _history(tenant, entities, today)
        Check.objects.bulk_create(checks)
        Finding.objects.bulk_create(findings, batch_size=2000)
        result.checks_created = len(checks)
        result.findings_created = len(findings)
        result.reports_created = _reports(tenant, entities[IMPORT_ENTITY_NAME], users, today)

    logger.info(
        "seeded demo tenant %s: %d entities, %d checks, %d findings created, %d key(s) revoked",
        tenant.slug,
        result.entities_created,
        result.checks_created,
        result.findings_created,
        result.keys_revoked,
    )
    return result
