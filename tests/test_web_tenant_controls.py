"""The pages that add, edit and delete a tenant's own controls and rules."""

import pytest
from django.urls import reverse

from compliance.audit.models import AuditEvent
from compliance.catalog.models import Control, TenantRule
from compliance.checks.rules import clear_tenant_cache, rule_set
from compliance.tenancy.models import Role

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache():
    clear_tenant_cache()
    yield
    clear_tenant_cache()


def own_control(tenant, control_id="CC9.4", title="Model cards are published"):
    return Control.objects.create(
        tenant=tenant, regulation="SOC2", control_id=control_id, title=title, catalog_version="t"
    )


def own_rule(tenant, control, title="Logs are kept for two years"):
    return TenantRule.objects.create(
        tenant=tenant,
        regulation=control.regulation,
        control=control,
        title=title,
        expression="logging.retention_days >= 730",
        facts=["logging.retention_days"],
    )


def shipped(control_id):
    return Control.objects.shipped().get(regulation="SOC2", control_id=control_id)


RULE_FORM = {
    "title": "Logs are kept for two years",
    "severity": "high",
    "entity_types": ["agent", "model"],
    "expression": "logging.enabled && logging.retention_days >= 730",
    "remediation": "Keep logs for two years.",
    "enabled": "on",
}


# Controls


def test_officer_adds_control(client, login_as, tenant):
    login_as(Role.OFFICER)

    response = client.post(
        reverse("web:control-new", kwargs={"regulation": "SOC2"}),
        {"control_id": "cc_9_4", "title": "Model cards are published", "group": "AI"},
    )

    assert response.status_code == 302
    control = Control.objects.get(tenant=tenant)
    assert control.control_id == "CC9.4"
    assert control.group == "AI"
    event = AuditEvent.objects.get(tenant=tenant, target_id=str(control.pk))
    assert event.action == "create"
    page = client.get(reverse("web:control-detail", kwargs={"regulation": "SOC2"}))
    assert "Your control" in page.content.decode()
    assert "Model cards are published" in page.content.decode()


def test_control_form_keeps_input(client, login_as):
    login_as(Role.OFFICER)

    response = client.post(
        reverse("web:control-new", kwargs={"regulation": "SOC2"}),
        {"control_id": "CC6.1", "title": "My access control", "guidance": "Kept text"},
    )

    body = response.content.decode()
    assert response.status_code == 400
    assert "already exists in the shipped catalog" in body
    assert 'value="CC6.1"' in body
    assert 'value="My access control"' in body
    assert "Kept text" in body
    assert not Control.objects.filter(tenant__isnull=False).exists()


def test_officer_edits_control(client, login_as, tenant):
    login_as(Role.OFFICER)
    control = own_control(tenant)

    response = client.post(
        reverse("web:control-edit", kwargs={"control_pk": control.pk}),
        {"control_id": "CC9.4", "title": "Model cards are current"},
    )

    assert response.status_code == 302
    control.refresh_from_db()
    assert control.title == "Model cards are current"


def test_shipped_control_not_editable(client, login_as):
    login_as(Role.ADMIN)
    control = shipped("CC6.1")

    response = client.post(
        reverse("web:control-edit", kwargs={"control_pk": control.pk}),
        {"control_id": "CC6.1", "title": "Mine now"},
    )

    assert response.status_code == 404
    control.refresh_from_db()
    assert control.title != "Mine now"


def test_officer_deletes_control(client, login_as, tenant):
    login_as(Role.OFFICER)
    control = own_control(tenant)
    own_rule(tenant, control)
    path = reverse("web:control-delete", kwargs={"control_pk": control.pk})

    confirm = client.get(path)
    response = client.post(path)

    assert "Its 1 rule will be deleted with it." in confirm.content.decode()
    assert response.status_code == 302
    assert not Control.objects.filter(pk=control.pk).exists()
    assert not TenantRule.objects.exists()
    assert AuditEvent.objects.filter(tenant=tenant, action="delete").count() == 1


# Rules


def test_officer_adds_rule(client, login_as, tenant):
    user = login_as(Role.OFFICER)
    control = shipped("CC7.2")

    response = client.post(
        reverse("web:rule-new", kwargs={"regulation": "SOC2"}),
        {**RULE_FORM, "control": control.pk},
    )

    assert response.status_code == 302
    rule = TenantRule.objects.get(tenant=tenant)
    assert rule.control == control
    assert rule.entity_types == ["agent", "model"]
    assert rule.facts == ["logging.enabled", "logging.retention_days"]
    assert rule.created_by == user
    assert rule.updated_by == user
    assert AuditEvent.objects.filter(tenant=tenant, target_id=str(rule.pk)).exists()


def test_rule_form_shows_field_error(client, login_as):
    login_as(Role.OFFICER)

    response = client.post(
        reverse("web:rule-new", kwargs={"regulation": "SOC2"}),
        {**RULE_FORM, "control": shipped("CC7.2").pk, "expression": "logging.colour == 'red'"},
    )

    body = response.content.decode()
    assert response.status_code == 400
    assert "logging.colour is not a known fact." in body
    assert '<details class="card" id="available-facts" open>' in body
    assert "logging.colour == &#x27;red&#x27;" in body
    assert 'value="Logs are kept for two years"' in body
    assert not TenantRule.objects.exists()


def test_rule_form_lists_facts(client, login_as):
    login_as(Role.OFFICER)

    response = client.get(reverse("web:rule-new", kwargs={"regulation": "SOC2"}))

    body = response.content.decode()
    assert response.status_code == 200
    assert "docs/rules.md" not in body
    assert '<a href="#available-facts">Available facts</a>' in body
    assert '<details class="card" id="available-facts">' in body
    assert '<td class="mono">credentials.rotation_days</td><td class="mono">int</td>' in body


def test_rule_form_lists_visible_controls(client, login_as, tenant, other_tenant):
    login_as(Role.OFFICER)
    own_control(tenant, control_id="CC9.4", title="Acme control")
    own_control(other_tenant, control_id="CC9.5", title="Globex control")

    response = client.get(reverse("web:rule-new", kwargs={"regulation": "SOC2"}))

    body = response.content.decode()
    assert "CC9.4 Acme control (your control)" in body
    assert "Globex control" not in body
    assert "CC6.1 " in body


def test_rule_form_rejects_other_tenant_control(client, login_as, other_tenant):
    login_as(Role.OFFICER)
    foreign = own_control(other_tenant)

    response = client.post(
        reverse("web:rule-new", kwargs={"regulation": "SOC2"}), {**RULE_FORM, "control": foreign.pk}
    )

    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not TenantRule.objects.exists()


def test_officer_edits_and_deletes_rule(client, login_as, tenant):
    login_as(Role.OFFICER)
    rule = own_rule(tenant, shipped("CC7.2"))

    edited = client.post(
        reverse("web:rule-edit", kwargs={"rule_id": rule.pk}),
        {**RULE_FORM, "control": rule.control_id, "expression": "encryption.at_rest"},
    )
    rule.refresh_from_db()
    deleted = client.post(reverse("web:rule-delete", kwargs={"rule_id": rule.pk}))

    assert edited.status_code == 302
    assert rule.facts == ["encryption.at_rest"]
    assert deleted.status_code == 302
    assert not TenantRule.objects.exists()


# Roles and tenancy


def test_auditor_sees_read_only(client, login_as, tenant):
    login_as(Role.AUDITOR)
    control = own_control(tenant)
    rule = own_rule(tenant, control)

    page = client.get(reverse("web:control-detail", kwargs={"regulation": "SOC2"}))
    new_page = client.get(reverse("web:control-new", kwargs={"regulation": "SOC2"}))
    edit = client.post(
        reverse("web:rule-edit", kwargs={"rule_id": rule.pk}), {**RULE_FORM, "control": control.pk}
    )
    delete = client.post(reverse("web:control-delete", kwargs={"control_pk": control.pk}))

    body = page.content.decode()
    assert "Model cards are published" in body
    assert "Logs are kept for two years" in body
    assert reverse("web:control-new", kwargs={"regulation": "SOC2"}) not in body
    assert reverse("web:rule-edit", kwargs={"rule_id": rule.pk}) not in body
    assert new_page.status_code == 403
    assert edit.status_code == 403
    assert delete.status_code == 403
    assert Control.objects.filter(pk=control.pk).exists()


def test_officer_sees_edit_links(client, login_as, tenant):
    login_as(Role.OFFICER)
    rule = own_rule(tenant, own_control(tenant))

    page = client.get(reverse("web:control-detail", kwargs={"regulation": "SOC2"}))

    body = page.content.decode()
    assert reverse("web:control-new", kwargs={"regulation": "SOC2"}) in body
    assert reverse("web:rule-edit", kwargs={"rule_id": rule.pk}) in body


def test_other_tenant_rows_are_404(client, login_as, other_tenant):
    login_as(Role.ADMIN)
    control = own_control(other_tenant)
    rule = own_rule(other_tenant, control)

    pages = [
        reverse("web:control-edit", kwargs={"control_pk": control.pk}),
        reverse("web:control-delete", kwargs={"control_pk": control.pk}),
        reverse("web:rule-edit", kwargs={"rule_id": rule.pk}),
        reverse("web:rule-delete", kwargs={"rule_id": rule.pk}),
    ]

    for path in pages:
        assert client.get(path).status_code == 404, path
        assert client.post(path, {"title": "taken"}).status_code == 404, path
    assert Control.objects.filter(pk=control.pk, title="Model cards are published").exists()
    assert TenantRule.objects.filter(pk=rule.pk).exists()


def test_detail_hides_other_tenant_controls(client, login_as, other_tenant):
    login_as(Role.ADMIN)
    own_rule(other_tenant, own_control(other_tenant, title="Globex secret control"))

    page = client.get(reverse("web:control-detail", kwargs={"regulation": "SOC2"}))

    body = page.content.decode()
    assert "Globex secret control" not in body
    assert "Logs are kept for two years" not in body


def test_list_counts_own_control(client, login_as, tenant):
    login_as(Role.AUDITOR)
    own_rule(tenant, own_control(tenant))
    shipped_count = Control.objects.shipped().filter(regulation="SOC2").count()

    page = client.get(reverse("web:control-list"))

    summary = next(row for row in page.context["summaries"] if row.regulation == "SOC2")
    assert summary.controls == shipped_count + 1
    assert summary.with_rule == len(rule_set("SOC2").by_control()) + 1
