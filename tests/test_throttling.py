"""Rate limits: API requests per key or token subject, and failed logins on the login page."""

import datetime as dt
import logging
import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.cache import cache
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from compliance.audit.models import AuditAction, AuditEvent
from compliance.keys.checks import check_rate_limit
from compliance.keys.throttles import ApiClientRateThrottle
from compliance.tenancy.models import Role
from tests.conftest import MEMBER_PASSWORD, assert_status

REPORTS_API = "/v1/compliance/reports"
LOGIN_URL = reverse("web:login")


@pytest.fixture(autouse=True)
def empty_counters():
    """Start each test with empty rate-limit counters."""
    cache.clear()
    yield
    cache.clear()


def get_reports(client, key):
    return client.get(REPORTS_API, headers={"X-API-Key": key})


def assert_throttled(response, max_wait):
    assert_status(response, 429)
    assert response.json()["code"] == "rate_limited"
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= max_wait


# API requests


@override_settings(API_RATE_LIMIT="3/minute")
def test_key_throttled_after_limit(client, tenant, issue_key):
    key = issue_key(tenant, role=Role.AUDITOR)

    for _ in range(3):
        assert_status(get_reports(client, key), 200)
    response = get_reports(client, key)

    assert_throttled(response, 60)


@override_settings(API_RATE_LIMIT="2/minute")
def test_keys_counted_apart(client, tenant, issue_key):
    first = issue_key(tenant, role=Role.AUDITOR, name="first")
    second = issue_key(tenant, role=Role.AUDITOR, name="second")

    for _ in range(2):
        assert_status(get_reports(client, first), 200)

    assert_throttled(get_reports(client, first), 60)
    assert_status(get_reports(client, second), 200)


@override_settings(API_RATE_LIMIT="")
def test_empty_rate_disables_limit(client, tenant, issue_key):
    key = issue_key(tenant, role=Role.AUDITOR)

    for _ in range(12):
        assert_status(get_reports(client, key), 200)


@override_settings(API_RATE_LIMIT="2/second")
def test_limit_resets_after_period(client, tenant, issue_key):
    key = issue_key(tenant, role=Role.AUDITOR)
    for _ in range(2):
        assert_status(get_reports(client, key), 200)
    assert_throttled(get_reports(client, key), 1)

    time.sleep(1.1)

    assert_status(get_reports(client, key), 200)


@override_settings(API_RATE_LIMIT="1/minute")
def test_unauthenticated_requests_not_counted(client, db):
    for _ in range(3):
        assert_status(client.get(REPORTS_API), 401)


def test_wait_rounds_up_to_whole_seconds():
    with override_settings(API_RATE_LIMIT="1/minute"):
        throttle = ApiClientRateThrottle()
    throttle.now = 1000.0
    throttle.history = [940.4]

    assert throttle.wait() == 1


@pytest.mark.parametrize(
    ("rate", "valid"),
    [("600/minute", True), ("10/s", True), ("", True), ("600 per minute", False), ("x/m", False)],
)
def test_rate_setting_checked(rate, valid):
    with override_settings(API_RATE_LIMIT=rate):
        errors = check_rate_limit(None)

    assert (errors == []) is valid
    if not valid:
        assert errors[0].id == "keys.E002"


@pytest.fixture(scope="module")
def signing_key(tmp_path_factory):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    folder = tmp_path_factory.mktemp("throttle-jwt")
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (folder / "public.pem").write_bytes(public)
    return key, folder / "public.pem"


def token_for(key, subject, token_id):
    now = timezone.now()
    claims = {
        "iss": "throttle-tests-idp",
        "aud": "compliance-api",
        "sub": subject,
        "iat": int(now.timestamp()),
        "exp": int((now + dt.timedelta(minutes=5)).timestamp()),
        "jti": token_id,
    }
    return jwt.encode(claims, key, algorithm="RS256")


def test_token_subject_shares_limit(client, make_member, signing_key):
    make_member(Role.AUDITOR, username="alice")
    key, public_path = signing_key
    first, second = token_for(key, "alice", "one"), token_for(key, "alice", "two")

    with override_settings(
        API_RATE_LIMIT="2/minute",
        JWT_ALGORITHM="RS256",
        JWT_PUBLIC_KEY="",
        JWT_PUBLIC_KEY_FILE=str(public_path),
        JWT_JWKS_FILE="",
        JWT_ISSUER="throttle-tests-idp",
        JWT_AUDIENCE=["compliance-api"],
    ):
        responses = [
            client.get(REPORTS_API, headers={"Authorization": f"Bearer {token}"})
            for token in (first, second, first)
        ]

    assert_status(responses[0], 200)
    assert_status(responses[1], 200)
    assert_throttled(responses[2], 60)


@pytest.mark.django_db(transaction=True)
def test_live_server_throttle(live_server, tenant, issue_key):
    key = issue_key(tenant, role=Role.AUDITOR)
    session = requests.Session()
    session.headers["X-API-Key"] = key

    with override_settings(API_RATE_LIMIT="2/minute"):
        statuses = [
            session.get(live_server.url + REPORTS_API, timeout=30).status_code for _ in range(2)
        ]
        throttled = session.get(live_server.url + REPORTS_API, timeout=30)

    assert statuses == [200, 200]
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60


# Failed logins


def log_in(client, username, password, address="127.0.0.1"):
    return client.post(LOGIN_URL, {"username": username, "password": password}, REMOTE_ADDR=address)


@override_settings(LOGIN_FAILURE_LIMIT_PER_USERNAME=3, LOGIN_FAILURE_LIMIT_PER_ADDRESS=100)
def test_username_locked_after_failures(client, make_member):
    make_member(Role.AUDITOR, username="alice")
    for _ in range(3):
        assert log_in(client, "alice", "wrong").status_code == 200

    response = log_in(client, "alice", MEMBER_PASSWORD)

    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 15 * 60
    assert "Too many failed login attempts. Try again in 15 minutes." in response.content.decode()
    assert "_auth_user_id" not in client.session


@override_settings(LOGIN_FAILURE_LIMIT_PER_USERNAME=3, LOGIN_FAILURE_LIMIT_PER_ADDRESS=100)
def test_username_lock_spans_addresses(client, make_member):
    make_member(Role.AUDITOR, username="alice")
    for index in range(3):
        log_in(client, "alice", "wrong", address=f"127.0.0.{index + 2}")

    response = log_in(client, "ALICE", MEMBER_PASSWORD, address="127.0.0.9")

    assert response.status_code == 429


@override_settings(LOGIN_FAILURE_LIMIT_PER_USERNAME=100, LOGIN_FAILURE_LIMIT_PER_ADDRESS=3)
def test_address_locked_after_failures(client, make_member):
    make_member(Role.AUDITOR, username="alice")
    for index in range(3):
        assert log_in(client, f"guess-{index}", "wrong").status_code == 200

    locked = log_in(client, "alice", MEMBER_PASSWORD)
    elsewhere = log_in(client, "alice", MEMBER_PASSWORD, address="127.0.0.2")

    assert locked.status_code == 429
    assert elsewhere.status_code == 302


@override_settings(LOGIN_FAILURE_LIMIT_PER_USERNAME=3, LOGIN_FAILURE_LIMIT_PER_ADDRESS=100)
def test_success_clears_username_failures(client, make_member):
    make_member(Role.AUDITOR, username="alice")
    for _ in range(2):
        log_in(client, "alice", "wrong")
    assert log_in(client, "alice", MEMBER_PASSWORD).status_code == 302
    client.post(reverse("web:logout"))

    for _ in range(2):
        assert log_in(client, "alice", "wrong").status_code == 200

    assert log_in(client, "alice", MEMBER_PASSWORD).status_code == 302


@override_settings(LOGIN_FAILURE_LIMIT_PER_USERNAME=2, LOGIN_FAILURE_LIMIT_PER_ADDRESS=100)
def test_empty_password_not_counted(client, make_member):
    make_member(Role.AUDITOR, username="alice")
    for _ in range(3):
        assert log_in(client, "alice", "").status_code == 200

    assert log_in(client, "alice", MEMBER_PASSWORD).status_code == 302


@override_settings(
    LOGIN_FAILURE_LIMIT_PER_USERNAME=2,
    LOGIN_FAILURE_LIMIT_PER_ADDRESS=100,
    LOGIN_FAILURE_WINDOW_SECONDS=1,
)
def test_lock_ends_with_window(client, make_member):
    make_member(Role.AUDITOR, username="alice")
    for _ in range(2):
        log_in(client, "alice", "wrong")
    assert log_in(client, "alice", MEMBER_PASSWORD).status_code == 429

    time.sleep(1.2)

    assert log_in(client, "alice", MEMBER_PASSWORD).status_code == 302


@override_settings(LOGIN_FAILURE_LIMIT_PER_USERNAME=1, LOGIN_FAILURE_LIMIT_PER_ADDRESS=100)
def test_lockout_recorded_and_password_not_logged(client, make_member, tenant, caplog):
    make_member(Role.AUDITOR, username="alice")

    with caplog.at_level(logging.DEBUG):
        log_in(client, "alice", "first-wrong-password")
        response = log_in(client, "alice", MEMBER_PASSWORD)

    assert response.status_code == 429
    reasons = list(
        AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED)
        .order_by("occurred_at")
        .values_list("details__reason", flat=True)
    )
    assert reasons == ["invalid_credentials", "too_many_failures"]
    assert "login rejected after too many failed attempts" in caplog.text
    assert "first-wrong-password" not in caplog.text
    assert MEMBER_PASSWORD not in caplog.text
