"""The seed_demo command: demo tenant, users, entities, imports, history and automated checks."""

import datetime as dt
import io
import re
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import RequestFactory
from django.utils import timezone
from rest_framework.exceptions import AuthenticationFailed

from compliance.catalog.models import Control, Regulation
from compliance.checks.models import Check, CheckSource, Finding, FindingStatus
from compliance.demo.seed import API_KEY_NAME, DEMO_PASSWORD, ENTITIES
from compliance.inventory.models import Entity, EntityType
from compliance.keys.authentication import ApiKeyAuthentication
from compliance.keys.models import ApiKey
from compliance.reports.models import Report, ReportStatus
from compliance.tenancy.models import Membership, Tenant
from compliance.tenancy.scope import UNLIMITED, membership_scope

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 3, 31)
KEY_LINE = re.compile(r"^Demo API key \(admin role\): (cmp_\S+)$", re.MULTILINE)


def seed(today=TODAY):
    """Run seed_demo and return ``(stdout, printed API key)``."""
    stdout = io.StringIO()
    call_command("seed_demo", "--today", today.isoformat(), stdout=stdout)
    output = stdout.getvalue()
    match = KEY_LINE.search(output)
    assert match, output
    return output, match.group(1)


def authenticate(key):
    request = RequestFactory().get("/api/", headers={"X-API-Key": key})
    return ApiKeyAuthentication().authenticate(request)


def row_counts():
    return {
        "tenants": Tenant.objects.count(),
        "users": get_user_model().objects.count(),
        "memberships": Membership.objects.count(),
        "entities": Entity.objects.count(),
        "checks": Check.objects.count(),
        "findings": Finding.objects.count(),
        "reports": Report.objects.count(),
    }


def test_seed_creates_tenant_and_logins():
    output, _ = seed()

    tenant = Tenant.objects.get(slug="demo")
    assert tenant.name == "Demo Health AI"
    assert tenant.time_zone == "Europe/Berlin"
    roles = dict(Membership.objects.filter(tenant=tenant).values_list("user__username", "role"))
    assert roles == {
        "officer": "officer",
        "auditor": "auditor",
        "auditor-limited": "auditor",
        "admin": "admin",
    }
    for username in roles:
        assert get_user_model().objects.get(username=username).check_password(DEMO_PASSWORD)
    assert f"Demo logins (password {DEMO_PASSWORD}):" in output
    assert "  officer  Compliance officer" in output


def test_seed_limits_second_auditor():
    seed()
    seed()

    memberships = Membership.objects.filter(tenant__slug="demo")
    plain = memberships.get(user__username="auditor")
    limited = memberships.get(user__username="auditor-limited")
    assert membership_scope(plain) == UNLIMITED
    assert [entity.name for entity in limited.scope_entities.all()] == ["Claims triage agent"]
    assert limited.scope_regulations == ["HIPAA", "SOC2"]
    assert limited.scope_end == TODAY
    assert limited.scope_start == TODAY - dt.timedelta(days=89)


def test_seed_creates_all_entity_types():
    seed()

    entities = Entity.objects.filter(tenant__slug="demo")
    assert sorted(entities.values_list("entity_type", flat=True)) == sorted(EntityType.values)
    agent = entities.get(name="Claims triage agent")
    assert agent.entity_type == EntityType.AGENT
    assert agent.attributes["phi"] == {"processed": True}
    assert agent.attributes["ai_act"]["risk_class"] == "high"
    assert agent.attributes["human_oversight"] == {"enabled": True, "can_override": True}


def test_seed_imports_prowler_samples():
    seed()

    imported = Check.objects.filter(source=CheckSource.IMPORTED)
    assert {check.entity.name for check in imported} == {"Claims triage agent"}
    assert set(imported.values_list("source_name", flat=True)) == {"prowler"}
    assert len(set(imported.values_list("source_digest", flat=True))) == 2
    assert sorted(imported.values_list("regulation", flat=True)) == [
        "HIPAA",
        "ISO27001",
        "ISO27001",
        "SOC2",
    ]
    assert not imported.filter(is_demo=True).exists()


def test_seed_history_covers_six_months():
    seed()

    history = Check.objects.filter(is_demo=True)
    zone = Tenant.objects.get(slug="demo").zone
    days = [
        created.astimezone(zone).date() for created in history.values_list("created_at", flat=True)
    ]
    assert max(days) < TODAY
    assert min(days) >= TODAY - dt.timedelta(weeks=26)
    assert min(days) <= TODAY - dt.timedelta(weeks=24)
    for entity in Entity.objects.filter(tenant__slug="demo"):
        regulations = set(history.filter(entity=entity).values_list("regulation", flat=True))
        assert regulations == set(Regulation.values)
        weekly = history.filter(entity=entity, regulation=Regulation.GDPR).count()
        assert 20 <= weekly <= 26


def test_seed_history_records_versions():
    seed()

    automated = Check.objects.filter(source=CheckSource.AUTOMATED)
    assert automated.filter(is_demo=True).exists()
    assert not automated.filter(catalog_version="").exists()
    assert not automated.filter(rule_set_version="").exists()


def test_seed_fills_missing_history_versions():
    seed()
    history = Check.objects.filter(is_demo=True)
    history.update(catalog_version="", rule_set_version="")

    seed()

    assert not history.filter(catalog_version="").exists()
    assert not history.filter(rule_set_version="").exists()


def test_seed_history_findings_marked_demo():
    seed()

    findings = Finding.objects.filter(compliance_check__is_demo=True)
    assert findings.exists()
    assert not findings.exclude(evidence={"demo": True}).exists()
    catalog = set(Control.objects.values_list("regulation", "control_id"))
    used = set(findings.values_list("regulation", "control_id"))
    assert used <= catalog
    assert set(findings.values_list("severity", flat=True)) == {"low", "medium", "high", "critical"}
    assert {"pass", "fail"} <= set(findings.values_list("status", flat=True))
    for finding in Finding.objects.filter(compliance_check__is_demo=True)[:200]:
        assert finding.observed_at == finding.compliance_check.created_at


def test_seed_posture_improves():
    seed()

    findings = Finding.objects.filter(compliance_check__is_demo=True)
    middle = dt.datetime.combine(TODAY - dt.timedelta(weeks=13), dt.time.min, tzinfo=dt.UTC)
    early = findings.filter(observed_at__lt=middle)
    late = findings.filter(observed_at__gte=middle)
    early_rate = early.filter(status="pass").count() / early.count()
    late_rate = late.filter(status="pass").count() / late.count()
    assert late_rate > early_rate + 0.15


def test_seed_twice_adds_nothing():
    _, first_key = seed()
    counts = row_counts()

    output, second_key = seed()

    assert row_counts() == counts
    assert second_key != first_key
    summary = output.splitlines()[-1]
    assert summary.startswith("Seeded demo: 0 entities, 0 checks and 0 findings")
    assert "0 entities updated" in summary
    assert "0 automated checks run" in summary


def test_seed_twice_rotates_api_key():
    _, first_key = seed()

    _, second_key = seed()

    active = ApiKey.objects.active().filter(tenant__slug="demo", name=API_KEY_NAME)
    assert active.count() == 1
    assert ApiKey.objects.filter(tenant__slug="demo").count() == 2
    with pytest.raises(AuthenticationFailed):
        authenticate(first_key)
    principal, api_key = authenticate(second_key)
    assert api_key == active.get()
    assert principal.role == "admin"
    assert principal.tenant.slug == "demo"


def test_seed_history_is_stable():
    seed()
    first = set(
        Finding.objects.filter(compliance_check__is_demo=True).values_list(
            "entity__name", "regulation", "observed_at", "control_id", "status", "severity"
        )
    )
    Check.objects.filter(is_demo=True).delete()

    seed()

    second = set(
        Finding.objects.filter(compliance_check__is_demo=True).values_list(
            "entity__name", "regulation", "observed_at", "control_id", "status", "severity"
        )
    )
    assert second == first


def test_seed_later_day_adds_newer_checks():
    seed()
    before = Check.objects.filter(is_demo=True).count()

    seed(today=TODAY + dt.timedelta(days=7))

    assert Check.objects.filter(is_demo=True).count() > before


def test_seed_rejects_bad_today():
    with pytest.raises(CommandError, match="--today: expected a date such as 2026-03-31"):
        call_command("seed_demo", "--today", "31.03.2026", stdout=io.StringIO())


def test_seed_generates_ready_reports():
    seed()

    reports = Report.objects.order_by("regulation")
    assert [(report.regulation, report.status) for report in reports] == [
        ("EU_AI_ACT", ReportStatus.READY),
        ("HIPAA", ReportStatus.READY),
        ("SOC2", ReportStatus.READY),
    ]
    soc2 = reports.get(regulation="SOC2")
    assert soc2.period_end == TODAY
    assert soc2.period_days == 90
    assert soc2.summary["checks"]["total"] > 0
    assert soc2.digest.startswith("sha256:")


def automated_checks():
    return Check.objects.filter(tenant__slug="demo", source=CheckSource.AUTOMATED, is_demo=False)


def test_seed_runs_automated_checks():
    output, _ = seed()

    checks = automated_checks()
    pairs = sorted(checks.values_list("entity__name", "regulation"))
    expected = sorted((spec["name"], regulation) for spec in ENTITIES for regulation in Regulation)
    assert pairs == expected
    assert "20 automated checks run" in output.splitlines()[-1]
    assert not checks.exclude(rule_set_version__regex=r"^[0-9a-f]{64}$").exists()


def test_seed_automated_findings_mixed():
    seed()

    findings = Finding.objects.filter(compliance_check__in=automated_checks())
    statuses = set(findings.values_list("status", flat=True))
    assert statuses == set(FindingStatus.values)
    failing = findings.filter(status=FindingStatus.FAIL)
    assert len(set(failing.values_list("severity", flat=True))) >= 3
    assert findings.filter(status=FindingStatus.PASS).count() > 5 * failing.count()
    assert not findings.filter(evidence__demo=True).exists()


def test_seed_automated_checks_per_regulation_mixed():
    seed()

    for regulation in Regulation:
        findings = Finding.objects.filter(
            compliance_check__in=automated_checks(), regulation=regulation
        )
        statuses = set(findings.values_list("status", flat=True))
        assert {FindingStatus.PASS, FindingStatus.FAIL} <= statuses, regulation
        assert FindingStatus.NOT_APPLICABLE in statuses, regulation


def test_seed_missing_fact_not_assessed():
    seed()

    finding = Finding.objects.get(
        compliance_check__in=automated_checks(),
        entity__name="Claims triage agent",
        regulation=Regulation.EU_AI_ACT,
        control_id="Art. 86",
    )
    assert finding.status == FindingStatus.NOT_ASSESSED
    assert finding.evidence["missing"] == ["transparency.explanations_available"]


def test_seed_twice_runs_no_automated_checks():
    seed()
    first = set(automated_checks().values_list("id", flat=True))

    seed()

    assert set(automated_checks().values_list("id", flat=True)) == first


def test_seed_updates_old_demo_attributes():
    tenant = Tenant.objects.create(slug="demo", name="Demo Health AI", time_zone="Europe/Berlin")
    old = Entity.objects.create(
        tenant=tenant,
        entity_type=EntityType.AGENT,
        name="Claims triage agent",
        owner="Claims Operations",
        attributes={"processes_phi": True, "eu_ai_act_risk_class": "high"},
    )

    output, _ = seed()

    old.refresh_from_db()
    assert "processes_phi" not in old.attributes
    assert old.attributes["phi"] == {"processed": True}
    assert "1 entities updated" in output.splitlines()[-1]
    updated_at = old.updated_at

    seed()

    old.refresh_from_db()
    assert old.updated_at == updated_at


def test_seed_reports_include_automated_checks():
    # The automated checks run now, so only a report period ending today contains them.
    seed(today=timezone.now().astimezone(ZoneInfo("Europe/Berlin")).date())

    soc2 = Report.objects.get(regulation="SOC2")
    finding_ids = {finding["finding_id"] for finding in soc2.findings}
    assert any(finding_id.startswith("rule:SOC2:") for finding_id in finding_ids)
