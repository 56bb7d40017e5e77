"""The overview page: posture per regulation, entities at risk, changes and recent activity."""

import datetime as dt
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from compliance.catalog.models import Severity
from compliance.checks.models import FindingStatus
from compliance.inventory.models import Entity, EntityType
from compliance.reports.services import request_report
from compliance.tenancy.models import Role
from compliance.web.posture import Observation, Replay, outranks
from compliance.web.sparkline import sparkline_svg
from tests.conftest import make_check

URL = reverse("web:overview")
PASS = FindingStatus.PASS
FAIL = FindingStatus.FAIL
NOT_APPLICABLE = FindingStatus.NOT_APPLICABLE


@pytest.fixture
def model_entity(tenant):
    return Entity.objects.create(
        tenant=tenant, entity_type=EntityType.MODEL, name="Claims risk model", owner="Data"
    )


@pytest.fixture
def posture_data(entity, model_entity, other_entity):
    """Checks of two entities of the tenant, and one of another tenant.

    Latest SOC 2 statuses in the last 30 days: the agent passes CC6.1 and
    fails CC7.2 (critical), the model passes CC6.1 and fails CC8.1 (high).
    The agent's CC7.2 passed 10 days ago, so it is a new failure this week.
    The model's CC1.1 failed 10 days ago and passes now. A finding from 40
    days ago is outside the window.
    """
    now = timezone.now()
    make_check(
        entity,
        "SOC2",
        now - dt.timedelta(days=10),
        [("CC6.1", PASS, Severity.HIGH), ("CC7.2", PASS, Severity.CRITICAL)],
    )
    make_check(
        entity,
        "SOC2",
        now - dt.timedelta(days=2),
        [("CC6.1", PASS, Severity.HIGH), ("CC7.2", FAIL, Severity.CRITICAL)],
    )
    make_check(model_entity, "SOC2", now - dt.timedelta(days=40), [("CC9.9", FAIL, Severity.LOW)])
    make_check(model_entity, "SOC2", now - dt.timedelta(days=10), [("CC1.1", FAIL, Severity.LOW)])
    make_check(
        model_entity,
        "SOC2",
        now - dt.timedelta(days=1),
        [
            ("CC6.1", PASS, Severity.HIGH),
            ("CC8.1", FAIL, Severity.HIGH),
            ("CC1.1", PASS, Severity.LOW),
        ],
    )
    make_check(entity, "GDPR", now - dt.timedelta(days=3), [("Art.5", NOT_APPLICABLE, "low")])
    make_check(
        other_entity,
        "HIPAA",
        now - dt.timedelta(days=1),
        [("164.312(b)", FAIL, Severity.CRITICAL)],
    )


def cards(response):
    return {card["posture"].regulation.value: card["posture"] for card in response.context["cards"]}


def test_root_redirects_to_overview(client, login_as):
    login_as(Role.AUDITOR)

    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == URL


def test_overview_needs_login(client, db):
    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("web:login"))


def test_overview_score_per_regulation(client, login_as, posture_data):
    login_as(Role.AUDITOR)

    response = client.get(URL)

    assert response.status_code == 200
    soc2 = cards(response)["SOC2"]
    assert soc2.passing == 3
    assert soc2.failing == 2
    assert soc2.score == 60.0
    assert soc2.entities_assessed == 2
    assert soc2.failing_controls == 2


def test_overview_ignores_findings_outside_window(client, login_as, posture_data):
    login_as(Role.AUDITOR)

    soc2 = cards(client.get(URL))["SOC2"]

    assert soc2.open_findings == 2
    assert dict((severity, count) for severity, _, count in soc2.open_by_severity) == {
        "critical": 1,
        "high": 1,
        "medium": 0,
        "low": 0,
    }


def test_overview_names_regulations_without_evidence(client, login_as, posture_data):
    login_as(Role.AUDITOR)

    response = client.get(URL)

    by_regulation = cards(response)
    assert not by_regulation["HIPAA"].has_evidence
    assert by_regulation["GDPR"].has_evidence
    assert by_regulation["GDPR"].score is None
    missing = [regulation.value for regulation in response.context["without_evidence"]]
    assert missing == ["ISO27001", "HIPAA", "EU_AI_ACT"]
    html = response.content.decode()
    assert "No evidence for 3 regulations" in html
    assert "A missing score is not a pass." in html
    assert "Findings were recorded, but no control passed or failed." in html


def test_overview_sparkline_per_regulation(client, login_as, posture_data):
    login_as(Role.AUDITOR)

    response = client.get(URL)

    soc2 = cards(response)["SOC2"]
    points = soc2.trend["points"]
    assert len(points) == 30
    assert points[-1]["score"] == 60.0
    assert points[0]["score"] is None
    assert response.content.decode().count('class="sparkline"') == 2


def test_overview_lists_changes_since_last_week(client, login_as, posture_data):
    login_as(Role.AUDITOR)

    response = client.get(URL)

    changes = [
        (entity.name, change.after.control_id, change.before, change.after.status)
        for entity, change in response.context["changes"]
    ]
    assert changes == [
        ("Claims triage agent", "CC7.2", "pass", "fail"),
        ("Claims risk model", "CC1.1", "fail", "pass"),
    ]


def test_overview_ranks_entities_at_risk(client, login_as, posture_data):
    login_as(Role.AUDITOR)

    response = client.get(URL)

    at_risk = [
        (entity.name, risk.critical, risk.high) for entity, risk in response.context["at_risk"]
    ]
    assert at_risk == [("Claims triage agent", 1, 0), ("Claims risk model", 0, 1)]


def test_overview_shows_recent_checks_and_reports(client, login_as, entity, soc2_history):
    login_as(Role.AUDITOR)
    today = entity.tenant.today()
    report = request_report(
        tenant=entity.tenant,
        entity=entity,
        regulation="SOC2",
        period_start=today - dt.timedelta(days=6),
        period_end=today,
    )

    response = client.get(URL)

    html = response.content.decode()
    assert response.context["recent_checks"][0].pk == soc2_history.pk
    assert reverse("web:check-detail", kwargs={"check_id": soc2_history.pk}) in html
    assert reverse("web:report-detail", kwargs={"report_id": report.pk}) in html


def test_overview_empty_tenant(client, login_as):
    login_as(Role.AUDITOR)

    response = client.get(URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert "No evidence for 5 regulations" in html
    assert "No checks yet." in html
    assert "No reports yet." in html
    assert "No entity has a failing control of high or critical severity" in html
    assert "No control went from pass to fail, or back" in html


def test_overview_hides_other_tenant(client, login_as, posture_data, other_entity):
    login_as(Role.ADMIN)

    response = client.get(URL)

    html = response.content.decode()
    assert other_entity.name not in html
    assert str(other_entity.pk) not in html
    assert not cards(response)["HIPAA"].has_evidence


def test_overview_has_no_inline_styles_or_scripts(client, login_as, posture_data):
    login_as(Role.AUDITOR)

    html = client.get(URL).content.decode()

    assert not re.search(r"\sstyle=", html)
    assert not re.search(r'<script(?![^>]*\ssrc="/static/)', html), "inline script"


def test_overview_query_count(client, login_as, posture_data, django_assert_max_num_queries):
    login_as(Role.AUDITOR)

    with django_assert_max_num_queries(7):
        response = client.get(URL)

    assert response.status_code == 200


def test_overview_query_count_stays_flat(client, login_as, tenant, django_assert_max_num_queries):
    now = timezone.now()
    for index in range(12):
        extra = Entity.objects.create(
            tenant=tenant, entity_type=EntityType.AGENT, name=f"Agent {index:02d}"
        )
        make_check(extra, "SOC2", now - dt.timedelta(days=9), [("CC6.1", PASS, Severity.HIGH)])
        make_check(extra, "SOC2", now - dt.timedelta(days=1), [("CC6.1", FAIL, Severity.HIGH)])
    login_as(Role.AUDITOR)

    with django_assert_max_num_queries(7):
        response = client.get(URL)

    assert len(response.context["changes"]) == 12
    assert len(response.context["at_risk"]) == 5


def observation(status, severity="low", second=0, control="CC1.1"):
    return Observation(
        regulation="SOC2",
        entity_id=1,
        control_id=control,
        observed_at=dt.datetime(2026, 3, 2, 10, 0, second, tzinfo=dt.UTC),
        status=status,
        severity=severity,
        check_id=None,
    )


def test_outranks_prefers_failure_at_same_instant():
    assert not outranks(observation(PASS), observation(FAIL))
    assert outranks(observation(FAIL), observation(PASS))


def test_outranks_prefers_later_instant():
    assert outranks(observation(PASS, second=1), observation(FAIL))


def test_outranks_prefers_higher_severity_at_same_instant():
    assert not outranks(observation(FAIL, "low"), observation(FAIL, "high"))
    assert outranks(observation(FAIL, "critical"), observation(FAIL, "high"))


def test_replay_counts_latest_status_once():
    replay = Replay(
        [
            observation(FAIL),
            observation(PASS, second=1),
            observation(PASS, control="CC6.1"),
        ]
    )

    replay.advance(dt.datetime(2026, 3, 3, tzinfo=dt.UTC))

    assert replay.counts["SOC2"][PASS] == 2
    assert replay.counts["SOC2"][FAIL] == 0
    assert replay.score("SOC2") == 100.0


def test_replay_snapshot_before_instant():
    replay = Replay(
        [observation(FAIL), observation(PASS, second=30)],
        snapshot_at=dt.datetime(2026, 3, 2, 10, 0, 10, tzinfo=dt.UTC),
    )

    replay.advance(dt.datetime(2026, 3, 3, tzinfo=dt.UTC))

    assert replay.statuses_at_snapshot() == {("SOC2", 1, "CC1.1"): FAIL}


def trend_of(*scores):
    points = [
        {"start": f"2026-03-{day:02d}", "end": f"2026-03-{day:02d}", "score": score}
        for day, score in enumerate(scores, start=1)
    ]
    return {"granularity": "day", "points": points}


def test_sparkline_breaks_line_at_missing_scores():
    svg = str(sparkline_svg(trend_of(50, 60, None, 70, 80)))

    assert svg.count("<polyline") == 2
    assert svg.count("<circle") == 1
    assert 'role="img"' in svg
    assert "style=" not in svg


def test_sparkline_without_scores_has_no_line():
    svg = str(sparkline_svg(trend_of(None, None)))

    assert "<polyline" not in svg
    assert "<circle" not in svg
    assert "No evidence in this period." in svg


def test_sparkline_rejects_tiny_size():
    with pytest.raises(ValueError, match="Invalid sparkline size 4x40"):
        sparkline_svg(trend_of(1), width=4, height=40)
