"""The scope page: admins limit an auditor to entities, regulations and days, and clear it."""

import datetime as dt

import pytest
from django.urls import reverse

from compliance.audit.models import AuditAction, AuditEvent
from compliance.inventory.models import Entity, EntityType
from compliance.tenancy.models import Membership, Role

MEMBERS_URL = reverse("web:member-list")

pytestmark = pytest.mark.django_db


def scope_url(membership):
    return reverse("web:member-scope", kwargs={"membership_id": membership.pk})


@pytest.fixture
def admin(login_as):
    return login_as(Role.ADMIN, username="root")


@pytest.fixture
def auditor_membership(make_member, tenant):
    user = make_member(Role.AUDITOR, username="alma")
    return Membership.objects.get(user=user, tenant=tenant)


@pytest.fixture
def second_entity(tenant):
    return Entity.objects.create(tenant=tenant, entity_type=EntityType.MODEL, name="Triage model")


def scope_form(entity, start="2026-09-01", end="2026-11-30", regulations=("SOC2", "GDPR")):
    return {
        "entities": [str(entity.pk)],
        "regulations": list(regulations),
        "start": start,
        "end": end,
    }


def update_events():
    return list(AuditEvent.objects.filter(action=AuditAction.UPDATE).order_by("occurred_at"))


def test_admin_sets_scope(client, admin, auditor_membership, entity, second_entity):
    response = client.post(scope_url(auditor_membership), scope_form(entity), follow=True)

    auditor_membership.refresh_from_db()
    assert response.redirect_chain == [(MEMBERS_URL, 302)]
    assert list(auditor_membership.scope_entities.all()) == [entity]
    assert auditor_membership.scope_regulations == ["GDPR", "SOC2"]
    assert auditor_membership.scope_start == dt.date(2026, 9, 1)
    assert auditor_membership.scope_end == dt.date(2026, 11, 30)
    body = response.content.decode()
    assert "alma now sees only the entity Claims triage agent" in body
    assert "Only the entity Claims triage agent; the regulations SOC 2 and GDPR" in body
    assert "the days from 1 Sep 2026 to 30 Nov 2026" in body


def test_scope_change_is_audited(client, admin, auditor_membership, entity):
    client.post(scope_url(auditor_membership), scope_form(entity))

    [event] = update_events()
    assert event.actor_user == admin
    assert event.target_id == str(auditor_membership.pk)
    assert event.details["username"] == "alma"
    assert event.details["scope"] == {
        "entity_ids": [str(entity.pk)],
        "regulations": ["GDPR", "SOC2"],
        "start": "2026-09-01",
        "end": "2026-11-30",
    }
    assert event.details["previous_scope"] == {
        "entity_ids": [],
        "regulations": [],
        "start": None,
        "end": None,
    }


def test_unchanged_scope_is_not_audited(client, admin, auditor_membership, entity):
    client.post(scope_url(auditor_membership), scope_form(entity))
    client.post(scope_url(auditor_membership), scope_form(entity))

    assert len(update_events()) == 1


def test_empty_form_clears_scope(client, admin, auditor_membership, entity):
    client.post(scope_url(auditor_membership), scope_form(entity))

    response = client.post(scope_url(auditor_membership), {}, follow=True)

    auditor_membership.refresh_from_db()
    assert not auditor_membership.scope_entities.exists()
    assert auditor_membership.scope_regulations == []
    assert auditor_membership.scope_start is None
    assert auditor_membership.scope_end is None
    assert "alma now sees everything in Acme Health." in response.content.decode()
    assert len(update_events()) == 2


def test_end_before_start_is_rejected(client, admin, auditor_membership, entity):
    form = scope_form(entity, start="2026-11-30", end="2026-09-01")

    response = client.post(scope_url(auditor_membership), form)

    assert response.status_code == 400
    assert "The last day 2026-09-01 is before the first day 2026-11-30." in (
        response.content.decode()
    )
    auditor_membership.refresh_from_db()
    assert auditor_membership.scope_start is None
    assert update_events() == []


def test_other_tenant_entity_is_rejected(client, admin, auditor_membership, other_entity):
    response = client.post(scope_url(auditor_membership), scope_form(other_entity))

    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not auditor_membership.scope_entities.exists()


def test_officer_cannot_be_limited(client, admin, make_member, tenant, entity):
    officer = Membership.objects.get(user=make_member(Role.OFFICER, username="olga"))

    response = client.post(scope_url(officer), scope_form(entity), follow=True)

    assert "only auditors can be limited" in response.content.decode()
    assert officer.scope_regulations == []
    assert not officer.scope_entities.exists()


def test_auditor_cannot_open_scope_page(client, login_as, auditor_membership):
    login_as(Role.AUDITOR, username="other-auditor")

    response = client.get(scope_url(auditor_membership))

    assert response.status_code == 403


def test_role_change_clears_scope(client, admin, auditor_membership, entity):
    client.post(scope_url(auditor_membership), scope_form(entity))

    client.post(
        reverse("web:member-role", kwargs={"membership_id": auditor_membership.pk}),
        {"role": Role.OFFICER},
    )

    auditor_membership.refresh_from_db()
    assert auditor_membership.role == Role.OFFICER
    assert not auditor_membership.scope_entities.exists()
    assert auditor_membership.scope_regulations == []
    [event] = AuditEvent.objects.filter(action=AuditAction.MEMBER_ROLE_CHANGED)
    assert event.details["scope_cleared"] is True


def test_member_list_shows_scope(client, admin, auditor_membership, entity):
    client.post(scope_url(auditor_membership), scope_form(entity, start="", end=""))

    body = client.get(MEMBERS_URL).content.decode()

    assert "Only the entity Claims triage agent; the regulations SOC 2 and GDPR" in body
    assert scope_url(auditor_membership) in body
