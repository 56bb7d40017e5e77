"""Log in and out, tenant resolution, role checks, the layout and CSRF of the pages."""

import datetime as dt
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from compliance.reports.models import Report, ReportStatus
from compliance.tenancy.models import Membership, Role
from compliance.web.access import SESSION_TENANT_KEY
from tests.conftest import MEMBER_PASSWORD as PASSWORD

TENANT_PAGES = [
    reverse("web:report-list"),
    reverse("web:report-new"),
    reverse("web:api-key-list"),
]


def test_login_page_labels_every_input(client, db):
    response = client.get(reverse("web:login"))

    assert response.status_code == 200
    html = response.content.decode()
    assert '<label for="id_username"' in html
    assert '<label for="id_password"' in html
    assert "AI Compliance" in html


def test_login_with_right_password(client, make_member):
    make_member(Role.AUDITOR, username="alice")

    response = client.post(reverse("web:login"), {"username": "alice", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == reverse("web:overview")
    assert client.get(reverse("web:overview")).status_code == 200


def test_login_with_wrong_password(client, make_member):
    make_member(Role.AUDITOR, username="alice")

    response = client.post(reverse("web:login"), {"username": "alice", "password": "wrong"})

    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_login_keeps_next_page(client, make_member):
    make_member(Role.OFFICER, username="alice")
    target = reverse("web:report-new")

    response = client.post(
        reverse("web:login"), {"username": "alice", "password": PASSWORD, "next": target}
    )

    assert response["Location"] == target


def test_logout_needs_post(client, login_as):
    login_as(Role.AUDITOR)

    page = client.get(reverse("web:logout"))

    assert page.status_code == 200
    assert "_auth_user_id" in client.session
    html = page.content.decode()
    assert f'<form method="post" action="{reverse("web:logout")}"' in html
    assert "csrfmiddlewaretoken" in html
    response = client.post(reverse("web:logout"))

    assert response.status_code == 302
    assert response["Location"] == reverse("web:login")
    assert "_auth_user_id" not in client.session


def test_logout_page_logged_out(client, db):
    response = client.get(reverse("web:logout"))

    assert response.status_code == 302
    assert response["Location"] == reverse("web:login")


def test_root_redirects_to_overview(client, db):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == reverse("web:overview")


@pytest.mark.parametrize("path", [*TENANT_PAGES, "/reports/00000000-0000-0000-0000-000000000000/"])
def test_anonymous_user_redirected_to_login(client, db, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("web:login") + "?next=")


def test_user_without_tenant_sees_403_page(client, db):
    user = get_user_model().objects.create_user("loner", password=PASSWORD)
    client.force_login(user)

    response = client.get(reverse("web:report-list"))

    assert response.status_code == 403
    assert "not a member of any organisation" in response.content.decode()


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.AUDITOR, {"web:report-list"}),
        (Role.OFFICER, {"web:report-list", "web:report-new"}),
        (Role.ADMIN, {"web:report-list", "web:report-new", "web:api-key-list"}),
    ],
)
def test_pages_allowed_by_role(client, login_as, role, allowed):
    login_as(role)

    for name in ("web:report-list", "web:report-new", "web:api-key-list"):
        response = client.get(reverse(name))
        expected = 200 if name in allowed else 403
        assert response.status_code == expected, f"{role} GET {name}"


def test_forbidden_page_names_required_role(client, login_as):
    login_as(Role.AUDITOR)

    response = client.get(reverse("web:report-new"))

    html = response.content.decode()
    assert "Compliance officer" in html
    assert "Auditor" in html


@pytest.mark.parametrize(
    ("role", "visible", "hidden"),
    [
        (Role.AUDITOR, [], ["Generate report", "API keys"]),
        (Role.OFFICER, ["Generate report"], ["API keys"]),
        (Role.ADMIN, ["Generate report", "API keys"], []),
    ],
)
def test_navigation_by_role(client, login_as, role, visible, hidden):
    login_as(role, username="nav-user")

    html = client.get(reverse("web:report-list")).content.decode()

    assert 'aria-label="Main"' in html
    for text in visible:
        assert f">{text}</a>" in html
    for text in hidden:
        assert f">{text}</a>" not in html
    assert "Acme Health" in html
    assert "nav-user" in html
    assert f'action="{reverse("web:logout")}"' in html


def test_single_tenant_user_sees_no_switcher(client, login_as):
    login_as(Role.AUDITOR)

    html = client.get(reverse("web:report-list")).content.decode()

    assert 'name="tenant"' not in html


def test_tenant_switcher_changes_tenant(client, login_as, other_tenant):
    user = login_as(Role.AUDITOR)
    Membership.objects.create(user=user, tenant=other_tenant, role=Role.ADMIN)

    first = client.get(reverse("web:report-list"))
    switched = client.post(reverse("web:tenant-switch"), {"tenant": str(other_tenant.pk)})
    after = client.get(reverse("web:api-key-list"))

    assert 'name="tenant"' in first.content.decode()
    assert first.status_code == 200
    assert switched.status_code == 302
    assert client.session[SESSION_TENANT_KEY] == str(other_tenant.pk)
    assert after.status_code == 200, "admin role in the second tenant allows API keys"
    assert "Globex" in after.content.decode()


def test_tenant_switch_to_foreign_tenant_is_404(client, login_as, other_tenant):
    login_as(Role.ADMIN)

    response = client.post(reverse("web:tenant-switch"), {"tenant": str(other_tenant.pk)})

    assert response.status_code == 404
    assert SESSION_TENANT_KEY not in client.session


def test_stale_tenant_choice_falls_back(client, login_as, other_tenant):
    login_as(Role.AUDITOR)
    session = client.session
    session[SESSION_TENANT_KEY] = str(other_tenant.pk)
    session.save()

    response = client.get(reverse("web:report-list"))

    assert response.status_code == 200
    assert response.context["current_tenant"].name == "Acme Health"


def test_times_shown_in_tenant_zone(client, login_as, tenant, entity):
    login_as(Role.AUDITOR)
    report = Report.objects.create(
        tenant=tenant,
        entity=entity,
        regulation="SOC2",
        period_start=dt.date(2026, 1, 1),
        period_end=dt.date(2026, 1, 7),
        status=ReportStatus.GENERATING,
    )
    # 23:30 UTC is 00:30 of the next day in Europe/Berlin (UTC+1 in January).
    created = dt.datetime(2026, 1, 15, 23, 30, tzinfo=dt.UTC)
    Report.objects.filter(pk=report.pk).update(created_at=created)

    html = client.get(reverse("web:report-list")).content.decode()

    text = re.sub(r"<[^>]+>", "", html)
    assert "2026-01-16 00:30" in text
    assert "Times are shown in Europe/Berlin" in text


def test_csrf_enforced_on_forms(tenant, entity):
    user = get_user_model().objects.create_user("officer", password=PASSWORD)
    Membership.objects.create(user=user, tenant=tenant, role=Role.ADMIN)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    today = dt.date.today()
    data = {
        "entity": str(entity.pk),
        "regulation": "SOC2",
        "period": "custom",
        "period_start": (today - dt.timedelta(days=3)).isoformat(),
        "period_end": (today - dt.timedelta(days=1)).isoformat(),
    }

    without_token = client.post(reverse("web:report-new"), data)
    key_without_token = client.post(reverse("web:api-key-list"), {"name": "ci", "role": "auditor"})
    client.get(reverse("web:report-new"))
    token = client.cookies["csrftoken"].value
    with_token = client.post(reverse("web:report-new"), {**data, "csrfmiddlewaretoken": token})

    assert without_token.status_code == 403
    assert "security token" in without_token.content.decode()
    assert key_without_token.status_code == 403
    assert with_token.status_code == 302
    assert Report.objects.count() == 1


def test_login_form_needs_csrf_token(make_member):
    make_member(Role.AUDITOR, username="alice")
    client = Client(enforce_csrf_checks=True)

    response = client.post(reverse("web:login"), {"username": "alice", "password": PASSWORD})

    assert response.status_code == 403


def test_unknown_page_is_html_404(client, login_as):
    login_as(Role.AUDITOR)

    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


def test_pages_send_strict_csp(client, login_as, entity):
    login_as(Role.OFFICER)

    response = client.get(reverse("web:report-list"))

    policy = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert "'unsafe-inline'" not in policy
    nonce = re.search(r"'nonce-([^']+)'", directives["style-src"]).group(1)
    html = response.content.decode()
    assert f'<style nonce="{nonce}">' in html
    assert "style=" not in html.replace(f'<style nonce="{nonce}">', "")
    assert not re.search(r'<script(?![^>]*\ssrc="/static/)', html), "inline script"


def test_api_docs_page_has_no_inline_script(client, db):
    response = client.get("/v1/docs")

    html = response.content.decode()
    assert response.status_code == 200
    assert "<script>" not in html
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
