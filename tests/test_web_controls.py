"""The controls pages: catalog order, automated rules and per-tenant coverage."""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from compliance.catalog.models import Control, Regulation, Severity
from compliance.checks.models import FindingStatus
from compliance.checks.rules import rule_set
from compliance.inventory.models import Entity, EntityType
from compliance.tenancy.models import Role
from tests.conftest import make_check

PASS = FindingStatus.PASS
FAIL = FindingStatus.FAIL
NOT_ASSESSED = FindingStatus.NOT_ASSESSED
NOT_APPLICABLE = FindingStatus.NOT_APPLICABLE


@pytest.fixture
def model_entity(tenant):
    return Entity.objects.create(
        tenant=tenant, entity_type=EntityType.MODEL, name="Claims risk model", owner="Data"
    )


@pytest.fixture
def coverage_data(entity, model_entity, other_entity):
    """Create checks of two entities of the tenant and one check of another tenant.

    The latest SOC 2 statuses in the last 90 days are these. CC6.1 passes
    for the agent and is not applicable to the model. CC7.2 is not assessed
    for the agent and fails for the model. CC1.1 fails for the model, which
    has a pass and a fail at the same instant. CC8.1 has findings only older
    than 90 days or in the other tenant, so it has no evidence.
    """
    now = timezone.now()
    make_check(
        entity,
        "SOC2",
        now - dt.timedelta(days=10),
        [("CC6.1", FAIL, Severity.HIGH), ("CC7.2", PASS, Severity.HIGH)],
    )
    make_check(
        entity,
        "SOC2",
        now - dt.timedelta(days=2),
        [("CC6.1", PASS, Severity.HIGH), ("CC7.2", NOT_ASSESSED, Severity.HIGH)],
    )
    make_check(entity, "SOC2", now - dt.timedelta(days=120), [("CC8.1", FAIL, Severity.HIGH)])
    make_check(
        model_entity,
        "SOC2",
        now - dt.timedelta(days=5),
        [
            ("CC6.1", NOT_APPLICABLE, Severity.HIGH),
            ("CC7.2", FAIL, Severity.HIGH),
            ("CC1.1", PASS, Severity.LOW),
            ("CC1.1", FAIL, Severity.LOW),
        ],
    )
    make_check(entity, "HIPAA", now - dt.timedelta(days=3), [("164.312(b)", PASS, Severity.HIGH)])
    make_check(
        other_entity,
        "SOC2",
        now - dt.timedelta(days=1),
        [("CC8.1", FAIL, Severity.HIGH), ("CC6.1", FAIL, Severity.HIGH), ("CC9.1", PASS, "low")],
    )


def html_of(response):
    return response.content.decode()


def detail_rows(response):
    return {row.control.control_id: row for row in response.context["rows"]}


def coverage_of(row):
    return {item.status: item.count for item in row.coverage}


def test_list_renders_for_auditor(client, login_as, coverage_data):
    login_as(Role.AUDITOR)

    response = client.get(reverse("web:control-list"))

    assert response.status_code == 200
    html = response.content.decode()
    assert "<caption" in html
    for regulation in Regulation:
        assert reverse("web:control-detail", kwargs={"regulation": regulation.value}) in html
    assert 'aria-current="page">Controls</a>' in html


def test_list_counts_per_regulation(client, login_as, coverage_data):
    login_as(Role.AUDITOR)

    response = client.get(reverse("web:control-list"))

    summaries = {summary.regulation: summary for summary in response.context["summaries"]}
    soc2 = summaries[Regulation.SOC2]
    assert soc2.controls == Control.objects.filter(regulation="SOC2").count()
    assert soc2.with_rule == len(rule_set("SOC2").rules)
    assert soc2.with_evidence == 3
    assert summaries[Regulation.HIPAA].with_evidence == 1
    assert summaries[Regulation.GDPR].with_evidence == 0
    assert summaries[Regulation.EU_AI_ACT].with_rule == len(rule_set("EU_AI_ACT").rules)


def test_list_evidence_counts_whole_first_day(client, login_as, tenant, entity):
    """Evidence counts from the start of the local day 90 days ago, as the day rollups keep it."""
    gdpr = Control.objects.filter(regulation="GDPR").order_by("control_id").first()
    hipaa = Control.objects.filter(regulation="HIPAA").order_by("control_id").first()
    first_day = (timezone.now() - dt.timedelta(days=90)).astimezone(tenant.zone).date()
    midnight = dt.datetime.combine(first_day, dt.time.min, tzinfo=tenant.zone)
    make_check(entity, "GDPR", midnight, [(gdpr.control_id, PASS, Severity.LOW)])
    before = midnight - dt.timedelta(seconds=1)
    make_check(entity, "HIPAA", before, [(hipaa.control_id, PASS, Severity.LOW)])
    login_as(Role.AUDITOR)

    response = client.get(reverse("web:control-list"))

    summaries = {summary.regulation: summary for summary in response.context["summaries"]}
    assert summaries[Regulation.GDPR].with_evidence == 1
    assert summaries[Regulation.HIPAA].with_evidence == 0


def test_detail_renders_for_auditor(client, login_as, coverage_data):
    login_as(Role.AUDITOR)

    response = client.get(reverse("web:control-detail", kwargs={"regulation": "SOC2"}))

    assert response.status_code == 200
    html = response.content.decode()
    assert "<caption" in html
    assert '<th scope="rowgroup" colspan="4">CC6 Logical and physical access</th>' in html
    rule = rule_set("SOC2").by_control()["CC6.1"].rule
    assert rule.title in html
    assert "No evidence" in html
    assert re.search(r"\b61 controls in the catalog, 24 with an automated rule, 3 with", html)


def test_detail_catalog_order(client, login_as, coverage_data):
    login_as(Role.AUDITOR)

    response = client.get(reverse("web:control-detail", kwargs={"regulation": "SOC2"}))

    displayed_ids = [row.control.control_id for row in response.context["rows"]]
    catalog = list(
        Control.objects.filter(regulation="SOC2")
        .order_by("sort_key")
        .values_list("control_id", flat=True)
    )
    assert displayed_ids == catalog


def test_detail_coverage_counts(client, login_as, coverage_data):
    login_as(Role.AUDITOR)

    response = client.get(reverse("web:control-detail", kwargs={"regulation": "SOC2"}))

    rows = detail_rows(response)
    assert coverage_of(rows["CC6.1"]) == {"pass": 1, "not_applicable": 1}
    assert coverage_of(rows["CC7.2"]) == {"fail": 1, "not_assessed": 1}
    assert coverage_of(rows["CC1.1"]) == {"fail": 1}
    assert coverage_of(rows["CC8.1"]) == {}
    assert coverage_of(rows["CC9.1"]) == {}
    assert response.context["with_evidence"] == 3


def test_detail_coverage_links_to_checks(client, login_as, coverage_data):
    login_as(Role.AUDITOR)
    response = client.get(reverse("web:control-detail", kwargs={"regulation": "SOC2"}))
    start = response.context["coverage_start"].isoformat()
    link = re.search(r'href="([^"]*control=CC6.1&amp;control_status=pass[^"]*)"', html_of(response))

    checks = client.get(link.group(1).replace("&amp;", "&"))

    assert f"date_from={start}" in link.group(1)
    listed = checks.context["page"].object_list
    assert len(listed) == coverage_of(detail_rows(response)["CC6.1"])["pass"]
    assert [check.entity.name for check in listed] == ["Claims triage agent"]


def test_detail_every_count_matches_its_checks(client, login_as, coverage_data):
    login_as(Role.AUDITOR)
    response = client.get(reverse("web:control-detail", kwargs={"regulation": "SOC2"}))
    links = re.findall(
        r'<a class="coverage-link" href="([^"]+)"[^>]*>.*?</span> (\d+)</a>', html_of(response)
    )

    assert links
    for link, count in links:
        listed = client.get(link.replace("&amp;", "&")).context["page"].object_list
        assert len(listed) == int(count), link


def test_detail_rule_columns(client, login_as, coverage_data):
    login_as(Role.AUDITOR)

    response = client.get(reverse("web:control-detail", kwargs={"regulation": "SOC2"}))

    rows = detail_rows(response)
    rules = rule_set("SOC2").by_control()
    assert rows["CC6.1"].rule == rules["CC6.1"].rule
    assert rows["CC6.1"].rule_applies_to == "Agent, Workflow"
    assert rows["CC1.1"].rule is None
    assert response.context["with_rule"] == len(rules)


def test_detail_excludes_other_tenant(client, login_as, coverage_data, other_tenant):
    login_as(Role.AUDITOR, username="globex-auditor", member_of=other_tenant)

    response = client.get(reverse("web:control-detail", kwargs={"regulation": "SOC2"}))

    rows = detail_rows(response)
    assert coverage_of(rows["CC8.1"]) == {"fail": 1}
    assert coverage_of(rows["CC6.1"]) == {"fail": 1}
    assert coverage_of(rows["CC7.2"]) == {}
    assert response.context["with_evidence"] == 3


def test_detail_unknown_regulation_404(client, login_as):
    login_as(Role.AUDITOR)

    response = client.get(reverse("web:control-detail", kwargs={"regulation": "PCI_DSS"}))

    assert response.status_code == 404


def test_pages_need_login(client, db):
    for url in (
        reverse("web:control-list"),
        reverse("web:control-detail", kwargs={"regulation": "SOC2"}),
    ):
        response = client.get(url)

        assert response.status_code == 302
        assert response["Location"].startswith(reverse("web:login"))


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.OFFICER, Role.ADMIN])
def test_nav_links_controls_every_role(client, login_as, role):
    login_as(role)

    response = client.get(reverse("web:report-list"))

    assert f'href="{reverse("web:control-list")}"' in response.content.decode()


def test_detail_query_count(client, login_as, coverage_data, django_assert_max_num_queries):
    login_as(Role.AUDITOR)
    url = reverse("web:control-detail", kwargs={"regulation": "SOC2"})

    # Session, user, memberships, the membership's entity scope, the controls,
    # the tenant's rules and the coverage: none per control.
    with django_assert_max_num_queries(7):
        response = client.get(url)

    assert response.status_code == 200
    assert len(response.context["rows"]) == Control.objects.filter(regulation="SOC2").count()
    assert response.context["with_evidence"] == 3


def test_list_query_count(client, login_as, coverage_data, django_assert_max_num_queries):
    login_as(Role.AUDITOR)

    # Session, user, memberships, the entity scope, controls, tenant rules and evidence.
    with django_assert_max_num_queries(7):
        response = client.get(reverse("web:control-list"))

    assert response.status_code == 200


def test_detail_styles_pass_csp(client, login_as, coverage_data):
    login_as(Role.AUDITOR)

    response = client.get(reverse("web:control-detail", kwargs={"regulation": "SOC2"}))

    html = response.content.decode()
    assert ' style="' not in html
    nonces = re.findall(r'<style nonce="([^"]*)">', html)
    assert len(nonces) == 2
    assert all(nonces)
    assert f"'nonce-{nonces[0]}'" in response["Content-Security-Policy"]
