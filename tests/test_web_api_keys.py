"""The API keys page: admins list, create and revoke their tenant's keys."""

import datetime as dt
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from compliance.keys.models import ApiKey, parse_key
from compliance.tenancy.models import Membership, Role

KEYS_URL = reverse("web:api-key-list")
PLAINTEXT_PATTERN = re.compile(r'value="(cmp_[0-9a-f]{12}_[^"]+)"')


def revoke_url(api_key):
    return reverse("web:api-key-revoke", kwargs={"key_id": api_key.pk})


def issue(tenant, name="deploy", role=Role.AUDITOR, expires_at=None):
    api_key, _ = ApiKey.issue(tenant=tenant, name=name, role=role, expires_at=expires_at)
    return api_key


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.OFFICER])
def test_page_needs_admin(client, login_as, tenant, role):
    login_as(role)
    api_key = issue(tenant)

    assert client.get(KEYS_URL).status_code == 403
    assert client.post(KEYS_URL, {"name": "ci", "role": "admin"}).status_code == 403
    assert client.post(revoke_url(api_key)).status_code == 403
    api_key.refresh_from_db()
    assert api_key.revoked_at is None
    assert ApiKey.objects.count() == 1


def test_empty_state(client, login_as):
    login_as(Role.ADMIN)

    html = client.get(KEYS_URL).content.decode()

    assert "No API keys yet." in html
    assert '<label for="id_name"' in html
    assert '<label for="id_role"' in html
    assert '<label for="id_expires_in_days"' in html


def test_list_shows_key_states(client, login_as, tenant, other_tenant):
    login_as(Role.ADMIN)
    issue(tenant, name="active key")
    issue(tenant, name="old key", expires_at=timezone.now() - dt.timedelta(days=1))
    issue(tenant, name="revoked key").revoke()
    issue(other_tenant, name="foreign key")

    response = client.get(KEYS_URL)

    states = {row["key"].name: row["state"] for row in response.context["rows"]}
    assert states == {"active key": "active", "old key": "expired", "revoked key": "revoked"}
    html = response.content.decode()
    assert "foreign key" not in html
    assert 'class="key-state key-state--expired">Expired<' in html


def test_create_shows_plaintext_once(client, login_as, tenant):
    admin = login_as(Role.ADMIN)

    response = client.post(KEYS_URL, {"name": "CI pipeline", "role": "officer"})

    html = response.content.decode()
    assert response.status_code == 201
    assert "cannot be shown again" in html
    match = PLAINTEXT_PATTERN.search(html)
    assert match, "the response shows the new key"
    plaintext = match.group(1)
    lookup, secret = parse_key(plaintext)
    api_key = ApiKey.objects.get(lookup=lookup)
    assert api_key.tenant == tenant
    assert api_key.role == Role.OFFICER
    assert api_key.created_by == admin
    assert api_key.expires_at is None
    assert api_key.matches(secret)
    assert "no-store" in response["Cache-Control"]

    again = client.get(KEYS_URL).content.decode()
    assert plaintext not in again
    assert secret not in again
    assert api_key.display_prefix in again
    assert all(secret not in str(value) for value in client.session.values())


def test_create_with_expiry(client, login_as):
    login_as(Role.ADMIN)
    before = timezone.now()

    client.post(KEYS_URL, {"name": "short lived", "role": "auditor", "expires_in_days": "30"})

    api_key = ApiKey.objects.get()
    assert api_key.expires_at - before >= dt.timedelta(days=30)
    assert api_key.expires_at - before < dt.timedelta(days=30, minutes=1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "", "role": "auditor"}, "This field is required."),
        ({"name": "x", "role": "owner"}, "Select a valid choice."),
        ({"name": "x", "role": "auditor", "expires_in_days": "0"}, "greater than or equal to 1"),
        ({"name": "x", "role": "auditor", "expires_in_days": "99999"}, "less than or equal"),
    ],
)
def test_create_rejects_invalid_input(client, login_as, data, message):
    login_as(Role.ADMIN)

    response = client.post(KEYS_URL, data)

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ApiKey.objects.exists()


def test_revoke_asks_for_confirmation(client, login_as, tenant):
    login_as(Role.ADMIN)
    api_key = issue(tenant)

    response = client.get(revoke_url(api_key))

    html = response.content.decode()
    assert response.status_code == 200
    assert "stops working at once" in html
    assert 'method="post"' in html
    api_key.refresh_from_db()
    assert api_key.revoked_at is None


def test_revoke_by_post(client, login_as, tenant):
    login_as(Role.ADMIN)
    api_key = issue(tenant)

    response = client.post(revoke_url(api_key), follow=True)

    api_key.refresh_from_db()
    assert response.redirect_chain == [(KEYS_URL, 302)]
    assert api_key.revoked_at is not None
    assert not api_key.is_active
    assert "is revoked and no longer works" in response.content.decode()


def test_revoke_twice_keeps_first_time(client, login_as, tenant):
    login_as(Role.ADMIN)
    api_key = issue(tenant)
    client.post(revoke_url(api_key))
    api_key.refresh_from_db()
    first = api_key.revoked_at

    response = client.post(revoke_url(api_key), follow=True)

    api_key.refresh_from_db()
    assert api_key.revoked_at == first
    assert "was already revoked" in response.content.decode()


def test_revoke_other_tenants_key_is_404(client, login_as, other_tenant):
    login_as(Role.ADMIN)
    foreign = issue(other_tenant)

    assert client.get(revoke_url(foreign)).status_code == 404
    assert client.post(revoke_url(foreign)).status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None


def test_revoke_needs_csrf_token(tenant):
    user = get_user_model().objects.create_user("admin", password="unused-password")
    Membership.objects.create(user=user, tenant=tenant, role=Role.ADMIN)
    api_key = issue(tenant)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    response = client.post(revoke_url(api_key))

    api_key.refresh_from_db()
    assert response.status_code == 403
    assert api_key.revoked_at is None
