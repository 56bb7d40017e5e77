"""Bearer JWT authentication: verification, claims, subjects, tenants and settings."""

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.utils import timezone

from compliance.audit.models import AuditAction, AuditEvent
from compliance.keys.checks import check_jwt_settings
from compliance.keys.jwt import jwt_settings
from compliance.reports.models import Report
from compliance.tenancy.models import Membership, Role
from tests.conftest import assert_status

REPORTS_API = "/v1/compliance/reports"
ISSUER = "compliance-tests-idp"
AUDIENCE = "compliance-api"
INVALID_TOKEN_CHALLENGE = 'Bearer realm="api", error="invalid_token"'


@pytest.fixture(autouse=True)
def empty_cache():
    """Start each test with no rate-limit or audit throttling state."""
    cache.clear()
    yield
    cache.clear()


def pem_private(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def pem_public(key):
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory, rsa_key):
    folder = tmp_path_factory.mktemp("jwt-keys")
    (folder / "public.pem").write_bytes(pem_public(rsa_key))
    return folder


@pytest.fixture
def jwt_config(key_dir):
    """Verify RS256 tokens with the public key from a PEM file."""
    with override_settings(
        JWT_ALGORITHM="RS256",
        JWT_PUBLIC_KEY="",
        JWT_PUBLIC_KEY_FILE=str(key_dir / "public.pem"),
        JWT_JWKS_FILE="",
        JWT_ISSUER=ISSUER,
        JWT_AUDIENCE=[AUDIENCE],
        JWT_LEEWAY_SECONDS=30,
        JWT_SUBJECT_FIELD="username",
    ):
        yield


def claims(subject="alice", **overrides):
    now = timezone.now()
    body = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject,
        "iat": int(now.timestamp()),
        "exp": int((now + dt.timedelta(minutes=5)).timestamp()),
    }
    body.update(overrides)
    return body


def sign(key, body, algorithm="RS256", headers=None):
    return jwt.encode(body, pem_private(key), algorithm=algorithm, headers=headers)


def bearer(token, tenant=None):
    headers = {"Authorization": f"Bearer {token}"}
    if tenant is not None:
        headers["X-Tenant-ID"] = tenant
    return headers


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge_hs256(secret, body):
    """Sign a token with HMAC-SHA256, as an attacker who has the public key text would."""
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(body).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def assert_invalid_token(response):
    assert_status(response, 401)
    assert response["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE
    assert response.json()["code"] == "unauthenticated"


@pytest.fixture
def alice(make_member):
    return make_member(Role.OFFICER, username="alice")


# Happy paths


def test_token_lists_tenant_checks(client, jwt_config, rsa_key, alice, soc2_history):
    response = client.get(REPORTS_API, headers=bearer(sign(rsa_key, claims())))

    assert_status(response, 200)
    assert response.json()["total"] == 3


def test_token_user_requests_report(client, jwt_config, rsa_key, alice, tenant, entity):
    end = timezone.localdate()
    body = {
        "entity_type": entity.entity_type,
        "entity_id": str(entity.pk),
        "regulation": "SOC2",
        "period_start": (end - dt.timedelta(days=6)).isoformat(),
        "period_end": end.isoformat(),
    }

    response = client.post(
        REPORTS_API, body, content_type="application/json", headers=bearer(sign(rsa_key, claims()))
    )

    assert_status(response, 201)
    report = Report.objects.get()
    assert report.requested_by == alice
    assert report.requested_by_key is None
    event = AuditEvent.objects.get(action=AuditAction.REPORT_REQUESTED)
    assert event.actor_user == alice
    assert event.actor_key is None
    assert event.tenant == tenant


def test_role_comes_from_membership(client, jwt_config, rsa_key, make_member, entity):
    make_member(Role.AUDITOR, username="reader")
    token = sign(rsa_key, claims("reader"))

    listing = client.get(REPORTS_API, headers=bearer(token))
    creating = client.post(REPORTS_API, {}, content_type="application/json", headers=bearer(token))

    assert_status(listing, 200)
    assert_status(creating, 403)


def test_expiry_within_leeway_accepted(client, jwt_config, rsa_key, alice):
    expired_just_now = int((timezone.now() - dt.timedelta(seconds=10)).timestamp())

    response = client.get(REPORTS_API, headers=bearer(sign(rsa_key, claims(exp=expired_just_now))))

    assert_status(response, 200)


def test_es256_token_accepted(client, make_member):
    make_member(Role.AUDITOR, username="alice")
    key = ec.generate_private_key(ec.SECP256R1())

    with override_settings(
        JWT_ALGORITHM="ES256",
        JWT_PUBLIC_KEY=pem_public(key).decode(),
        JWT_PUBLIC_KEY_FILE="",
        JWT_JWKS_FILE="",
        JWT_ISSUER=ISSUER,
        JWT_AUDIENCE=[AUDIENCE],
    ):
        response = client.get(REPORTS_API, headers=bearer(sign(key, claims(), "ES256")))

    assert_status(response, 200)


# Rejected tokens


@pytest.mark.parametrize("claim", ["exp", "iat", "iss", "aud", "sub"])
def test_missing_claim_rejected(client, jwt_config, rsa_key, alice, claim):
    body = claims()
    del body[claim]

    response = client.get(REPORTS_API, headers=bearer(sign(rsa_key, body)))

    assert_invalid_token(response)
    assert f"'{claim}'" in response.json()["message"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"aud": "another-api"}, "audience"),
        ({"aud": ["another-api", "third-api"]}, "audience"),
        ({"iss": "another-idp"}, "issuer"),
        ({"exp": 1_700_000_000}, "expired"),
        ({"iat": 4_000_000_000, "exp": 4_000_000_600}, "not valid yet"),
        ({"nbf": 4_000_000_000}, "not valid yet"),
        ({"sub": 42}, "invalid"),
    ],
)
def test_bad_claim_rejected(client, jwt_config, rsa_key, alice, overrides, message):
    response = client.get(REPORTS_API, headers=bearer(sign(rsa_key, claims(**overrides))))

    assert_invalid_token(response)
    assert message in response.json()["message"]


def test_list_audience_with_ours_accepted(client, jwt_config, rsa_key, alice):
    token = sign(rsa_key, claims(aud=["another-api", AUDIENCE]))

    response = client.get(REPORTS_API, headers=bearer(token))

    assert_status(response, 200)


def test_hs256_with_public_key_rejected(client, jwt_config, key_dir, alice):
    public_pem = (key_dir / "public.pem").read_bytes()
    token = forge_hs256(public_pem, claims())

    response = client.get(REPORTS_API, headers=bearer(token))

    assert_invalid_token(response)
    assert "algorithm" in response.json()["message"]


def test_unsigned_token_rejected(client, jwt_config, alice):
    token = jwt.encode(claims(), None, algorithm="none")

    response = client.get(REPORTS_API, headers=bearer(token))

    assert_invalid_token(response)


def test_other_key_signature_rejected(client, jwt_config, other_rsa_key, alice):
    response = client.get(REPORTS_API, headers=bearer(sign(other_rsa_key, claims())))

    assert_invalid_token(response)


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer a b", "Bearer not.a.jwt"])
def test_malformed_bearer_rejected(client, jwt_config, alice, header):
    response = client.get(REPORTS_API, headers={"Authorization": header})

    assert_invalid_token(response)


def test_oversized_token_rejected(client, jwt_config, alice):
    response = client.get(REPORTS_API, headers=bearer("a" * 9000))

    assert_invalid_token(response)


def test_unknown_subject_rejected(client, jwt_config, rsa_key, alice):
    response = client.get(REPORTS_API, headers=bearer(sign(rsa_key, claims("mallory"))))

    assert_invalid_token(response)
    assert "subject" in response.json()["message"]


def test_inactive_subject_rejected(client, jwt_config, rsa_key, alice):
    alice.is_active = False
    alice.save(update_fields=["is_active"])

    response = client.get(REPORTS_API, headers=bearer(sign(rsa_key, claims())))

    assert_invalid_token(response)


def test_subject_by_id_field(client, jwt_config, rsa_key, alice):
    with override_settings(JWT_SUBJECT_FIELD="id"):
        by_id = client.get(REPORTS_API, headers=bearer(sign(rsa_key, claims(str(alice.pk)))))
        by_name = client.get(REPORTS_API, headers=bearer(sign(rsa_key, claims("alice"))))

    assert_status(by_id, 200)
    assert_invalid_token(by_name)


def test_failed_token_recorded_without_token(client, jwt_config, other_rsa_key, alice):
    token = sign(other_rsa_key, claims())

    response = client.get(REPORTS_API, headers=bearer(token))

    event = AuditEvent.objects.get(action=AuditAction.AUTH_FAILED)
    assert event.request_id == response["X-Request-ID"]
    assert event.details == {"method": "jwt", "reason": "The bearer token is invalid."}
    assert token not in str(event.details)
    assert event.tenant is None


# Tenants


@pytest.fixture
def two_tenant_user(alice, other_tenant):
    Membership.objects.create(user=alice, tenant=other_tenant, role=Role.AUDITOR)
    return alice


def test_several_tenants_need_header(client, jwt_config, rsa_key, two_tenant_user):
    response = client.get(REPORTS_API, headers=bearer(sign(rsa_key, claims())))

    assert_status(response, 400)
    assert "X-Tenant-ID" in response.json()["details"]


def test_tenant_header_selects_membership(
    client, jwt_config, rsa_key, two_tenant_user, tenant, other_tenant, soc2_history
):
    token = sign(rsa_key, claims())

    by_slug = client.get(REPORTS_API, headers=bearer(token, tenant=tenant.slug))
    by_uuid = client.get(REPORTS_API, headers=bearer(token, tenant=str(other_tenant.pk)))
    create_in_auditor_tenant = client.post(
        REPORTS_API, {}, content_type="application/json", headers=bearer(token, other_tenant.slug)
    )

    assert_status(by_slug, 200)
    assert by_slug.json()["total"] == 3
    assert_status(by_uuid, 200)
    assert by_uuid.json()["total"] == 0
    assert_status(create_in_auditor_tenant, 403)


def test_foreign_tenant_header_forbidden(client, jwt_config, rsa_key, alice, other_tenant):
    response = client.get(
        REPORTS_API, headers=bearer(sign(rsa_key, claims()), tenant=other_tenant.slug)
    )

    assert_status(response, 403)
    assert "not a member" in response.json()["message"]


def test_unknown_tenant_header_forbidden(client, jwt_config, rsa_key, alice):
    response = client.get(REPORTS_API, headers=bearer(sign(rsa_key, claims()), tenant="nowhere"))

    assert_status(response, 403)


def test_user_without_tenant_forbidden(client, jwt_config, rsa_key, django_user_model):
    django_user_model.objects.create_user("loner", password="x-long-password")

    response = client.get(REPORTS_API, headers=bearer(sign(rsa_key, claims("loner"))))

    assert_status(response, 403)


# JWKS files


@pytest.fixture
def jwks_file(tmp_path, rsa_key, other_rsa_key):
    keys = []
    for kid, key in (("current", rsa_key), ("previous", other_rsa_key)):
        entry = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        entry.update({"kid": kid, "alg": "RS256", "use": "sig"})
        keys.append(entry)
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": keys}))
    return path


@pytest.fixture
def jwks_config(jwt_config, jwks_file):
    with override_settings(JWT_PUBLIC_KEY_FILE="", JWT_JWKS_FILE=str(jwks_file)):
        yield


def test_jwks_selects_key_by_kid(client, jwks_config, rsa_key, other_rsa_key, alice):
    current = sign(rsa_key, claims(), headers={"kid": "current"})
    previous = sign(other_rsa_key, claims(), headers={"kid": "previous"})
    mismatched = sign(other_rsa_key, claims(), headers={"kid": "current"})

    assert_status(client.get(REPORTS_API, headers=bearer(current)), 200)
    assert_status(client.get(REPORTS_API, headers=bearer(previous)), 200)
    assert_invalid_token(client.get(REPORTS_API, headers=bearer(mismatched)))


@pytest.mark.parametrize("headers", [None, {"kid": "retired"}])
def test_jwks_unknown_kid_rejected(client, jwks_config, rsa_key, alice, headers):
    response = client.get(REPORTS_API, headers=bearer(sign(rsa_key, claims(), headers=headers)))

    assert_invalid_token(response)
    assert "kid" in response.json()["message"]


# Settings


def test_inert_without_key_source(client, alice, rsa_key):
    with override_settings(JWT_PUBLIC_KEY="", JWT_PUBLIC_KEY_FILE="", JWT_JWKS_FILE=""):
        assert jwt_settings() is None
        response = client.get(REPORTS_API, headers=bearer(sign(rsa_key, claims())))

    assert_status(response, 401)
    assert response["WWW-Authenticate"] == 'X-API-Key realm="api"'


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"JWT_ALGORITHM": "HS256"}, "not accepted"),
        ({"JWT_ALGORITHM": "none"}, "not accepted"),
        ({"JWT_ALGORITHM": "ES256"}, "not a key for ES256"),
        ({"JWT_ISSUER": ""}, "JWT_ISSUER is missing"),
        ({"JWT_AUDIENCE": []}, "JWT_AUDIENCE is missing"),
        ({"JWT_LEEWAY_SECONDS": 3600}, "between 0 and 300"),
        ({"JWT_SUBJECT_FIELD": "email"}, "must be a unique field"),
        ({"JWT_SUBJECT_FIELD": "shoe_size"}, "not a field"),
        ({"JWT_PUBLIC_KEY": "also set"}, "Set only one"),
        ({"JWT_PUBLIC_KEY_FILE": "/nonexistent/key.pem"}, "cannot be read"),
    ],
)
def test_unsafe_settings_fail_check(jwt_config, overrides, message):
    with override_settings(**overrides):
        errors = check_jwt_settings(None)

    assert len(errors) == 1
    assert errors[0].id == "keys.E001"
    assert message in errors[0].msg


def test_private_key_in_settings_rejected(jwt_config, rsa_key):
    settings = {"JWT_PUBLIC_KEY_FILE": "", "JWT_PUBLIC_KEY": pem_private(rsa_key).decode()}

    with override_settings(**settings):
        errors = check_jwt_settings(None)

    assert "not a PEM-encoded public key" in errors[0].msg


def test_valid_settings_pass_check(jwt_config):
    assert check_jwt_settings(None) == []


def test_misconfigured_bearer_is_server_error(client, jwt_config, rsa_key, alice):
    with override_settings(JWT_ALGORITHM="HS256"):
        with pytest.raises(ImproperlyConfigured):
            jwt_settings()
        response = client.get(REPORTS_API, headers=bearer(sign(rsa_key, claims())))

    assert_status(response, 500)


# Logs


def assert_token_not_logged(caplog, token):
    signature = token.rsplit(".", 1)[-1]
    assert token not in caplog.text
    assert signature not in caplog.text


def test_token_not_logged(client, jwt_config, rsa_key, other_rsa_key, alice, caplog):
    good = sign(rsa_key, claims())
    bad = sign(other_rsa_key, claims())
    expired = sign(rsa_key, claims(exp=1_700_000_000))

    with caplog.at_level(logging.DEBUG):
        assert_status(client.get(REPORTS_API, headers=bearer(good)), 200)
        assert_invalid_token(client.get(REPORTS_API, headers=bearer(bad)))
        assert_invalid_token(client.get(REPORTS_API, headers=bearer(expired)))

    assert "bearer token authentication failed" in caplog.text
    for token in (good, bad, expired):
        assert_token_not_logged(caplog, token)


def test_token_not_logged_on_exception(client, jwt_config, rsa_key, alice, caplog, monkeypatch):
    token = sign(rsa_key, claims())

    def broken(config, subject):
        raise RuntimeError("user lookup broke")

    monkeypatch.setattr("compliance.keys.jwt.find_subject", broken)
    with caplog.at_level(logging.DEBUG):
        response = client.get(REPORTS_API, headers=bearer(token))

    assert_status(response, 500)
    assert "user lookup broke" in caplog.text
    assert_token_not_logged(caplog, token)


# Over real HTTP


@pytest.mark.django_db(transaction=True)
def test_live_server_bearer_token(live_server, jwt_config, rsa_key, alice, other_rsa_key):
    url = live_server.url + REPORTS_API
    good = requests.get(url, headers=bearer(sign(rsa_key, claims())), timeout=30)
    bad = requests.get(url, headers=bearer(sign(other_rsa_key, claims())), timeout=30)

    assert good.status_code == 200, good.text
    assert bad.status_code == 401, bad.text
    assert bad.headers["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE
