"""Tenant isolation over every registered route, API and pages.

A member of tenant A (an admin, the widest role) requests each route with
tenant B's object ids and filters. Every response must be a 404, a refusal or
a list without B's data. ``PROBES`` has one entry per URL name, and a test
fails when a route is added without one, so new routes cannot skip this.
"""

import io
import json
import zipfile

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils.http import urlsafe_base64_encode

from compliance.audit.services import record_event
from compliance.catalog.models import Control, Severity, TenantRule
from compliance.checks.models import Check, FindingStatus
from compliance.keys.models import ApiKey
from compliance.reports.models import Report
from compliance.reports.services import request_report
from compliance.tenancy.models import Membership, Role
from tests.conftest import make_check

# How to probe each route: (method, kind, extra). kind is "object" (must be
# 404), "list" (must not contain B's data), "create" (must not touch B's
# objects) or "public" (no tenant data at all).
PROBES = {
    "api:openapi": ("GET", "public", None),
    "api:docs": ("GET", "public", None),
    "api:reports": ("GET", "list", {"agent_id": "entity"}),
    "api:aggregated-reports": ("GET", "list", {"entity_id": "entity"}),
    "api:report-detail": ("GET", "object", None),
    "api:report-pdf": ("GET", "object", None),
    "api:report-verification": ("GET", "object", None),
    "api:check": ("POST", "create", {"agent_id": "entity", "framework": "soc2"}),
    "api:results": (
        "POST",
        "create",
        {
            "entity_id": "entity",
            "regulation": "SOC2",
            "source": "probe",
            "findings": [
                {"control_id": "CC6.1", "status": "fail", "severity": "high", "title": "x"}
            ],
        },
    ),
    "api:check-detail": ("GET", "object", None),
    "api:checks-csv": ("GET", "list", {"agent_id": "entity"}),
    "api:checks-xlsx": ("GET", "list", {"agent_id": "entity"}),
    "api:report-findings-csv": ("GET", "object", None),
    "api:report-findings-xlsx": ("GET", "object", None),
    "api:check-oscal": ("GET", "object", None),
    "api:report-oscal": ("GET", "object", None),
    "api:audit-events": ("GET", "list", None),
    "api:entities": ("GET", "list", None),
    "api:entity-detail": ("GET", "object", None),
    "api:api-keys": ("GET", "list", None),
    "api:api-key-detail": ("GET", "object", None),
    "api:controls": ("GET", "list", {"shipped": "false"}),
    "api:control-detail": ("GET", "object", None),
    "api:rules": ("GET", "list", None),
    "api:rule-detail": ("GET", "object", None),
    "web:home": ("GET", "list", None),
    "web:login": ("GET", "public", None),
    "web:logout": ("GET", "public", None),
    "web:tenant-switch": ("POST", "create", {"tenant": "tenant"}),
    "web:overview": ("GET", "list", None),
    "web:entity-list": ("GET", "list", {"search": "Globex"}),
    "web:entity-detail": ("GET", "object", None),
    "web:entity-run-check": ("POST", "object", {"regulation": "SOC2"}),
    "web:check-list": ("GET", "list", {"agent_id": "entity"}),
    "web:check-detail": ("GET", "object", None),
    "web:check-oscal": ("GET", "object", None),
    "web:report-oscal": ("GET", "object", None),
    "web:import-new": ("POST", "create", {"entity": "entity"}),
    "web:report-list": ("GET", "list", {"entity": "entity"}),
    "web:report-new": ("POST", "create", {"entity": "entity", "regulation": "SOC2"}),
    "web:report-detail": ("GET", "object", None),
    "web:report-pdf": ("GET", "object", None),
    "web:report-export-csv": ("GET", "object", None),
    "web:report-export-xlsx": ("GET", "object", None),
    "web:report-verify": ("GET", "list", None),
    "web:api-key-list": ("GET", "list", None),
    "web:api-key-revoke": ("POST", "object", None),
    "web:audit-list": ("GET", "list", None),
    "web:member-list": ("GET", "list", None),
    "web:member-role": ("POST", "object", {"role": "auditor"}),
    "web:member-link": ("POST", "object", None),
    "web:member-remove": ("POST", "object", None),
    "web:member-scope": ("POST", "object", {"regulations": ["SOC2"]}),
    "web:set-password": ("GET", "public", None),
    "web:control-list": ("GET", "list", None),
    "web:control-detail": ("GET", "list", None),
    "web:control-new": ("POST", "create", {"control_id": "CC9.4", "title": ""}),
    "web:control-edit": ("POST", "object", {"control_id": "CC9.4", "title": "taken"}),
    "web:control-delete": ("POST", "object", None),
    "web:rule-new": ("POST", "create", {"control": "control", "title": "x", "expression": "x"}),
    "web:rule-edit": ("POST", "object", {"title": "taken"}),
    "web:rule-delete": ("POST", "object", None),
}

# Extra write methods on object routes, each of which must also be a 404.
WRITES = {
    "api:entity-detail": [("PATCH", {"name": "taken"}), ("DELETE", None)],
    "api:api-key-detail": [("DELETE", None)],
    "api:control-detail": [("PATCH", {"title": "taken"}), ("DELETE", None)],
    "api:rule-detail": [("PATCH", {"enabled": False}), ("DELETE", None)],
}


def registered_routes(resolver=None, namespace=""):
    """Yield ``(url name, keyword names)`` for every named route of the project."""
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{pattern.namespace}:" if pattern.namespace else namespace
            yield from registered_routes(pattern, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield f"{namespace}{pattern.name}", sorted(pattern.pattern.converters)


ROUTES = sorted(registered_routes())


@pytest.fixture
def foreign(other_tenant, other_entity):
    """Tenant B's objects, and the strings that would reveal them in a response."""
    check = make_check(
        other_entity,
        "SOC2",
        other_entity.created_at,
        [("CC6.1", FindingStatus.FAIL, Severity.HIGH)],
    )
    today = other_tenant.today()
    report = request_report(
        tenant=other_tenant,
        entity=other_entity,
        regulation="SOC2",
        period_start=today.replace(day=1),
        period_end=today,
    )
    api_key, _ = ApiKey.issue(tenant=other_tenant, name="globex-secret-key", role=Role.ADMIN)
    record_event("create", tenant=other_tenant, actor_name="globex-actor", target=other_entity)
    member = get_user_model().objects.create_user("globex-member", email="member@globex.example")
    membership = Membership.objects.create(user=member, tenant=other_tenant, role=Role.ADMIN)
    control = Control.objects.create(
        tenant=other_tenant,
        regulation="SOC2",
        control_id="CC9.4",
        title="Globex private control",
        catalog_version="tenant",
    )
    rule = TenantRule.objects.create(
        tenant=other_tenant,
        regulation="SOC2",
        control=control,
        title="Globex private rule",
        expression="logging.retention_days >= 4321",
        facts=["logging.retention_days"],
    )
    return {
        "tenant": other_tenant,
        "entity": other_entity,
        "check": check,
        "report": report,
        "api_key": api_key,
        "membership": membership,
        "control": control,
        "rule": rule,
        "markers": [
            str(other_tenant.pk),
            str(other_entity.pk),
            other_entity.name,
            str(check.pk),
            str(report.pk),
            report.public_id,
            str(api_key.pk),
            api_key.name,
            "globex-actor",
            "globex-member",
            "member@globex.example",
            control.title,
            rule.title,
            "4321",
        ],
    }


@pytest.fixture
def member_client(tenant, entity, issue_key, make_member):
    """Tenant A's admin: a logged-in page client and an API key."""
    user = make_member(Role.ADMIN)
    client = Client()
    client.force_login(user)
    return client, issue_key(tenant, role=Role.ADMIN)


def path_kwargs(name, keywords, foreign):
    values = {
        "report_id": foreign["report"].public_id
        if name.startswith("api:")
        else foreign["report"].pk,
        "check_id": foreign["check"].pk,
        "entity_id": foreign["entity"].pk,
        "key_id": foreign["api_key"].pk,
        "membership_id": foreign["membership"].pk,
        "uidb64": urlsafe_base64_encode(str(foreign["membership"].user_id).encode()),
        "token": "not-a-valid-token",
        "regulation": "SOC2",
        "control_pk": foreign["control"].pk,
        "rule_id": foreign["rule"].pk,
    }
    missing = set(keywords) - set(values)
    assert not missing, f"{name} has path parameters without a foreign value: {missing}"
    return {keyword: values[keyword] for keyword in keywords}


def resolve_extra(extra, foreign):
    """Replace the placeholders "entity", "tenant" and "control" with B's ids."""
    if extra is None:
        return {}
    placeholders = {
        "entity": str(foreign["entity"].pk),
        "tenant": str(foreign["tenant"].pk),
        "control": str(foreign["control"].pk),
    }
    return {
        key: placeholders.get(value, value) if isinstance(value, str) else value
        for key, value in extra.items()
    }


def send(client, key, name, method, path, data):
    headers = {"X-API-Key": key} if name.startswith("api:") else {}
    if method == "GET":
        return client.get(path, data or {}, headers=headers)
    if name.startswith("api:"):
        body = json.dumps(data) if data is not None else ""
        return client.generic(method, path, body, content_type="application/json", headers=headers)
    return client.post(path, data or {}, headers=headers)


def body_text(response):
    """Return a response's body as text: streamed bodies joined, XLSX files unzipped."""
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    if raw.startswith(b"PK"):
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            raw = b"".join(archive.read(name) for name in archive.namelist())
    return raw.decode(errors="replace")


def assert_no_markers(response, foreign, name):
    body = body_text(response)
    for marker in foreign["markers"]:
        assert marker not in body, f"{name} revealed {marker!r} of another tenant"


def test_every_route_has_a_probe():
    names = {name for name, _ in ROUTES}

    assert names - set(PROBES) == set(), "add the new routes to PROBES"
    assert set(PROBES) - names == set(), "remove probes of deleted routes"


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "keywords"), ROUTES, ids=[name for name, _ in ROUTES])
def test_route_hides_other_tenant(name, keywords, member_client, foreign):
    client, key = member_client
    method, kind, extra = PROBES[name]
    path = reverse(name, kwargs=path_kwargs(name, keywords, foreign))
    reports_before = Report.objects.filter(tenant=foreign["tenant"]).count()
    checks_before = Check.objects.filter(tenant=foreign["tenant"]).count()

    response = send(client, key, name, method, path, resolve_extra(extra, foreign))

    if kind == "object":
        assert response.status_code == 404, f"{name}: {response.status_code}"
    elif kind == "list":
        assert response.status_code in {200, 302}, f"{name}: {response.status_code}"
        assert_no_markers(response, foreign, name)
    elif kind == "create":
        assert response.status_code in {200, 400, 404}, f"{name}: {response.status_code}"
        assert_no_markers(response, foreign, name)
    else:
        assert_no_markers(response, foreign, name)
    assert Report.objects.filter(tenant=foreign["tenant"]).count() == reports_before
    assert Check.objects.filter(tenant=foreign["tenant"]).count() == checks_before
    foreign_memberships = Membership.objects.filter(tenant=foreign["tenant"])
    assert list(foreign_memberships.values_list("pk", "role")) == [
        (foreign["membership"].pk, Role.ADMIN)
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(WRITES))
def test_writes_to_other_tenant_are_404(name, member_client, foreign):
    client, key = member_client
    keywords = dict(ROUTES)[name]
    path = reverse(name, kwargs=path_kwargs(name, keywords, foreign))

    for method, data in WRITES[name]:
        response = send(client, key, name, method, path, data)
        assert response.status_code == 404, f"{method} {name}: {response.status_code}"

    foreign["entity"].refresh_from_db()
    foreign["api_key"].refresh_from_db()
    assert foreign["entity"].name == "Globex model"
    assert foreign["api_key"].revoked_at is None
    foreign["control"].refresh_from_db()
    foreign["rule"].refresh_from_db()
    assert foreign["control"].title == "Globex private control"
    assert foreign["rule"].enabled is True
