"""Audit events for the pages an auditor reads or fails to find, and none for other roles."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from compliance.audit.models import AuditAction, AuditEvent, AuditOutcome
from compliance.checks.models import FindingStatus
from compliance.inventory.models import Entity, EntityType
from compliance.tenancy.models import Membership, Role
from tests.conftest import make_check

pytestmark = pytest.mark.django_db


def page_views(tenant):
    return list(
        AuditEvent.objects.filter(tenant=tenant, action=AuditAction.PAGE_VIEWED).order_by(
            "occurred_at"
        )
    )


def test_auditor_page_view_recorded(client, login_as, tenant, entity):
    auditor = login_as(Role.AUDITOR)

    response = client.get(reverse("web:check-list"), {"status": "failed"})

    assert response.status_code == 200
    [event] = page_views(tenant)
    assert event.actor_user == auditor
    assert event.target_type == "page"
    assert event.target_id == reverse("web:check-list")
    assert event.details == {"path": reverse("web:check-list"), "query": "status=failed"}


def test_auditor_detail_page_is_recorded(client, login_as, tenant, entity):
    check = make_check(
        entity,
        "SOC2",
        timezone.now() - dt.timedelta(hours=1),
        [("CC6.1", FindingStatus.FAIL, "high")],
    )
    login_as(Role.AUDITOR)
    url = reverse("web:check-detail", kwargs={"check_id": check.pk})

    client.get(url)

    assert [event.details["path"] for event in page_views(tenant)] == [url]


@pytest.mark.parametrize("role", [Role.OFFICER, Role.ADMIN])
def test_other_roles_page_views_are_not_recorded(client, login_as, tenant, role):
    login_as(role)

    client.get(reverse("web:overview"))

    assert page_views(tenant) == []


def test_other_tenant_object_is_failed_view(client, login_as, tenant, other_entity):
    auditor = login_as(Role.AUDITOR)
    url = reverse("web:entity-detail", kwargs={"entity_id": other_entity.pk})

    response = client.get(url)

    assert response.status_code == 404
    [event] = page_views(tenant)
    assert event.actor_user == auditor
    assert event.outcome == AuditOutcome.FAILURE
    assert event.target_id == url
    assert event.details == {"path": url, "query": "", "status": 404}


def test_out_of_scope_object_is_failed_view(client, login_as, tenant, entity):
    hidden = Entity.objects.create(tenant=tenant, entity_type=EntityType.MODEL, name="Hidden")
    auditor = login_as(Role.AUDITOR)
    membership = Membership.objects.get(user=auditor, tenant=tenant)
    membership.scope_entities.set([entity])
    url = reverse("web:entity-detail", kwargs={"entity_id": hidden.pk})

    response = client.get(url)

    assert response.status_code == 404
    [event] = page_views(tenant)
    assert event.outcome == AuditOutcome.FAILURE
    assert event.details["status"] == 404
    assert "Hidden" not in str(event.details)


def test_success_view_outcome_is_success(client, login_as, tenant):
    login_as(Role.AUDITOR)

    client.get(reverse("web:overview"))

    [event] = page_views(tenant)
    assert event.outcome == AuditOutcome.SUCCESS
    assert "status" not in event.details


@pytest.mark.parametrize("role", [Role.OFFICER, Role.ADMIN])
def test_other_roles_missing_object_not_recorded(client, login_as, tenant, other_entity, role):
    login_as(role)

    response = client.get(reverse("web:entity-detail", kwargs={"entity_id": other_entity.pk}))

    assert response.status_code == 404
    assert page_views(tenant) == []


def test_forbidden_page_is_not_a_page_view(client, login_as, tenant):
    login_as(Role.AUDITOR)

    response = client.get(reverse("web:api-key-list"))

    assert response.status_code == 403
    assert page_views(tenant) == []
