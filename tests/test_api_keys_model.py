"""API key storage: peppered HMAC, rotation of peppers by id, and uniform failures."""

import pytest
from django.test import RequestFactory, override_settings
from rest_framework.exceptions import AuthenticationFailed

from compliance.keys.authentication import ApiKeyAuthentication
from compliance.keys.models import ApiKey, hash_secret, parse_key
from compliance.tenancy.models import Role

pytestmark = pytest.mark.django_db

OLD_PEPPERS = {1: "first-pepper"}
ROTATED_PEPPERS = {1: "first-pepper", 2: "second-pepper"}


def authenticate(plaintext):
    request = RequestFactory().get("/v1/compliance/reports", headers={"X-API-Key": plaintext})
    return ApiKeyAuthentication().authenticate(request)


def test_secret_stored_only_as_hmac(tenant):
    api_key, plaintext = ApiKey.issue(tenant=tenant, name="ci", role=Role.OFFICER)

    lookup, secret = parse_key(plaintext)
    assert api_key.lookup == lookup
    assert secret not in api_key.secret_hash
    assert api_key.secret_hash == hash_secret(secret, api_key.pepper_id)


def test_rotated_pepper_keeps_old_keys(tenant):
    with override_settings(API_KEY_PEPPERS=OLD_PEPPERS):
        old_key, old_plaintext = ApiKey.issue(tenant=tenant, name="old", role=Role.AUDITOR)

    with override_settings(API_KEY_PEPPERS=ROTATED_PEPPERS):
        new_key, new_plaintext = ApiKey.issue(tenant=tenant, name="new", role=Role.AUDITOR)
        assert old_key.pepper_id == 1
        assert new_key.pepper_id == 2
        assert authenticate(old_plaintext)[1] == old_key
        assert authenticate(new_plaintext)[1] == new_key


def test_retired_pepper_disables_its_keys(tenant):
    with override_settings(API_KEY_PEPPERS=ROTATED_PEPPERS):
        _, plaintext = ApiKey.issue(tenant=tenant, name="new", role=Role.AUDITOR)

    with override_settings(API_KEY_PEPPERS=OLD_PEPPERS), pytest.raises(AuthenticationFailed):
        authenticate(plaintext)


def test_wrong_secret_fails_like_unknown_key(tenant):
    _, plaintext = ApiKey.issue(tenant=tenant, name="ci", role=Role.OFFICER)
    lookup, _ = parse_key(plaintext)

    with pytest.raises(AuthenticationFailed) as wrong_secret:
        authenticate(f"cmp_{lookup}_{'x' * 43}")
    with pytest.raises(AuthenticationFailed) as unknown_lookup:
        authenticate(f"cmp_{'0' * 12}_{'x' * 43}")

    assert str(wrong_secret.value.detail) == str(unknown_lookup.value.detail)
    assert wrong_secret.value.get_codes() == unknown_lookup.value.get_codes()
