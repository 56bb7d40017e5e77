"""The overview page: posture per regulation, entities at risk, changes and recent activity."""

import datetime as dt
import random
import re
from collections import Counter

import pytest
from django.urls import reverse
from django.utils import timezone

from compliance.catalog.models import Severity
from compliance.checks.models import Finding, FindingStatus
from compliance.checks.rollups import tie_rank
from compliance.inventory.models import Entity, EntityType
from compliance.reports.aggregation import compliance_score
from compliance.reports.services import request_report
from compliance.tenancy.models import Membership, Role
from compliance.web.posture import DayStatuses, tenant_posture
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


# The session, the user, the membership, the posture statement, the named entities,
# the recent checks, the recent reports and the audit event of an auditor's page read.
OVERVIEW_QUERIES = 8


def test_overview_query_count(client, login_as, posture_data, django_assert_num_queries):
    login_as(Role.AUDITOR)

    with django_assert_num_queries(OVERVIEW_QUERIES):
        response = client.get(URL)

    assert response.status_code == 200


def test_overview_query_count_stays_flat(client, login_as, tenant, django_assert_num_queries):
    now = timezone.now()
    for index in range(12):
        extra = Entity.objects.create(
            tenant=tenant, entity_type=EntityType.AGENT, name=f"Agent {index:02d}"
        )
        make_check(extra, "SOC2", now - dt.timedelta(days=9), [("CC6.1", PASS, Severity.HIGH)])
        make_check(extra, "SOC2", now - dt.timedelta(days=1), [("CC6.1", FAIL, Severity.HIGH)])
    login_as(Role.AUDITOR)

    with django_assert_num_queries(OVERVIEW_QUERIES):
        response = client.get(URL)

    assert len(response.context["changes"]) == 12
    assert len(response.context["at_risk"]) == 5


def at_noon(tenant, days_ago):
    """Return noon in the tenant's zone, ``days_ago`` local days before today."""
    day = tenant.today() - dt.timedelta(days=days_ago)
    return dt.datetime.combine(day, dt.time(12), tzinfo=tenant.zone)


def change_rows(response):
    return [
        (change.after.control_id, change.before, change.after.status)
        for _, change in response.context["changes"]
    ]


def test_overview_counts_day_latest_status(client, login_as, tenant, entity):
    make_check(entity, "SOC2", at_noon(tenant, 3), [("CC6.1", FAIL, Severity.HIGH)])
    later = at_noon(tenant, 3) + dt.timedelta(hours=2)
    make_check(entity, "SOC2", later, [("CC6.1", PASS, Severity.HIGH)])
    login_as(Role.AUDITOR)

    response = client.get(URL)

    soc2 = cards(response)["SOC2"]
    assert soc2.passing == 1
    assert soc2.failing == 0
    assert soc2.trend["points"][-4]["score"] == 100.0
    assert soc2.trend["points"][-5]["score"] is None


def test_overview_ranks_failure_first_at_same_instant(client, login_as, tenant, entity):
    when = at_noon(tenant, 2)
    make_check(entity, "SOC2", when, [("CC6.1", PASS, Severity.HIGH)])
    make_check(entity, "SOC2", when, [("CC6.1", FAIL, Severity.HIGH)])
    make_check(entity, "SOC2", when, [("CC6.1", PASS, Severity.HIGH)])
    login_as(Role.AUDITOR)

    soc2 = cards(client.get(URL))["SOC2"]

    assert soc2.failing == 1
    assert soc2.passing == 0


def test_overview_trend_carries_status_forward(client, login_as, tenant, entity):
    make_check(entity, "SOC2", at_noon(tenant, 20), [("CC6.1", PASS, Severity.HIGH)])
    make_check(entity, "SOC2", at_noon(tenant, 10), [("CC6.1", FAIL, Severity.HIGH)])
    login_as(Role.AUDITOR)

    points = cards(client.get(URL))["SOC2"].trend["points"]

    scores = [point["score"] for point in points]
    assert scores[:9] == [None] * 9
    assert scores[9:19] == [100.0] * 10
    assert scores[19:] == [0.0] * 11
    assert [point["failing_controls"] for point in points][19:] == [1] * 11


def test_overview_changes_compare_end_of_day(client, login_as, tenant, entity):
    """A change is measured from the end of the local day seven days ago, not an instant."""
    make_check(entity, "SOC2", at_noon(tenant, 7), [("CC6.1", PASS, Severity.HIGH)])
    make_check(entity, "SOC2", at_noon(tenant, 6), [("CC6.1", FAIL, Severity.HIGH)])
    make_check(entity, "SOC2", at_noon(tenant, 8), [("CC7.1", PASS, Severity.HIGH)])
    make_check(entity, "SOC2", at_noon(tenant, 7), [("CC7.1", FAIL, Severity.HIGH)])
    make_check(entity, "SOC2", at_noon(tenant, 1), [("CC7.1", FAIL, Severity.HIGH)])
    login_as(Role.AUDITOR)

    response = client.get(URL)

    assert change_rows(response) == [("CC6.1", "pass", "fail")]


def test_overview_ignores_flip_and_recovery_within_week(client, login_as, tenant, entity):
    make_check(entity, "SOC2", at_noon(tenant, 12), [("CC6.1", PASS, Severity.HIGH)])
    make_check(entity, "SOC2", at_noon(tenant, 4), [("CC6.1", FAIL, Severity.HIGH)])
    make_check(entity, "SOC2", at_noon(tenant, 2), [("CC6.1", PASS, Severity.HIGH)])
    make_check(entity, "SOC2", at_noon(tenant, 3), [("CC8.1", FAIL, Severity.HIGH)])
    login_as(Role.AUDITOR)

    response = client.get(URL)

    assert change_rows(response) == []
    assert response.context["changes_total"] == 0


def test_overview_scoped_auditor_sees_scope_only(client, login_as, tenant, entity, model_entity):
    make_check(entity, "SOC2", at_noon(tenant, 12), [("CC6.1", PASS, Severity.CRITICAL)])
    make_check(entity, "SOC2", at_noon(tenant, 2), [("CC6.1", FAIL, Severity.CRITICAL)])
    make_check(model_entity, "SOC2", at_noon(tenant, 2), [("CC6.1", FAIL, Severity.HIGH)])
    make_check(entity, "GDPR", at_noon(tenant, 2), [("Art.5", FAIL, Severity.HIGH)])
    user = login_as(Role.AUDITOR)
    membership = Membership.objects.get(user=user)
    membership.scope_entities.set([entity])
    membership.scope_regulations = ["SOC2"]
    membership.scope_end = tenant.today() - dt.timedelta(days=5)
    membership.save()

    response = client.get(URL)

    assert list(cards(response)) == ["SOC2"]
    soc2 = cards(response)["SOC2"]
    assert soc2.passing == 1
    assert soc2.failing == 0
    assert response.context["at_risk"] == []
    assert change_rows(response) == []


def test_day_statuses_steps_oldest_first():
    days = DayStatuses(fail_days=0b0100, pass_days=0b0001, observed_days=0b1101)

    assert list(days.steps()) == [(0, PASS), (2, FAIL), (3, None)]


def test_day_statuses_status_before_day():
    days = DayStatuses(fail_days=0b0100, pass_days=0b0001, observed_days=0b1101)

    assert days.status_before(0) is None
    assert days.status_before(1) == PASS
    assert days.status_before(3) == FAIL
    assert days.status_before(4) is None


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


def reference_posture(tenant, today, window_days, change_days):
    """Replay the window's findings one by one: the meaning the posture statement must match."""
    start = today - dt.timedelta(days=window_days - 1)
    change_start = today - dt.timedelta(days=change_days - 1)
    findings = Finding.objects.filter(tenant=tenant).order_by("observed_at", "id")
    days = {}
    for finding in findings:
        day = finding.observed_at.astimezone(tenant.zone).date()
        if start <= day <= today:
            days.setdefault(day, []).append(finding)

    def winner(old, new):
        new_key = (new.observed_at, -tie_rank(new.status, new.severity), new.pk)
        if old is None:
            return new
        old_key = (old.observed_at, -tie_rank(old.status, old.severity), old.pk)
        return new if new_key > old_key else old

    latest, before, trend = {}, {}, []
    for index in range(window_days):
        day = start + dt.timedelta(days=index)
        if day == change_start:
            before = {key: finding.status for key, finding in latest.items()}
        for finding in days.get(day, []):
            key = (finding.regulation, finding.entity_id, finding.control_id)
            latest[key] = winner(latest.get(key), finding)
        statuses = Counter((key[0], finding.status) for key, finding in latest.items())
        trend.append(statuses)

    changes = sorted(
        (str(key[1]), key[2], before[key], finding.status)
        for key, finding in latest.items()
        if finding.observed_at.astimezone(tenant.zone).date() >= change_start
        and finding.status in (PASS, FAIL)
        and before.get(key) in (PASS, FAIL)
        and before[key] != finding.status
    )
    return latest, trend, changes


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_posture_matches_finding_replay(tenant, entity, model_entity, seed):
    randomness = random.Random(seed)  # noqa: S311 - reproducible test data
    statuses = [PASS, FAIL, FAIL, NOT_APPLICABLE, FindingStatus.NOT_ASSESSED]
    severities = [Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW]
    today = tenant.today()
    instants = []
    for _ in range(60):
        day = today - dt.timedelta(days=randomness.randrange(35))
        instant = dt.datetime.combine(day, dt.time(randomness.randrange(24)), tzinfo=tenant.zone)
        # Reuse an earlier instant now and then, so that findings tie on time.
        if instants and randomness.random() < 0.2:
            instant = randomness.choice(instants)
        instants.append(instant)
        make_check(
            randomness.choice([entity, model_entity]),
            randomness.choice(["SOC2", "GDPR"]),
            instant,
            [
                (control, randomness.choice(statuses), randomness.choice(severities))
                for control in randomness.sample(["C1", "C2", "C3"], randomness.randint(1, 3))
            ],
        )

    posture = tenant_posture(tenant, today, window_days=30, change_days=7, at_risk_limit=5)
    latest, trend, changes = reference_posture(tenant, today, 30, 7)

    for card in posture.regulations:
        regulation = card.regulation.value
        mine = [finding for key, finding in latest.items() if key[0] == regulation]
        failing = [finding for finding in mine if finding.status == FAIL]
        assert card.observed == len(mine), regulation
        assert card.passing == sum(1 for finding in mine if finding.status == PASS), regulation
        assert card.failing == len(failing), regulation
        assert card.failing_controls == len({finding.control_id for finding in failing})
        assert card.entities_assessed == len(
            {finding.entity_id for finding in mine if finding.status in (PASS, FAIL)}
        )
        by_severity = Counter(finding.severity for finding in failing)
        assert {severity: count for severity, _, count in card.open_by_severity} == {
            severity.value: by_severity[severity.value] for severity in Severity
        }
        points = [(point["score"], point["failing_controls"]) for point in card.trend["points"]]
        expected = [
            (
                compliance_score(
                    day[regulation, PASS], day[regulation, PASS] + day[regulation, FAIL]
                ),
                day[regulation, FAIL],
            )
            for day in trend
        ]
        assert points == expected, regulation
    found = sorted(
        (str(change.after.entity_id), change.after.control_id, change.before, change.after.status)
        for change in posture.changes
    )
    assert found == changes


def test_overview_names_change_start_day(client, login_as, tenant):
    login_as(Role.AUDITOR)
    since = tenant.today() - dt.timedelta(days=7)

    html = client.get(URL).content.decode()

    assert f"or back, since the end of {since:%Y-%m-%d}." in html
