"""The entity pages: list filters, sorting and pagination, detail, and running a check."""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from compliance.audit.models import AuditAction, AuditEvent
from compliance.catalog.models import Severity
from compliance.checks.models import Check, CheckSource, FindingStatus
from compliance.inventory.models import Entity, EntityType
from compliance.tenancy.models import Role
from compliance.web.views.entities import flatten_facts
from tests.conftest import make_check

LIST_URL = reverse("web:entity-list")
PASS = FindingStatus.PASS
FAIL = FindingStatus.FAIL


def detail_url(entity):
    return reverse("web:entity-detail", kwargs={"entity_id": entity.pk})


def run_check_url(entity):
    return reverse("web:entity-run-check", kwargs={"entity_id": entity.pk})


def listed_names(response):
    return [row["entity"].name for row in response.context["rows"]]


@pytest.fixture
def inventory(tenant, entity):
    """The agent fixture plus a model and a dataset, created in this order."""
    model = Entity.objects.create(
        tenant=tenant, entity_type=EntityType.MODEL, name="Risk scoring model", owner="Data"
    )
    dataset = Entity.objects.create(
        tenant=tenant, entity_type=EntityType.DATASET, name="Archived claims", owner="Data"
    )
    return {"agent": entity, "model": model, "dataset": dataset}


@pytest.fixture
def many_entities(tenant):
    """30 agents named Agent 00 to Agent 29, each with SOC 2 and GDPR checks."""
    now = timezone.now()
    entities = []
    for index in range(30):
        entity = Entity.objects.create(
            tenant=tenant, entity_type=EntityType.AGENT, name=f"Agent {index:02d}"
        )
        make_check(entity, "SOC2", now - dt.timedelta(days=2), [("CC6.1", FAIL, Severity.HIGH)])
        make_check(entity, "SOC2", now - dt.timedelta(days=1), [("CC6.1", PASS, Severity.HIGH)])
        make_check(entity, "GDPR", now - dt.timedelta(days=1), [("Art.5", PASS, Severity.LOW)])
        entities.append(entity)
    return entities


def test_entity_list_shows_type_owner_and_badges(client, login_as, inventory, soc2_history):
    login_as(Role.AUDITOR)

    response = client.get(LIST_URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert listed_names(response) == [
        "Archived claims",
        "Claims triage agent",
        "Risk scoring model",
    ]
    row = response.context["rows"][1]
    assert [(regulation.value, check.pk) for regulation, check in row["latest"]] == [
        ("SOC2", soc2_history.pk)
    ]
    assert "badge--failed" in html
    assert reverse("web:check-detail", kwargs={"check_id": soc2_history.pk}) in html
    assert "Not checked yet" in html
    assert "Claims Operations" not in html
    assert ">Ops<" in html


def test_entity_list_filters_by_type(client, login_as, inventory):
    login_as(Role.AUDITOR)

    response = client.get(LIST_URL, {"entity_type": "MODEL"})

    assert listed_names(response) == ["Risk scoring model"]
    assert "matching the filters" in response.content.decode()


def test_entity_list_searches_names(client, login_as, inventory):
    login_as(Role.AUDITOR)

    response = client.get(LIST_URL, {"search": "CLAIMS"})

    assert listed_names(response) == ["Archived claims", "Claims triage agent"]


def test_entity_list_invalid_type_lists_nothing(client, login_as, inventory):
    login_as(Role.AUDITOR)

    response = client.get(LIST_URL, {"entity_type": "robot"})

    html = response.content.decode()
    assert response.status_code == 200
    assert listed_names(response) == []
    assert "Unknown value &#x27;robot&#x27;" in html
    assert "No entities match these filters." in html


def test_entity_list_empty_state(client, login_as):
    login_as(Role.AUDITOR)

    html = client.get(LIST_URL).content.decode()

    assert "No entities yet." in html
    assert "POST /v1/entities" in html


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["Archived claims", "Claims triage agent", "Risk scoring model"]),
        ("-name", ["Risk scoring model", "Claims triage agent", "Archived claims"]),
        ("type", ["Claims triage agent", "Archived claims", "Risk scoring model"]),
        ("created", ["Claims triage agent", "Risk scoring model", "Archived claims"]),
        ("-created", ["Archived claims", "Risk scoring model", "Claims triage agent"]),
        ("owner", ["Archived claims", "Claims triage agent", "Risk scoring model"]),
    ],
)
def test_entity_list_sorts_on_server(client, login_as, inventory, sort, expected):
    login_as(Role.AUDITOR)

    response = client.get(LIST_URL, {"sort": sort})

    assert listed_names(response) == expected


def test_entity_list_sort_links_keep_filters(client, login_as, inventory):
    login_as(Role.AUDITOR)

    html = client.get(LIST_URL, {"search": "claims", "sort": "name"}).content.decode()

    assert 'aria-sort="ascending"' in html
    assert "?search=claims&amp;sort=-name" in html
    assert "?search=claims&amp;sort=type" in html


def test_entity_list_paginates_25(client, login_as, many_entities):
    login_as(Role.AUDITOR)

    first = client.get(LIST_URL)
    second = client.get(LIST_URL, {"page": 2, "sort": "name"})

    assert len(first.context["rows"]) == 25
    assert listed_names(second) == [f"Agent {index:02d}" for index in range(25, 30)]
    assert "Page 1 of 2" in first.content.decode()
    assert "?page=2" in first.content.decode()


def test_entity_list_query_count(client, login_as, many_entities, django_assert_max_num_queries):
    login_as(Role.AUDITOR)

    # The newest check per entity and regulation takes two queries, one of ids and one of checks,
    # and one records the auditor's page view.
    with django_assert_max_num_queries(8):
        response = client.get(LIST_URL)

    latest = response.context["rows"][0]["latest"]
    assert [regulation.value for regulation, _ in latest] == ["SOC2", "GDPR"]
    assert latest[0][1].status == "passed"


def test_entity_list_hides_other_tenant(client, login_as, inventory, other_entity):
    login_as(Role.ADMIN)

    html = client.get(LIST_URL, {"search": "Globex"}).content.decode()

    assert other_entity.name not in html
    assert "No entities match these filters." in html


def test_flatten_facts_uses_dotted_keys():
    facts = flatten_facts(
        {
            "logging": {"enabled": True, "retention_days": 400},
            "access": {"scopes": ["a", "b"]},
            "owner": "Ops",
            "empty": {},
            "missing": None,
        }
    )

    assert facts == [
        ("access.scopes", '["a", "b"]'),
        ("empty", "{}"),
        ("logging.enabled", "true"),
        ("logging.retention_days", "400"),
        ("missing", "null"),
        ("owner", "Ops"),
    ]


def test_entity_detail_shows_facts_and_latest_checks(client, login_as, entity, soc2_history):
    entity.attributes = {"logging": {"enabled": True, "retention_days": 400}}
    entity.save()
    login_as(Role.AUDITOR)

    response = client.get(detail_url(entity))

    html = response.content.decode()
    assert response.status_code == 200
    assert '<dt class="mono">logging.retention_days</dt><dd>400</dd>' in html
    latest = dict(response.context["latest_checks"])
    assert latest["SOC2"].pk == soc2_history.pk
    assert latest["GDPR"] is None
    assert "Never checked against GDPR." in html


def test_entity_detail_lists_open_findings(client, login_as, entity, soc2_history):
    login_as(Role.AUDITOR)

    response = client.get(detail_url(entity))

    open_findings = [
        (row["finding"].control_id, row["finding"].severity)
        for row in response.context["open_findings"]
    ]
    assert open_findings == [("CC6.1", "high")]


def test_entity_detail_closed_finding_is_not_open(client, login_as, entity, soc2_history):
    make_check(entity, "SOC2", timezone.now(), [("CC6.1", PASS, Severity.HIGH)])
    login_as(Role.AUDITOR)

    response = client.get(detail_url(entity))

    assert response.context["open_findings"] == []
    assert "No open findings" in response.content.decode()


def test_entity_detail_history_chart(client, login_as, entity, soc2_history):
    login_as(Role.AUDITOR)

    response = client.get(detail_url(entity))

    html = response.content.decode()
    charted = [row["regulation"].value for row in response.context["history_with_evidence"]]
    assert charted == ["SOC2"]
    assert 'id="trend-soc2-title"' in html
    missing = [regulation.value for regulation in response.context["history_without_evidence"]]
    assert missing == ["ISO27001", "GDPR", "HIPAA", "EU_AI_ACT"]
    # CC6.1 fails since yesterday and CC7.2 passes since last week.
    assert response.context["history_with_evidence"][0]["latest_score"] == 50.0


def test_entity_detail_unchecked_entity(client, login_as, entity):
    login_as(Role.AUDITOR)

    html = client.get(detail_url(entity)).content.decode()

    assert "This entity has not been checked yet" in html
    assert "No facts are recorded for this entity" in html


def test_entity_detail_has_no_inline_styles(client, login_as, entity, soc2_history):
    login_as(Role.OFFICER)

    html = client.get(detail_url(entity)).content.decode()

    assert not re.search(r"\sstyle=", html)
    assert not re.search(r'<script(?![^>]*\ssrc="/static/)', html), "inline script"


def test_entity_detail_query_count(
    client, login_as, entity, soc2_history, django_assert_max_num_queries
):
    for regulation in ("GDPR", "HIPAA", "ISO27001"):
        make_check(entity, regulation, timezone.now(), [("X.1", FAIL, Severity.HIGH)])
    login_as(Role.OFFICER)

    # The history reads the rollups with one query per regulation, whatever the number of findings.
    with django_assert_max_num_queries(15):
        response = client.get(detail_url(entity))

    assert len(response.context["open_findings"]) == 4


def test_entity_detail_other_tenant_is_404(client, login_as, other_entity):
    login_as(Role.ADMIN)

    assert client.get(detail_url(other_entity)).status_code == 404


def test_run_check_form_shown_by_role(client, login_as, entity):
    login_as(Role.OFFICER, username="officer-user")
    assert 'name="regulation"' in client.get(detail_url(entity)).content.decode()

    login_as(Role.AUDITOR, username="auditor-user")
    html = client.get(detail_url(entity)).content.decode()
    assert 'name="regulation"' not in html
    assert run_check_url(entity) not in html


def test_run_check_creates_automated_check(client, login_as, entity):
    login_as(Role.OFFICER)

    response = client.post(run_check_url(entity), {"regulation": "SOC2"})

    check = Check.objects.get(entity=entity)
    assert response.status_code == 302
    assert response["Location"] == reverse("web:check-detail", kwargs={"check_id": check.pk})
    assert check.source == CheckSource.AUTOMATED
    assert check.regulation == "SOC2"
    assert AuditEvent.objects.filter(action=AuditAction.CREATE, target_id=str(check.pk)).exists()


def test_run_check_twice_reuses_check(client, login_as, entity):
    login_as(Role.ADMIN)

    first = client.post(run_check_url(entity), {"regulation": "GDPR"})
    second = client.post(run_check_url(entity), {"regulation": "GDPR"}, follow=True)

    assert Check.objects.filter(entity=entity).count() == 1
    assert second.redirect_chain[0][0] == first["Location"]
    assert "ran less than 24 hours ago" in second.content.decode()


def test_run_check_rejected_for_auditor(client, login_as, entity):
    login_as(Role.AUDITOR)

    response = client.post(run_check_url(entity), {"regulation": "SOC2"})

    assert response.status_code == 403
    assert not Check.objects.exists()


def test_run_check_invalid_regulation(client, login_as, entity):
    login_as(Role.OFFICER)

    response = client.post(run_check_url(entity), {"regulation": "PCI"})

    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not Check.objects.exists()


def test_run_check_needs_post(client, login_as, entity):
    login_as(Role.OFFICER)

    assert client.get(run_check_url(entity)).status_code == 405


def test_run_check_other_tenant_is_404(client, login_as, other_entity):
    login_as(Role.ADMIN)

    response = client.post(run_check_url(other_entity), {"regulation": "SOC2"})

    assert response.status_code == 404
    assert not Check.objects.exists()
