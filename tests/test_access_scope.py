"""Auditors limited to chosen entities, regulations and days, over every route.

A scoped auditor requests each route of ``PROBES`` (the tenant isolation
table) with the ids of objects of their own tenant that lie outside their
scope: another entity, a regulation they were not given, and days before
their period. Object routes must return 404 (or 403 where the role is too
low), and no response may contain a trace of those objects. Removing the
scope filter from any page, endpoint or export makes one of these fail.
"""

import datetime as dt
import re
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlsafe_base64_encode

from compliance.audit.models import AuditAction, AuditEvent
from compliance.catalog.models import Severity
from compliance.checks.models import Check, FindingStatus
from compliance.inventory.models import Entity, EntityType
from compliance.keys.models import ApiKey
from compliance.reports.models import Report
from compliance.reports.services import request_report
from compliance.tenancy.models import Membership, Role
from compliance.tenancy.scope import UNLIMITED, AccessScope, attach_scope, membership_scope
from compliance.web.posture import entity_trends, latest_findings
from tests.conftest import MEMBER_PASSWORD, assert_status, make_check
from tests.test_tenant_isolation import PROBES, ROUTES, body_text

ISSUER = "scope-tests-idp"
AUDIENCE = "compliance-api"
SCOPE_DAYS = 90


@pytest.fixture(autouse=True)
def empty_cache():
    """Start each test with no rate-limit state, since the walk sends many API requests."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(scope="module")
def signing_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwt_config(tmp_path, signing_key):
    public = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "public.pem").write_bytes(public)
    with override_settings(
        JWT_ALGORITHM="RS256",
        JWT_PUBLIC_KEY="",
        JWT_PUBLIC_KEY_FILE=str(tmp_path / "public.pem"),
        JWT_JWKS_FILE="",
        JWT_ISSUER=ISSUER,
        JWT_AUDIENCE=[AUDIENCE],
        JWT_LEEWAY_SECONDS=30,
        JWT_SUBJECT_FIELD="username",
    ):
        yield


def bearer_token(signing_key, username):
    now = timezone.now()
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": username,
        "iat": int(now.timestamp()),
        "exp": int((now + dt.timedelta(minutes=10)).timestamp()),
    }
    private = signing_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return jwt.encode(claims, private, algorithm="RS256")


def at_noon(tenant, day):
    return dt.datetime.combine(day, dt.time(12), tzinfo=tenant.zone)


@pytest.fixture
def world(tenant, entity):
    """One tenant with objects inside and outside an auditor's scope.

    The scope is ``entity``, SOC2 and GDPR, and the last 90 days. Outside it:
    a second entity, a HIPAA check and report of ``entity``, a SOC2 check
    from before the period and a SOC2 report whose period starts before it.
    """
    today = tenant.today()
    start = today - dt.timedelta(days=SCOPE_DAYS - 1)
    hidden_entity = Entity.objects.create(
        tenant=tenant, entity_type=EntityType.MODEL, name="Hidden fraud model"
    )
    fail = FindingStatus.FAIL
    visible_check = make_check(
        entity, "SOC2", at_noon(tenant, today - dt.timedelta(days=3)), [("CC6.1", fail, "high")]
    )
    hidden_checks = {
        "other entity": make_check(
            hidden_entity,
            "SOC2",
            at_noon(tenant, today - dt.timedelta(days=2)),
            [("HIDDEN-OTHER-1", fail, Severity.CRITICAL)],
        ),
        "other regulation": make_check(
            entity,
            "HIPAA",
            at_noon(tenant, today - dt.timedelta(days=2)),
            [("HIDDEN-HIPAA-1", fail, Severity.CRITICAL)],
        ),
        "before the period": make_check(
            entity,
            "SOC2",
            at_noon(tenant, start - dt.timedelta(days=20)),
            [("HIDDEN-OLD-1", fail, Severity.CRITICAL)],
        ),
    }

    def report(for_entity, regulation, period_start):
        return request_report(
            tenant=tenant,
            entity=for_entity,
            regulation=regulation,
            period_start=period_start,
            period_end=today,
        )

    visible_report = report(entity, "SOC2", today - dt.timedelta(days=6))
    hidden_reports = {
        "other entity": report(hidden_entity, "SOC2", today - dt.timedelta(days=6)),
        "other regulation": report(entity, "HIPAA", today - dt.timedelta(days=6)),
        "before the period": report(entity, "SOC2", start - dt.timedelta(days=1)),
    }

    auditor = get_user_model().objects.create_user("limited-auditor", password=MEMBER_PASSWORD)
    membership = Membership.objects.create(
        user=auditor,
        tenant=tenant,
        role=Role.AUDITOR,
        scope_regulations=["GDPR", "SOC2"],
        scope_start=start,
        scope_end=today,
    )
    membership.scope_entities.set([entity])
    admin = get_user_model().objects.create_user("scope-admin", password=MEMBER_PASSWORD)
    admin_membership = Membership.objects.create(user=admin, tenant=tenant, role=Role.ADMIN)
    api_key, _ = ApiKey.issue(tenant=tenant, name="scope-test-key", role=Role.ADMIN)

    markers = [str(hidden_entity.pk), hidden_entity.name, "HIDDEN-"]
    for check in hidden_checks.values():
        markers.append(str(check.pk))
    for hidden in hidden_reports.values():
        markers += [str(hidden.pk), hidden.public_id]
    return {
        "tenant": tenant,
        "entity": entity,
        "hidden_entity": hidden_entity,
        "visible_check": visible_check,
        "visible_report": visible_report,
        "hidden_checks": hidden_checks,
        "hidden_reports": hidden_reports,
        "auditor": auditor,
        "membership": membership,
        "admin_membership": admin_membership,
        "api_key": api_key,
        "markers": markers,
    }


@pytest.fixture
def auditor_clients(world, jwt_config, signing_key):
    """The scoped auditor as a logged-in page client and as bearer-token API headers."""
    client = Client()
    client.force_login(world["auditor"])
    token = bearer_token(signing_key, world["auditor"].get_username())
    return client, {"Authorization": f"Bearer {token}"}


def variants(name, keywords, world):
    """Yield ``(label, path kwargs)``: one request per hidden object the route can name."""
    reports, checks = world["hidden_reports"], world["hidden_checks"]
    if "report_id" in keywords:
        labels = list(reports)
    elif "check_id" in keywords:
        labels = list(checks)
    else:
        labels = ["other entity"]

    for label in labels:
        report = reports.get(label, reports["other entity"])
        values = {
            "report_id": report.public_id if name.startswith("api:") else report.pk,
            "check_id": checks.get(label, checks["other entity"]).pk,
            "entity_id": world["hidden_entity"].pk,
            "key_id": world["api_key"].pk,
            "membership_id": world["admin_membership"].pk,
            "uidb64": urlsafe_base64_encode(str(world["auditor"].pk).encode()),
            "token": "not-a-valid-token",
            "regulation": "HIPAA",
            # Tenant controls and rules carry no scope. These ids name nothing, so
            # the routes must return 404 as for any unknown object.
            "control_pk": 2_147_483_647,
            "rule_id": uuid.uuid4(),
        }
        missing = set(keywords) - set(values)
        assert not missing, f"{name} has path parameters without a value here: {missing}"
        yield label, {keyword: values[keyword] for keyword in keywords}


def fill_placeholders(extra, world):
    """Return the probe's data with "entity" and "tenant" replaced by the hidden entity's ids.

    Other placeholders, such as "control", stay as they are and name nothing.
    """
    placeholders = {"entity": str(world["hidden_entity"].pk), "tenant": str(world["tenant"].pk)}
    return {
        key: placeholders.get(value, value) if isinstance(value, str) else value
        for key, value in (extra or {}).items()
    }


def send(client, api_headers, name, method, path, data):
    headers = api_headers if name.startswith("api:") else {}
    if method == "GET":
        return client.get(path, data or {}, headers=headers)
    if name.startswith("api:"):
        return client.post(path, data or {}, content_type="application/json", headers=headers)
    return client.post(path, data or {})


def assert_hidden(response, world, name, label):
    body = body_text(response)
    for marker in world["markers"]:
        assert marker not in body, f"{name} ({label}) revealed {marker!r} outside the scope"


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "keywords"), ROUTES, ids=[name for name, _ in ROUTES])
def test_route_hides_objects_outside_scope(name, keywords, world, auditor_clients):
    client, api_headers = auditor_clients
    if name not in PROBES:
        pytest.fail(f"{name} has no entry in PROBES of tests/test_tenant_isolation.py")
    method, kind, extra = PROBES[name]
    data = fill_placeholders(extra, world)
    # The isolation probes search for the other tenant's name, which would hide every row here.
    data.pop("search", None)
    checks_before = Check.objects.count()
    reports_before = Report.objects.count()

    for label, kwargs in variants(name, keywords, world):
        path = reverse(name, kwargs=kwargs)
        response = send(client, api_headers, name, method, path, data)

        if kind == "object":
            assert response.status_code in {403, 404}, f"{name} ({label}): {response.status_code}"
        elif kind == "list":
            assert response.status_code in {200, 302, 400, 403}, (
                f"{name} ({label}): {response.status_code}"
            )
        elif kind == "create":
            assert response.status_code in {200, 302, 400, 403, 404}, (
                f"{name} ({label}): {response.status_code}"
            )
        assert_hidden(response, world, name, label)

    assert Check.objects.count() == checks_before
    assert Report.objects.count() == reports_before


@pytest.mark.django_db
def test_objects_inside_scope_stay_visible(world, auditor_clients):
    client, api_headers = auditor_clients
    entity, check, report = world["entity"], world["visible_check"], world["visible_report"]

    pages = [
        reverse("web:entity-detail", kwargs={"entity_id": entity.pk}),
        reverse("web:check-detail", kwargs={"check_id": check.pk}),
        reverse("web:report-detail", kwargs={"report_id": report.pk}),
    ]
    for path in pages:
        assert_status(client.get(path), 200)

    check_list = client.get(reverse("web:check-list"))
    assert str(check.pk) in body_text(check_list)
    report_list = client.get(reverse("web:report-list"))
    assert str(report.pk) in body_text(report_list)

    api_report = client.get(
        reverse("api:report-detail", kwargs={"report_id": report.public_id}), headers=api_headers
    )
    assert_status(api_report, 200)
    api_checks = client.get(reverse("api:reports"), headers=api_headers)
    assert_status(api_checks, 200)
    assert [item["check_id"] for item in api_checks.json()["items"]] == [str(check.pk)]
    api_entities = client.get(reverse("api:entities"), headers=api_headers)
    assert [item["id"] for item in api_entities.json()["items"]] == [str(entity.pk)]


@pytest.mark.django_db
def test_scope_applies_to_auditors_only(world):
    membership = world["membership"]

    scope = membership_scope(membership)
    assert scope.entity_ids == frozenset([world["entity"].pk])
    assert scope.regulations == frozenset(["GDPR", "SOC2"])
    assert scope.is_limited

    membership.role = Role.OFFICER
    assert membership_scope(membership) == UNLIMITED
    assert AccessScope() == UNLIMITED


@pytest.mark.django_db
def test_banner_names_the_limits(world, auditor_clients):
    client, _ = auditor_clients

    body = client.get(reverse("web:overview")).content.decode()

    today = world["tenant"].today()
    start = today - dt.timedelta(days=SCOPE_DAYS - 1)
    assert "Your view is limited to" in body
    assert f"the entity {world['entity'].name};" in body
    assert "the regulations SOC 2 and GDPR;" in body
    assert f"the days from {start.day} {start:%b %Y} to {today.day} {today:%b %Y}" in body
    assert "GDPR, SOC2" not in body


def select_values(body, name):
    """Return the option values of the ``<select name="...">`` in ``body``."""
    match = re.search(rf'<select name="{name}".*?</select>', body, re.DOTALL)
    assert match, f"no select named {name}"
    return re.findall(r'<option value="([^"]*)"', match.group(0))


@pytest.mark.django_db
def test_check_filter_offers_scope_regulations(world, auditor_clients):
    client, _ = auditor_clients

    body = client.get(reverse("web:check-list")).content.decode()

    assert select_values(body, "framework") == ["", "soc2", "gdpr"]
    assert select_values(body, "agent_id") == ["", str(world["entity"].pk)]


@pytest.mark.django_db
def test_report_filter_offers_scope_regulations(world, auditor_clients):
    client, _ = auditor_clients

    body = client.get(reverse("web:report-list")).content.decode()

    assert select_values(body, "regulation") == ["", "SOC2", "GDPR"]
    assert select_values(body, "entity") == ["", str(world["entity"].pk)]


@pytest.mark.django_db
def test_controls_pages_offer_scope_regulations(world, auditor_clients):
    client, _ = auditor_clients

    listing = client.get(reverse("web:control-list")).content.decode()
    detail = client.get(reverse("web:control-detail", kwargs={"regulation": "SOC2"}))

    for body in (listing, detail.content.decode()):
        assert reverse("web:control-detail", kwargs={"regulation": "GDPR"}) in body
        assert reverse("web:control-detail", kwargs={"regulation": "HIPAA"}) not in body
        assert reverse("web:control-detail", kwargs={"regulation": "ISO27001"}) not in body


@pytest.mark.django_db
def test_api_filters_accept_other_regulations(world, auditor_clients):
    _, headers = auditor_clients

    checks = Client().get(reverse("api:reports"), {"framework": "hipaa"}, headers=headers)
    reports = Client().get(
        reverse("api:aggregated-reports"), {"regulation": "HIPAA"}, headers=headers
    )

    assert_status(checks, 200)
    assert checks.json()["total"] == 0
    assert_status(reports, 200)
    assert reports.json()["total"] == 0


@pytest.mark.django_db
def test_unlimited_auditor_sees_no_banner(client, login_as, world):
    login_as(Role.AUDITOR, username="plain-auditor")

    body = client.get(reverse("web:overview")).content.decode()

    assert "Your view is limited to" not in body
    assert world["hidden_entity"].name in client.get(reverse("web:entity-list")).content.decode()


@pytest.mark.django_db
def test_api_key_is_not_limited(world, client):
    _, plaintext = ApiKey.issue(tenant=world["tenant"], name="auditor key", role=Role.AUDITOR)

    response = client.get(reverse("api:entities"), headers={"X-API-Key": plaintext})

    ids = {item["id"] for item in response.json()["items"]}
    assert str(world["hidden_entity"].pk) in ids


@pytest.mark.django_db
def test_report_json_read_is_audited(world, auditor_clients):
    client, api_headers = auditor_clients
    report = world["visible_report"]

    response = client.get(
        reverse("api:report-detail", kwargs={"report_id": report.public_id}), headers=api_headers
    )

    assert_status(response, 200)
    [event] = AuditEvent.objects.filter(action=AuditAction.EXPORT_DOWNLOADED)
    assert event.actor_user == world["auditor"]
    assert event.target_id == str(report.pk)
    assert event.details == {
        "report_id": report.public_id,
        "format": "json",
        "digest": report.digest,
    }


@pytest.mark.django_db
def test_entity_in_a_scope_cannot_be_deleted(tenant, make_member, issue_key, client):
    chosen = Entity.objects.create(tenant=tenant, entity_type=EntityType.AGENT, name="Chosen")
    membership = Membership.objects.get(user=make_member(Role.AUDITOR, username="scoped"))
    membership.scope_entities.set([chosen])
    headers = {"X-API-Key": issue_key(tenant, role=Role.OFFICER)}

    response = client.delete(
        reverse("api:entity-detail", kwargs={"entity_id": chosen.pk}), headers=headers
    )

    assert_status(response, 409)
    assert "in the scope of the auditors scoped" in response.json()["message"]
    assert Entity.objects.filter(pk=chosen.pk).exists()


@pytest.mark.django_db
def test_scoped_auditor_cannot_create_keys(world, auditor_clients):
    client, api_headers = auditor_clients

    response = client.post(
        reverse("api:api-keys"),
        {"name": "wider", "role": "auditor"},
        content_type="application/json",
        headers=api_headers,
    )

    assert_status(response, 403)
    assert not ApiKey.objects.filter(name="wider").exists()


@pytest.mark.django_db
def test_pages_show_scoped_regulations_only(world, auditor_clients):
    client, _ = auditor_clients
    detail = reverse("web:entity-detail", kwargs={"entity_id": world["entity"].pk})

    for path in (reverse("web:overview"), detail):
        body = client.get(path).content.decode()
        assert "SOC 2" in body, path
        assert "HIPAA Security Rule" not in body, path
        assert "ISO/IEC 27001" not in body, path


@pytest.mark.django_db
def test_entity_trends_stay_within_period(tenant, entity):
    # Fixed days, so that February lies whole inside the last 60-day bucket and
    # before the scope's first day: the rollups read such a month from its month row.
    today = dt.date(2026, 3, 20)
    start = dt.date(2026, 3, 10)
    fail, passed, high = FindingStatus.FAIL, FindingStatus.PASS, Severity.HIGH
    make_check(entity, "SOC2", at_noon(tenant, dt.date(2026, 1, 5)), [("CC6.1", fail, high)])
    make_check(entity, "SOC2", at_noon(tenant, dt.date(2026, 2, 5)), [("CC7.1", fail, high)])
    make_check(entity, "SOC2", at_noon(tenant, dt.date(2026, 3, 17)), [("CC6.1", passed, high)])
    entity.tenant = attach_scope(tenant, AccessScope(start=start))

    for bucket_days in (7, 30, 60):
        trends = entity_trends(entity, today, window_days=180, bucket_days=bucket_days)

        points = trends["SOC2"]["points"]
        before = [point for point in points if dt.date.fromisoformat(point["end"]) < start]
        assert before, f"no {bucket_days}-day bucket lies before the scope's first day"
        for point in before:
            assert point["score"] is None, point
            assert point["checks"] == 0, point
        assert points[-1]["score"] == 100, points[-1]


@pytest.mark.django_db
def test_open_findings_stay_within_period(tenant, entity):
    high = Severity.HIGH
    make_check(
        entity,
        "SOC2",
        at_noon(tenant, dt.date(2026, 1, 5)),
        [("CC6.1", FindingStatus.FAIL, high), ("CC7.1", FindingStatus.FAIL, high)],
    )
    make_check(
        entity, "SOC2", at_noon(tenant, dt.date(2026, 3, 17)), [("CC6.1", FindingStatus.PASS, high)]
    )
    entity.tenant = attach_scope(tenant, AccessScope(end=dt.date(2026, 2, 28)))

    latest = {finding.control_id: finding.status for finding in latest_findings(entity)}

    assert latest == {"CC6.1": FindingStatus.FAIL, "CC7.1": FindingStatus.FAIL}
