"""The check pages: the API's filters plus dates, severity and search, sorting, and the detail."""

import datetime as dt
import re
import zoneinfo

import pytest
from django.urls import reverse
from django.utils import timezone

from compliance.catalog.models import Severity
from compliance.checks.filters import CheckFilter
from compliance.checks.models import Check, CheckSource, Finding, FindingStatus
from compliance.inventory.models import Entity, EntityType
from compliance.tenancy.models import Role
from tests.conftest import make_check

LIST_URL = reverse("web:check-list")
PASS = FindingStatus.PASS
FAIL = FindingStatus.FAIL
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def detail_url(check):
    return reverse("web:check-detail", kwargs={"check_id": check.pk})


def listed(response):
    return [check.pk for check in response.context["page"].object_list]


@pytest.fixture
def model_entity(tenant):
    return Entity.objects.create(
        tenant=tenant, entity_type=EntityType.MODEL, name="Risk scoring model", owner="Data"
    )


@pytest.fixture
def checks(entity, model_entity, other_entity):
    """Four checks of the tenant on known Berlin days, and one of another tenant.

    ``soc2_old`` (1 March) passes, ``soc2_new`` (10 March) fails a high
    control, ``gdpr`` (5 March) fails a low control only, and ``model``
    (10 March, imported from "prowler") passes.
    """
    soc2_old = make_check(
        entity,
        "SOC2",
        dt.datetime(2026, 3, 1, 9, tzinfo=BERLIN),
        [("CC6.1", PASS, Severity.HIGH)],
    )
    soc2_new = make_check(
        entity,
        "SOC2",
        dt.datetime(2026, 3, 10, 23, 30, tzinfo=BERLIN),
        [("CC6.1", FAIL, Severity.HIGH), ("CC7.2", PASS, Severity.LOW)],
    )
    gdpr = make_check(
        entity,
        "GDPR",
        dt.datetime(2026, 3, 5, 12, tzinfo=BERLIN),
        [("Art.32", FAIL, Severity.LOW)],
    )
    model = make_check(
        model_entity,
        "SOC2",
        dt.datetime(2026, 3, 10, 8, tzinfo=BERLIN),
        [("CC6.1", PASS, Severity.HIGH)],
        source=CheckSource.IMPORTED,
    )
    model.source_name = "prowler"
    model.save(update_fields=["source_name"])
    foreign = make_check(
        other_entity, "SOC2", dt.datetime(2026, 3, 10, tzinfo=dt.UTC), [("CC6.1", FAIL, "high")]
    )
    return {
        "soc2_old": soc2_old,
        "soc2_new": soc2_new,
        "gdpr": gdpr,
        "model": model,
        "foreign": foreign,
    }


def test_page_filter_leaves_api_parameters_unchanged():
    assert set(CheckFilter.base_filters) == {"agent_id", "framework", "status"}


def test_check_list_newest_first(client, login_as, checks):
    login_as(Role.AUDITOR)

    response = client.get(LIST_URL)

    assert response.status_code == 200
    assert listed(response) == [
        checks["soc2_new"].pk,
        checks["model"].pk,
        checks["gdpr"].pk,
        checks["soc2_old"].pk,
    ]
    html = response.content.decode()
    assert "4 checks, sorted by checked, descending" in html
    assert 'Imported <span class="muted">(prowler)</span>' in html


def test_check_list_filters_like_api(client, login_as, checks, entity):
    login_as(Role.AUDITOR)

    by_framework = client.get(LIST_URL, {"framework": "GDPR"})
    by_status = client.get(LIST_URL, {"status": "FAILED"})
    by_entity = client.get(LIST_URL, {"agent_id": str(entity.pk), "framework": "soc2"})

    assert listed(by_framework) == [checks["gdpr"].pk]
    assert listed(by_status) == [checks["soc2_new"].pk]
    assert listed(by_entity) == [checks["soc2_new"].pk, checks["soc2_old"].pk]


def test_check_list_filters_by_tenant_days(client, login_as, checks):
    login_as(Role.AUDITOR)

    response = client.get(LIST_URL, {"date_from": "2026-03-05", "date_to": "2026-03-10"})

    # 23:30 in Berlin on 10 March is 22:30 UTC, still inside the last day.
    assert listed(response) == [checks["soc2_new"].pk, checks["model"].pk, checks["gdpr"].pk]


def test_check_list_rejects_reversed_dates(client, login_as, checks):
    login_as(Role.AUDITOR)

    response = client.get(LIST_URL, {"date_from": "2026-03-10", "date_to": "2026-03-01"})

    html = response.content.decode()
    assert listed(response) == []
    assert "The end date 2026-03-01 is before the start date 2026-03-10." in html
    assert "No checks match these filters." in html


def test_check_list_filters_by_failing_severity(client, login_as, checks):
    login_as(Role.AUDITOR)

    high = client.get(LIST_URL, {"severity": "high"})
    low = client.get(LIST_URL, {"severity": "low"})

    assert listed(high) == [checks["soc2_new"].pk]
    assert listed(low) == [checks["gdpr"].pk]


def test_check_list_filters_by_control(client, login_as, checks):
    login_as(Role.AUDITOR)

    any_status = client.get(LIST_URL, {"control": "CC6.1"})
    failing = client.get(LIST_URL, {"control": "CC6.1", "control_status": "fail"})
    passing_elsewhere = client.get(LIST_URL, {"control": "CC7.2", "control_status": "fail"})

    expected = [checks["soc2_new"].pk, checks["model"].pk, checks["soc2_old"].pk]
    assert listed(any_status) == expected
    assert listed(failing) == [checks["soc2_new"].pk]
    assert listed(passing_elsewhere) == []


def test_check_list_control_status_alone(client, login_as, checks):
    login_as(Role.AUDITOR)

    response = client.get(LIST_URL, {"control_status": "fail"})

    assert listed(response) == [checks["soc2_new"].pk, checks["gdpr"].pk]


def test_check_list_searches_entity_and_scanner(client, login_as, checks):
    login_as(Role.AUDITOR)

    by_entity = client.get(LIST_URL, {"search": "risk scoring"})
    by_scanner = client.get(LIST_URL, {"search": "PROWLER"})

    assert listed(by_entity) == [checks["model"].pk]
    assert listed(by_scanner) == [checks["model"].pk]


def test_check_list_other_tenant_entity_lists_nothing(client, login_as, checks, other_entity):
    login_as(Role.ADMIN)

    response = client.get(LIST_URL, {"agent_id": str(other_entity.pk)})

    html = response.content.decode()
    assert listed(response) == []
    assert "Select a valid choice" in html
    assert other_entity.name not in html


def test_check_list_invalid_status_lists_nothing(client, login_as, checks):
    login_as(Role.AUDITOR)

    response = client.get(LIST_URL, {"status": "broken"})

    assert listed(response) == []
    assert "Unknown value &#x27;broken&#x27;" in response.content.decode()


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("created", ["soc2_old", "gdpr", "model", "soc2_new"]),
        ("entity", ["soc2_old", "gdpr", "soc2_new", "model"]),
        ("-entity", ["model", "soc2_new", "gdpr", "soc2_old"]),
        ("regulation", ["gdpr", "soc2_old", "model", "soc2_new"]),
        ("status", ["soc2_new", "gdpr", "soc2_old", "model"]),
        ("nonsense", ["soc2_new", "model", "gdpr", "soc2_old"]),
    ],
)
def test_check_list_sorts_on_server(client, login_as, checks, sort, expected):
    login_as(Role.AUDITOR)

    response = client.get(LIST_URL, {"sort": sort})

    assert listed(response) == [checks[name].pk for name in expected]


def test_check_list_paginates_and_keeps_filters(client, login_as, entity):
    now = timezone.now()
    for index in range(30):
        make_check(entity, "SOC2", now - dt.timedelta(hours=index), [("CC6.1", PASS, "low")])
    login_as(Role.AUDITOR)

    first = client.get(LIST_URL, {"framework": "soc2"})
    second = client.get(LIST_URL, {"framework": "soc2", "page": 2})

    assert len(listed(first)) == 25
    assert len(listed(second)) == 5
    assert "?framework=soc2&amp;page=2" in first.content.decode()


def test_check_list_query_count(client, login_as, entity, django_assert_max_num_queries):
    now = timezone.now()
    for index in range(30):
        make_check(entity, "SOC2", now - dt.timedelta(hours=index), [("CC6.1", FAIL, "high")])
    login_as(Role.AUDITOR)

    # One of them records the auditor's page view in the audit trail.
    with django_assert_max_num_queries(9):
        response = client.get(
            LIST_URL, {"agent_id": str(entity.pk), "severity": "high", "search": "claims"}
        )

    assert len(listed(response)) == 25
    assert response.context["page"].object_list[0].failing == 1


def test_check_list_empty_states(client, login_as):
    login_as(Role.OFFICER)

    empty = client.get(LIST_URL).content.decode()
    filtered = client.get(LIST_URL, {"status": "passed"}).content.decode()

    assert "No checks yet." in empty
    assert "run an automated check" in empty
    assert "No checks match these filters." in filtered


def test_check_list_hides_other_tenant(client, login_as, checks):
    login_as(Role.ADMIN)

    response = client.get(LIST_URL)

    assert checks["foreign"].pk not in listed(response)
    assert str(checks["foreign"].pk) not in response.content.decode()


def test_check_detail_shows_findings_and_versions(client, login_as, checks, entity):
    check = checks["soc2_new"]
    check.catalog_version = "2026.1"
    check.rule_set_version = "844cd214103e"
    check.scope = {"controls": ["CC6.1"]}
    check.save()
    Finding.objects.filter(compliance_check=check, control_id="CC6.1").update(
        evidence={"logging": {"enabled": False}}, remediation="Turn on logging."
    )
    login_as(Role.AUDITOR)

    response = client.get(detail_url(check))

    html = response.content.decode()
    assert response.status_code == 200
    assert [row["finding"].control_id for row in response.context["rows"]] == ["CC6.1", "CC7.2"]
    pretty = "{\n  &quot;logging&quot;: {\n    &quot;enabled&quot;: false"
    assert f'<pre class="json-block">{pretty}' in html
    assert "2026.1" in html
    assert "844cd214103e" in html
    assert "Turn on logging." in html
    assert reverse("web:entity-detail", kwargs={"entity_id": entity.pk}) in html
    assert "&quot;controls&quot;" in html


def test_check_detail_marks_demo_history(client, login_as, checks):
    Check.objects.filter(pk=checks["gdpr"].pk).update(is_demo=True)
    login_as(Role.AUDITOR)

    html = client.get(detail_url(checks["gdpr"])).content.decode()

    assert "generated demo history, not evidence" in html


def test_check_detail_without_findings(client, login_as, entity):
    check = Check.objects.create(
        tenant=entity.tenant,
        entity=entity,
        regulation="SOC2",
        source=CheckSource.API,
        created_at=timezone.now(),
    )
    login_as(Role.AUDITOR)

    html = client.get(detail_url(check)).content.decode()

    assert "This check has no findings yet, because it has not completed." in html


def test_check_detail_has_no_inline_styles(client, login_as, checks):
    login_as(Role.AUDITOR)

    html = client.get(detail_url(checks["soc2_new"])).content.decode()

    assert not re.search(r"\sstyle=", html)
    assert not re.search(r'<script(?![^>]*\ssrc="/static/)', html), "inline script"


def test_check_detail_query_count(client, login_as, entity, django_assert_max_num_queries):
    results = [(f"CC{index}.1", FAIL, "high") for index in range(1, 40)]
    check = make_check(entity, "SOC2", timezone.now(), results)
    login_as(Role.AUDITOR)

    # One of them records the auditor's page view in the audit trail.
    with django_assert_max_num_queries(7):
        response = client.get(detail_url(check))

    assert len(response.context["rows"]) == 39


def test_check_detail_other_tenant_is_404(client, login_as, checks):
    login_as(Role.ADMIN)

    assert client.get(detail_url(checks["foreign"])).status_code == 404


def test_check_detail_needs_login(client, checks):
    response = client.get(detail_url(checks["soc2_new"]))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("web:login"))
