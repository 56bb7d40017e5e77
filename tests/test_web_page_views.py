"""Audit events for the pages an auditor reads, and none for other roles or failed requests."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from compliance.audit.models import AuditAction, AuditEvent
from compliance.checks.models import FindingStatus
from compliance.tenancy.models import Role
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


def test_missing_object_is_not_a_page_view(client, login_as, tenant, other_entity):
    login_as(Role.AUDITOR)

    response = client.get(reverse("web:entity-detail", kwargs={"entity_id": other_entity.pk}))

    assert response.status_code == 404
    assert page_views(tenant) == []


def test_forbidden_page_is_not_a_page_view(client, login_as, tenant):
    login_as(Role.AUDITOR)

    response = client.get(reverse("web:api-key-list"))

    assert response.status_code == 403
    assert page_views(tenant) == []
