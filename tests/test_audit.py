"""The audit trail: request ids, recorded events, append-only rows, the page and the API."""

import datetime as dt
import logging
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import ProtectedError
from django.test import RequestFactory, override_settings
from django.urls import reverse
from django.utils import timezone

from compliance.audit.middleware import accepted_request_id, client_address
from compliance.audit.models import (
    AuditAction,
    AuditEvent,
    AuditEventImmutableError,
    AuditOutcome,
)
from compliance.audit.services import record_event
from compliance.catalog.models import Severity
from compliance.checks.models import FindingStatus
from compliance.keys.models import ApiKey, parse_key
from compliance.reports.models import Report
from compliance.reports.services import request_report
from compliance.reports.tasks import render_pdf_after_generation
from compliance.tenancy.models import Role
from tests.conftest import MEMBER_PASSWORD, Api, assert_status

REPORTS_API = "/v1/compliance/reports"
AUDIT_PAGE = reverse("web:audit-list")


@pytest.fixture(autouse=True)
def empty_cache():
    """Start and end every test with empty throttle and audit counters."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def evidence(entity, check_factory):
    return check_factory(
        entity,
        "SOC2",
        timezone.now() - dt.timedelta(days=2),
        [
            ("CC6.1", FindingStatus.PASS, Severity.HIGH),
            ("CC7.2", FindingStatus.FAIL, Severity.MEDIUM),
        ],
    )


def events(action):
    return list(AuditEvent.objects.filter(action=action).order_by("occurred_at", "id"))


def only_event(action):
    found = events(action)
    assert len(found) == 1, f"expected one {action} event, found {len(found)}"
    return found[0]


def report_body(entity, days=7):
    end = timezone.localdate()
    return {
        "entity_type": entity.entity_type,
        "entity_id": str(entity.pk),
        "regulation": "SOC2",
        "period_start": (end - dt.timedelta(days=days - 1)).isoformat(),
        "period_end": end.isoformat(),
    }


def make_event(tenant, action=AuditAction.LOGIN, **fields):
    fields.setdefault("actor_name", "alice")
    return record_event(action, tenant=tenant, **fields)


# Request ids and client addresses


def test_response_gets_new_request_id(client, db):
    response = client.get(reverse("web:login"))

    assert response["X-Request-ID"]
    assert uuid.UUID(response["X-Request-ID"]).version == 4


def test_sane_request_id_is_echoed(client, db):
    response = client.get(reverse("web:login"), headers={"X-Request-ID": "trace-42.a:b_c"})

    assert response["X-Request-ID"] == "trace-42.a:b_c"


@pytest.mark.parametrize("raw", ["has space", "x" * 129, "semi;colon", "", 'quote"d'])
def test_unsafe_request_id_is_replaced(raw):
    accepted = accepted_request_id(raw)

    assert accepted != raw
    assert uuid.UUID(accepted).version == 4


def test_client_address_ignores_forwarded_for_by_default():
    request = RequestFactory().get(
        "/", REMOTE_ADDR="127.0.0.9", HTTP_X_FORWARDED_FOR="127.0.0.5, 127.0.0.6"
    )

    assert client_address(request) == "127.0.0.9"


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (1, "127.0.0.5, 127.0.0.6", "127.0.0.6"),
        (2, "127.0.0.5, 127.0.0.6", "127.0.0.5"),
        (2, "127.0.0.4, 127.0.0.5, 127.0.0.6", "127.0.0.5"),
        (3, "127.0.0.5, 127.0.0.6", "127.0.0.5"),
        (1, "", "127.0.0.9"),
        (1, "not-an-address", None),
        (1, "::1", "::1"),
    ],
)
def test_client_address_with_trusted_proxies(settings, hops, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = hops
    request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.9", HTTP_X_FORWARDED_FOR=forwarded)

    assert client_address(request) == expected


# Logins


def test_login_records_event(client, make_member, tenant):
    user = make_member(Role.AUDITOR, username="alice")

    response = client.post(reverse("web:login"), {"username": "alice", "password": MEMBER_PASSWORD})

    assert response.status_code == 302
    event = only_event(AuditAction.LOGIN)
    assert event.tenant == tenant
    assert event.actor_user == user
    assert event.actor_name == "alice"
    assert event.outcome == AuditOutcome.SUCCESS
    assert event.request_id == response["X-Request-ID"]
    assert event.client_address == "127.0.0.1"


def test_login_records_one_event_per_tenant(client, make_member, tenant, other_tenant):
    user = make_member(Role.AUDITOR, username="alice")
    user.memberships.create(tenant=other_tenant, role=Role.ADMIN)

    client.post(reverse("web:login"), {"username": "alice", "password": MEMBER_PASSWORD})

    assert {event.tenant for event in events(AuditAction.LOGIN)} == {tenant, other_tenant}


def test_failed_login_records_event(client, make_member, tenant):
    user = make_member(Role.AUDITOR, username="alice")

    response = client.post(reverse("web:login"), {"username": "alice", "password": "wrong-pass"})

    assert response.status_code == 200
    event = only_event(AuditAction.LOGIN_FAILED)
    assert event.tenant == tenant
    assert event.actor_user is None
    assert event.actor_name == "alice"
    assert event.target_id == str(user.pk)
    assert event.outcome == AuditOutcome.FAILURE
    assert event.request_id == response["X-Request-ID"]
    assert event.details == {"reason": "invalid_credentials", "username_known": True}
    assert "wrong-pass" not in str(event.details)


def test_failed_login_unknown_user_has_no_tenant(client, db):
    client.post(reverse("web:login"), {"username": "typo-or-password", "password": "x"})

    event = only_event(AuditAction.LOGIN_FAILED)
    assert event.tenant is None
    assert event.actor_name == ""
    assert event.details["username_known"] is False


def test_logout_records_event(client, make_member, tenant):
    user = make_member(Role.AUDITOR, username="alice")
    client.force_login(user)

    response = client.post(reverse("web:logout"))

    event = only_event(AuditAction.LOGOUT)
    assert event.actor_user == user
    assert event.request_id == response["X-Request-ID"]


# API authentication and key use


def test_unknown_api_key_records_failure(client, db, caplog):
    key = "cmp_0123456789ab_not-a-real-secret-value"

    with caplog.at_level(logging.DEBUG):
        response = client.get(REPORTS_API, headers={"X-API-Key": key})

    assert response.status_code == 401
    event = only_event(AuditAction.AUTH_FAILED)
    assert event.tenant is None
    assert event.outcome == AuditOutcome.FAILURE
    assert event.request_id == response["X-Request-ID"]
    assert event.details == {
        "method": "api_key",
        "reason": "unknown_key",
        "key_prefix": "cmp_0123456789ab",
    }
    assert "not-a-real-secret-value" not in caplog.text


def test_wrong_secret_records_failure_in_key_tenant(client, tenant, issue_key, caplog):
    lookup, secret = parse_key(issue_key(tenant))
    forged = f"cmp_{lookup}_{secret[::-1]}"

    with caplog.at_level(logging.DEBUG):
        response = client.get(REPORTS_API, headers={"X-API-Key": forged})

    assert response.status_code == 401
    event = only_event(AuditAction.AUTH_FAILED)
    assert event.tenant == tenant
    assert event.actor_key is None
    assert event.target_id == str(ApiKey.objects.get().pk)
    assert event.details["reason"] == "wrong_secret"
    assert secret not in caplog.text
    assert secret[::-1] not in caplog.text
    assert secret not in str(event.details)


def test_revoked_key_records_failure(client, tenant):
    api_key, plaintext = ApiKey.issue(tenant=tenant, name="old", role=Role.AUDITOR)
    api_key.revoke()

    response = client.get(REPORTS_API, headers={"X-API-Key": plaintext})

    assert response.status_code == 401
    assert only_event(AuditAction.AUTH_FAILED).details["reason"] == "inactive_key"


def test_malformed_key_records_no_prefix(client, db):
    response = client.get(REPORTS_API, headers={"X-API-Key": "garbage-secret"})

    assert response.status_code == 401
    event = only_event(AuditAction.AUTH_FAILED)
    assert event.details == {"method": "api_key", "reason": "malformed_key", "key_prefix": None}
    assert event.actor_name == ""


@override_settings(AUDIT_UNAUTHENTICATED_EVENTS_PER_MINUTE=2)
def test_failed_authentication_events_are_capped(client, db, caplog):
    with caplog.at_level(logging.WARNING, logger="compliance.audit.services"):
        for _ in range(4):
            response = client.get(REPORTS_API, headers={"X-API-Key": "cmp_0123456789ab_x"})
            assert response.status_code == 401

    assert len(events(AuditAction.AUTH_FAILED)) == 2
    warnings = [record for record in caplog.records if "not recorded" in record.getMessage()]
    assert len(warnings) == 1


def test_key_use_recorded_once_per_minute(client, tenant):
    api_key, plaintext = ApiKey.issue(tenant=tenant, name="ci", role=Role.AUDITOR)

    first = client.get(REPORTS_API, headers={"X-API-Key": plaintext})
    client.get(REPORTS_API, headers={"X-API-Key": plaintext})

    event = only_event(AuditAction.KEY_USED)
    assert event.actor_key == api_key
    assert event.actor_name == f"API key ci ({api_key.display_prefix})"
    assert event.tenant == tenant
    assert event.request_id == first["X-Request-ID"]

    ApiKey.objects.filter(pk=api_key.pk).update(
        last_used_at=timezone.now() - dt.timedelta(minutes=2)
    )
    later = client.get(REPORTS_API, headers={"X-API-Key": plaintext})

    used = events(AuditAction.KEY_USED)
    assert len(used) == 2
    assert used[1].request_id == later["X-Request-ID"]


# API keys page


def test_key_creation_recorded(client, login_as, tenant):
    admin = login_as(Role.ADMIN)

    response = client.post(reverse("web:api-key-list"), {"name": "CI", "role": "officer"})

    assert response.status_code == 201
    api_key = ApiKey.objects.get()
    event = only_event(AuditAction.KEY_CREATED)
    assert event.actor_user == admin
    assert event.tenant == tenant
    assert event.target_id == str(api_key.pk)
    assert event.request_id == response["X-Request-ID"]
    assert event.details["key_prefix"] == api_key.display_prefix
    assert event.details["role"] == "officer"
    plaintext = response.context["new_key"]["plaintext"]
    secret = parse_key(plaintext)[1]
    assert secret not in str(event.details)


def test_key_revocation_recorded(client, login_as, tenant):
    admin = login_as(Role.ADMIN)
    api_key, _ = ApiKey.issue(tenant=tenant, name="old", role=Role.AUDITOR)

    response = client.post(reverse("web:api-key-revoke", kwargs={"key_id": api_key.pk}))

    event = only_event(AuditAction.KEY_REVOKED)
    assert event.actor_user == admin
    assert event.target_id == str(api_key.pk)
    assert event.request_id == response["X-Request-ID"]


# Reports


def test_page_report_request_recorded(client, login_as, tenant, entity, evidence):
    officer = login_as(Role.OFFICER)
    today = timezone.now().astimezone(tenant.zone).date()
    form = {
        "entity": str(entity.pk),
        "regulation": "SOC2",
        "period": "custom",
        "period_start": (today - dt.timedelta(days=6)).isoformat(),
        "period_end": today.isoformat(),
    }

    response = client.post(reverse("web:report-new"), form)

    assert response.status_code == 302
    report = Report.objects.get()
    requested = only_event(AuditAction.REPORT_REQUESTED)
    generated = only_event(AuditAction.REPORT_GENERATED)
    for event in (requested, generated):
        assert event.actor_user == officer
        assert event.tenant == tenant
        assert event.target_id == str(report.pk)
        assert event.request_id == response["X-Request-ID"]
        assert event.outcome == AuditOutcome.SUCCESS
    assert requested.details["in_background"] is False
    assert generated.details["digest"] == report.digest


def test_api_report_request_recorded_for_key(client, tenant, entity, evidence):
    api_key, plaintext = ApiKey.issue(tenant=tenant, name="ci", role=Role.OFFICER)

    response = client.post(
        REPORTS_API,
        report_body(entity),
        content_type="application/json",
        headers={"X-API-Key": plaintext},
    )

    assert_status(response, 201)
    for action in (AuditAction.REPORT_REQUESTED, AuditAction.REPORT_GENERATED):
        event = only_event(action)
        assert event.actor_key == api_key
        assert event.actor_user is None
        assert event.request_id == response["X-Request-ID"]
        assert event.details["report_id"] == response.json()["id"]


def test_failed_generation_recorded(client, tenant, entity, monkeypatch):
    _, plaintext = ApiKey.issue(tenant=tenant, name="ci", role=Role.OFFICER)

    def broken_build(*args, **kwargs):
        raise RuntimeError("aggregation broke")

    monkeypatch.setattr("compliance.reports.services.build_report", broken_build)
    response = client.post(
        REPORTS_API,
        report_body(entity),
        content_type="application/json",
        headers={"X-API-Key": plaintext},
    )

    assert response.json()["status"] == "failed"
    event = only_event(AuditAction.REPORT_GENERATED)
    assert event.outcome == AuditOutcome.FAILURE
    assert event.details["error"] == "Aggregation failed: RuntimeError"


def test_pdf_download_recorded(client, login_as, tenant, entity, evidence):
    auditor = login_as(Role.AUDITOR)
    today = timezone.now().astimezone(tenant.zone).date()
    report = request_report(
        tenant=tenant,
        entity=entity,
        regulation="SOC2",
        period_start=today - dt.timedelta(days=6),
        period_end=today,
    )

    response = client.get(reverse("web:report-pdf", kwargs={"report_id": report.pk}))

    assert response.status_code == 200
    report.refresh_from_db()
    event = only_event(AuditAction.PDF_DOWNLOADED)
    assert event.actor_user == auditor
    assert event.target_id == str(report.pk)
    assert event.request_id == response["X-Request-ID"]
    assert event.details == {"report_id": report.public_id, "pdf_sha256": report.pdf_sha256}


def test_pdf_rendered_by_download_names_user(client, login_as, tenant, entity, evidence):
    auditor = login_as(Role.AUDITOR)
    today = timezone.now().astimezone(tenant.zone).date()
    report = request_report(
        tenant=tenant,
        entity=entity,
        regulation="SOC2",
        period_start=today - dt.timedelta(days=6),
        period_end=today,
    )

    response = client.get(reverse("web:report-pdf", kwargs={"report_id": report.pk}))

    assert response.status_code == 200
    rendered = only_event(AuditAction.PDF_RENDERED)
    assert rendered.actor_user == auditor
    assert rendered.actor_key is None
    assert rendered.actor_name == auditor.get_username()
    assert rendered.request_id == response["X-Request-ID"]


@pytest.mark.parametrize("endpoint", ["pdf", "verification"])
def test_pdf_rendered_by_api_names_key(client, tenant, entity, evidence, endpoint):
    api_key, plaintext = ApiKey.issue(tenant=tenant, name="ci", role=Role.AUDITOR)
    today = timezone.now().astimezone(tenant.zone).date()
    report = request_report(
        tenant=tenant,
        entity=entity,
        regulation="SOC2",
        period_start=today - dt.timedelta(days=6),
        period_end=today,
    )

    response = client.get(
        f"{REPORTS_API}/{report.public_id}/{endpoint}", headers={"X-API-Key": plaintext}
    )

    assert response.status_code == 200
    rendered = only_event(AuditAction.PDF_RENDERED)
    assert rendered.actor_key == api_key
    assert rendered.actor_user is None
    assert rendered.actor_name.startswith("API key ci ")


def test_pdf_rendered_by_worker_has_no_actor(tenant, entity, evidence):
    today = timezone.now().astimezone(tenant.zone).date()
    report = request_report(
        tenant=tenant,
        entity=entity,
        regulation="SOC2",
        period_start=today - dt.timedelta(days=6),
        period_end=today,
    )

    render_pdf_after_generation(report)

    rendered = only_event(AuditAction.PDF_RENDERED)
    assert rendered.actor_user is None
    assert rendered.actor_key is None
    assert rendered.actor_name == ""


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_background_generation_keeps_request_id(live_server, tenant, entity, evidence, run_worker):
    api_key, plaintext = ApiKey.issue(tenant=tenant, name="ci", role=Role.OFFICER)
    api = Api(live_server.url, plaintext)

    response = api.post(REPORTS_API, json=report_body(entity, days=60))
    assert_status(response, 202)
    run_worker()

    requested = only_event(AuditAction.REPORT_REQUESTED)
    generated = only_event(AuditAction.REPORT_GENERATED)
    assert requested.request_id == response.headers["X-Request-ID"]
    assert generated.request_id == response.headers["X-Request-ID"]
    assert generated.actor_key == api_key
    assert generated.client_address is None


# Append-only rows


def test_existing_event_cannot_be_saved(tenant):
    event = make_event(tenant)
    event.actor_name = "mallory"

    with pytest.raises(AuditEventImmutableError):
        event.save()

    event.refresh_from_db()
    assert event.actor_name == "alice"


def test_event_cannot_be_deleted(tenant):
    event = make_event(tenant)

    with pytest.raises(AuditEventImmutableError):
        event.delete()
    with pytest.raises(AuditEventImmutableError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(AuditEventImmutableError):
        AuditEvent.objects.all().delete()

    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_events_cannot_be_updated_in_bulk(tenant):
    event = make_event(tenant)

    with pytest.raises(AuditEventImmutableError):
        AuditEvent.objects.filter(pk=event.pk).update(actor_name="mallory")
    event.actor_name = "mallory"
    with pytest.raises(AuditEventImmutableError):
        AuditEvent.objects.bulk_update([event], ["actor_name"])

    assert AuditEvent.objects.get(pk=event.pk).actor_name == "alice"


def test_deleted_user_keeps_actor_name(tenant, make_member):
    user = make_member(Role.AUDITOR, username="alice")
    event = make_event(tenant, user=user, actor_name=None)

    get_user_model().objects.filter(pk=user.pk).delete()

    event = AuditEvent.objects.get(pk=event.pk)
    assert event.actor_user is None
    assert event.actor_name == "alice"


def test_tenant_with_events_is_protected(tenant):
    make_event(tenant)

    with pytest.raises(ProtectedError):
        tenant.delete()


def test_secret_details_are_dropped(tenant, caplog):
    with caplog.at_level(logging.WARNING):
        event = make_event(
            tenant,
            details={
                "name": "ok",
                "password": "hunter2",
                "nested": {"api_secret": "s3", "Authorization": "Bearer x", "kept": 1},
                "refresh_token": "t",
            },
        )

    assert event.details == {"name": "ok", "nested": {"kept": 1}}
    assert "hunter2" not in caplog.text


# The audit page


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.OFFICER])
def test_audit_page_needs_admin(client, login_as, role):
    login_as(role)

    response = client.get(AUDIT_PAGE)

    assert response.status_code == 403
    assert reverse("web:audit-list") not in client.get(reverse("web:report-list")).content.decode()


def test_audit_page_names_worker_actor(client, login_as, tenant):
    login_as(Role.ADMIN, username="root")
    make_event(tenant, AuditAction.PDF_RENDERED, actor_name="")
    make_event(tenant, AuditAction.LOGIN_FAILED, actor_name="")

    response = client.get(AUDIT_PAGE, {"action": "pdf_rendered"})

    html = response.content.decode()
    assert "System (worker)" in html
    assert "Unknown" not in html

    response = client.get(AUDIT_PAGE, {"action": "login_failed"})

    html = response.content.decode()
    assert "Unknown" in html
    assert "System (worker)" not in html


def test_audit_page_redirects_anonymous(client, db):
    response = client.get(AUDIT_PAGE)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("web:login"))


def test_audit_page_lists_tenant_events(client, login_as, tenant, other_tenant):
    login_as(Role.ADMIN, username="root")
    make_event(tenant, actor_name="older-actor")
    make_event(tenant, AuditAction.KEY_CREATED, actor_name="newer-actor")
    make_event(other_tenant, actor_name="foreign-actor")
    make_event(None, AuditAction.AUTH_FAILED, actor_name="no-tenant-actor")

    response = client.get(AUDIT_PAGE)

    assert response.status_code == 200
    # login_as logged "root" in first, which is recorded as the oldest event.
    names = [event.actor_name for event in response.context["page"].object_list]
    assert names == ["newer-actor", "older-actor", "root"]
    html = response.content.decode()
    assert "API key created" in html
    assert f'href="{AUDIT_PAGE}" aria-current="page"' in html


def test_audit_page_filters(client, login_as, tenant):
    login_as(Role.ADMIN, username="root")
    make_event(tenant, AuditAction.KEY_CREATED, actor_name="Alice")
    make_event(tenant, AuditAction.KEY_CREATED, actor_name="bob")
    make_event(tenant, AuditAction.LOGIN_FAILED, actor_name="alice", outcome="failure")

    def listed(**query):
        response = client.get(AUDIT_PAGE, query)
        assert response.status_code == 200
        return sorted(
            (event.action, event.actor_name) for event in response.context["page"].object_list
        )

    assert listed(action="key_created", actor="ALI") == [("key_created", "Alice")]
    assert listed(action="KEY_CREATED") == [("key_created", "Alice"), ("key_created", "bob")]
    assert listed(outcome="failure") == [("login_failed", "alice")]
    assert listed(actor="nobody") == []


def test_audit_page_date_range_in_tenant_zone(client, login_as, tenant):
    login_as(Role.ADMIN, username="root")
    # Europe/Berlin is UTC+1 in January: 23:30 UTC on the 9th is the 10th there.
    late = dt.datetime(2026, 1, 9, 23, 30, tzinfo=dt.UTC)
    AuditEvent.objects.create(
        tenant=tenant, action=AuditAction.LOGIN, actor_name="dated", occurred_at=late
    )

    def names(**query):
        page = client.get(AUDIT_PAGE, query).context["page"]
        return [event.actor_name for event in page.object_list]

    assert names(date_from="2026-01-10", date_to="2026-01-10") == ["dated"]
    assert names(date_from="2026-01-09", date_to="2026-01-09") == []
    assert "dated" not in names(date_from="2026-01-11")
    assert "dated" in names(date_from="0001-01-01", date_to="9999-12-31")


def test_audit_page_rejects_reversed_dates(client, login_as, tenant):
    login_as(Role.ADMIN)
    make_event(tenant)

    response = client.get(AUDIT_PAGE, {"date_from": "2026-02-10", "date_to": "2026-02-01"})

    assert response.status_code == 200
    assert list(response.context["page"].object_list) == []
    html = response.content.decode()
    assert "is before the start date" in html
    assert "Correct the filters above" in html


def test_audit_page_paginates_with_filters(client, login_as, tenant):
    login_as(Role.ADMIN, username="root")
    for index in range(55):
        make_event(tenant, AuditAction.KEY_USED, actor_name=f"key-{index}")

    first = client.get(AUDIT_PAGE, {"action": "key_used"})
    second = client.get(AUDIT_PAGE, {"action": "key_used", "page": "2"})

    assert len(first.context["page"].object_list) == 50
    assert len(second.context["page"].object_list) == 5
    assert "?action=key_used&amp;page=2" in first.content.decode()
    first_names = {event.actor_name for event in first.context["page"].object_list}
    second_names = {event.actor_name for event in second.context["page"].object_list}
    assert not first_names & second_names


# The audit API


@pytest.fixture
def admin_key(tenant, issue_key):
    return issue_key(tenant, role=Role.ADMIN, name="admin key")


def api_get(client, key, **query):
    return client.get("/v1/audit-events", query, headers={"X-API-Key": key})


def test_audit_api_lists_newest_first(client, tenant, other_tenant, admin_key):
    make_event(tenant, actor_name="first")
    make_event(tenant, AuditAction.KEY_CREATED, actor_name="second")
    make_event(other_tenant, actor_name="foreign")

    response = api_get(client, admin_key)

    assert_status(response, 200)
    body = response.json()
    # The admin key's own key_used event is the newest.
    assert body["total"] == 3
    names = [item["actor_name"] for item in body["items"]]
    assert names[1:] == ["second", "first"]
    item = body["items"][1]
    assert set(item) == {
        "id",
        "occurred_at",
        "action",
        "outcome",
        "actor_name",
        "actor_user_id",
        "actor_key_id",
        "target_type",
        "target_id",
        "request_id",
        "client_address",
        "details",
    }
    assert item["occurred_at"].endswith("Z")


def test_audit_api_filters_and_pages(client, tenant, admin_key):
    for index in range(5):
        make_event(tenant, AuditAction.KEY_CREATED, actor_name=f"creator-{index}")
    make_event(tenant, AuditAction.LOGIN_FAILED, actor_name="x", outcome="failure")

    page = api_get(client, admin_key, action="KEY_CREATED", limit="2", offset="1").json()
    failures = api_get(client, admin_key, outcome="failure").json()
    today = timezone.now().date().isoformat()
    dated = api_get(client, admin_key, date_from=today, date_to=today, actor="creator").json()

    assert page["total"] == 5
    assert [item["actor_name"] for item in page["items"]] == ["creator-3", "creator-2"]
    assert [item["actor_name"] for item in failures["items"]] == ["x"]
    assert dated["total"] == 5


@pytest.mark.parametrize(
    ("date_from", "date_to"),
    [("0001-01-01", "9999-12-31"), ("0001-01-02", "9999-12-30"), ("9999-12-31", "9999-12-31")],
)
def test_audit_api_extreme_dates(client, tenant, admin_key, date_from, date_to):
    make_event(tenant)

    response = api_get(client, admin_key, date_from=date_from, date_to=date_to)

    assert_status(response, 200)
    assert response.json()["total"] == (0 if date_from.startswith("9999") else 2)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"action": "explode"}, "action"),
        ({"outcome": "maybe"}, "outcome"),
        ({"date_from": "10/01/2026"}, "date_from"),
        ({"date_from": "2026-02-10", "date_to": "2026-02-01"}, "date_to"),
        ({"limit": "0"}, "limit"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_audit_api_rejects_bad_query(client, admin_key, query, field):
    response = api_get(client, admin_key, **query)

    assert_status(response, 400)
    assert field in response.json()["details"]


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.OFFICER])
def test_audit_api_needs_admin(client, tenant, issue_key, role):
    response = api_get(client, issue_key(tenant, role=role))

    assert_status(response, 403)


def test_audit_api_needs_credentials(client, db):
    response = client.get("/v1/audit-events")

    assert_status(response, 401)
    assert response["WWW-Authenticate"] == 'X-API-Key realm="api"'


# Over real HTTP


@pytest.mark.django_db(transaction=True)
def test_live_server_request_id_and_key_use(live_server, tenant, caplog):
    api_key, plaintext = ApiKey.issue(tenant=tenant, name="live", role=Role.AUDITOR)
    secret = parse_key(plaintext)[1]
    api = Api(live_server.url, plaintext)

    with caplog.at_level(logging.DEBUG):
        response = api.get(REPORTS_API, headers={"X-Request-ID": "live-trace-1"})
        failed = Api(live_server.url, plaintext + "x").get(REPORTS_API)

    assert_status(response, 200)
    assert response.headers["X-Request-ID"] == "live-trace-1"
    used = only_event(AuditAction.KEY_USED)
    assert used.request_id == "live-trace-1"
    assert used.client_address == "127.0.0.1"
    assert used.actor_key == api_key
    assert_status(failed, 401)
    assert only_event(AuditAction.AUTH_FAILED).request_id == failed.headers["X-Request-ID"]
    assert secret not in caplog.text


def test_key_secret_not_logged_on_exception(client, tenant, monkeypatch, caplog):
    _, plaintext = ApiKey.issue(tenant=tenant, name="ci", role=Role.AUDITOR)

    def broken(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr("compliance.keys.authentication.ApiKey.matches", broken)
    with caplog.at_level(logging.DEBUG):
        response = client.get(REPORTS_API, headers={"X-API-Key": plaintext})

    assert response.status_code == 500
    assert "database went away" in caplog.text
    assert parse_key(plaintext)[1] not in caplog.text
    assert plaintext not in caplog.text
