"""Browser journeys through the pages: Debian's Chromium, driven by Playwright, on a live server.

Each test starts Chromium with a fresh profile, so no cookie or cache
carries over between journeys. The module is deselected by default (see
the ``browser`` marker in pyproject.toml); run it with ``make browser-test``.
"""

import concurrent.futures
import datetime as dt
import hashlib
import re
from pathlib import Path

import pytest
import requests
from django.utils import timezone

from compliance.catalog.models import Severity
from compliance.checks.models import FindingStatus
from compliance.inventory.models import Entity, EntityType
from compliance.reports.models import Report, ReportStatus
from compliance.tenancy.models import Role
from tests.browser.chromium import CHROMIUM, launch
from tests.conftest import MEMBER_PASSWORD, make_check

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is missing: install the dev extras"
)
expect = playwright_api.expect

# Bounds for one page action, and for a queued report to become ready. The
# report waits for the worker child process and the page's 5-second reload.
ACTION_TIMEOUT_MS = 15_000
REPORT_READY_TIMEOUT_MS = 120_000
WORKER_JOIN_TIMEOUT_SECONDS = 200
API_TIMEOUT_SECONDS = 10
NEW_PASSWORD = "a long and uncommon passphrase 7"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)",
    ),
]


@pytest.fixture(autouse=True)
def allow_orm_beside_playwright(monkeypatch):
    """Let the test thread use the ORM while Playwright runs.

    Playwright's sync API runs an asyncio event loop in the test's thread,
    and Django then rejects every ORM call from that thread as a call from
    async code. The tests call the ORM only between page actions, never
    from a coroutine, so the check guards nothing here.
    """
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def page(tmp_path):
    """Return a page of a new Chromium with an empty profile, closed after the test."""
    with playwright_api.sync_playwright() as playwright:
        context = launch(
            playwright,
            tmp_path / "profile",
            accept_downloads=True,
            viewport={"width": 1366, "height": 900},
        )
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


@pytest.fixture
def members(make_member):
    """One member of each role, all with the conftest password."""
    return {
        role: make_member(role, username=f"{role}-user")
        for role in (Role.ADMIN, Role.OFFICER, Role.AUDITOR)
    }


@pytest.fixture
def history(entity, soc2_history):
    """The SOC 2 history of conftest plus one GDPR check of the same entity."""
    make_check(
        entity,
        "GDPR",
        timezone.now() - dt.timedelta(days=2),
        [("Art.32", FindingStatus.FAIL, Severity.MEDIUM)],
    )
    return entity


def log_in(page, base_url, username, password=MEMBER_PASSWORD):
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base_url}/overview/")


def main_nav_links(page):
    return page.get_by_role("navigation", name="Main").get_by_role("link").all_inner_texts()


def test_officer_filters_checks(page, live_server, members, history):
    log_in(page, live_server.url, "officer-user")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Checks").click()
    expect(page.locator("caption")).to_contain_text("4 checks")

    page.get_by_label("Regulation").select_option(label="GDPR")
    page.get_by_role("button", name="Apply filters").click()

    expect(page).to_have_url(re.compile(r"framework=gdpr"))
    expect(page.locator("caption")).to_contain_text("1 check matching the filters")
    rows = page.locator("table.data-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("GDPR")

    page.get_by_role("link", name="Clear filters").click()
    expect(page.locator("caption")).to_contain_text("4 checks")


def test_officer_generates_and_downloads_report(page, live_server, members, history, run_worker):
    log_in(page, live_server.url, "officer-user")
    end = history.tenant.today()
    start = end - dt.timedelta(days=39)

    page.get_by_role("link", name="Generate report").click()
    page.get_by_label("Regulation").select_option(label="SOC 2")
    page.get_by_label("Start date").fill(start.isoformat())
    page.get_by_label("End date").fill(end.isoformat())
    page.get_by_role("button", name="Generate report").click()

    expect(page.get_by_text("This report is being generated")).to_be_visible()
    report = Report.objects.get()
    assert report.status == ReportStatus.GENERATING
    assert report.period_days == 40

    # The worker runs in a thread while the page reloads itself until the report is ready.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        worker = pool.submit(run_worker)
        download_link = page.get_by_role("link", name="Download PDF")
        expect(download_link).to_be_visible(timeout=REPORT_READY_TIMEOUT_MS)
        worker.result(timeout=WORKER_JOIN_TIMEOUT_SECONDS)

    with page.expect_download() as download_info:
        download_link.click()
    pdf = Path(download_info.value.path()).read_bytes()

    report.refresh_from_db()
    assert report.status == ReportStatus.READY
    assert pdf.startswith(b"%PDF")
    assert hashlib.sha256(pdf).hexdigest() == report.pdf_sha256


def test_admin_creates_and_revokes_api_key(page, live_server, members, entity):
    log_in(page, live_server.url, "admin-user")
    entities_url = f"{live_server.url}/v1/entities"

    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("Browser journey")
    page.get_by_label("Role").select_option(label="Compliance officer")
    page.get_by_role("button", name="Create key").click()

    key = page.locator("#new-key-value").input_value()
    assert key.startswith("cmp_")
    response = requests.get(entities_url, headers={"X-API-Key": key}, timeout=API_TIMEOUT_SECONDS)
    assert response.status_code == 200
    assert entity.name in response.text

    page.get_by_role("link", name="Revoke Browser journey").click()
    page.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_text("is revoked and no longer works")).to_be_visible()

    response = requests.get(entities_url, headers={"X-API-Key": key}, timeout=API_TIMEOUT_SECONDS)
    assert response.status_code == 401


def test_admin_invites_member_who_sets_password(page, live_server, members):
    log_in(page, live_server.url, "admin-user")

    page.get_by_role("link", name="Members").click()
    page.get_by_label("Username", exact=True).fill("dana")
    page.get_by_label("Email").fill("dana@example.com")
    page.get_by_label("Role", exact=True).select_option(label="Auditor")
    page.get_by_role("button", name="Add member").click()

    expect(page.get_by_text("No email was sent")).to_be_visible()
    link = page.locator("#set-password-link").input_value()
    assert link.startswith(f"{live_server.url}/set-password/")
    page.get_by_role("button", name="Log out").click()

    page.goto(link)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password confirmation").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_text("Your password is set")).to_be_visible()

    log_in(page, live_server.url, "dana", NEW_PASSWORD)
    expect(page.locator(".account__role")).to_have_text("(Auditor)")


def test_auditor_sees_no_officer_or_admin_pages(page, live_server, members):
    log_in(page, live_server.url, "auditor-user")

    links = main_nav_links(page)

    assert "Reports" in links
    for hidden in ("Generate report", "API keys", "Members", "Audit trail"):
        assert hidden not in links
    response = page.goto(f"{live_server.url}/reports/new/")
    assert response.status == 403
    expect(page.get_by_role("heading", name="You cannot open this page")).to_be_visible()


def test_admin_limits_auditor_who_sees_only_that(page, live_server, members, history):
    hidden = Entity.objects.create(
        tenant=history.tenant, entity_type=EntityType.MODEL, name="Hidden fraud model"
    )
    make_check(
        hidden,
        "SOC2",
        timezone.now() - dt.timedelta(days=1),
        [("CC6.1", FindingStatus.FAIL, Severity.CRITICAL)],
    )
    log_in(page, live_server.url, "admin-user")

    page.get_by_role("link", name="Members").click()
    page.get_by_role("link", name="Change scope of auditor-user").click()
    page.get_by_label("Claims triage agent").check()
    page.get_by_label("SOC 2").check()
    page.get_by_role("button", name="Save scope").click()
    saved = page.get_by_text("auditor-user now sees only the entity Claims triage agent")
    expect(saved).to_be_visible()
    page.get_by_role("button", name="Log out").click()

    log_in(page, live_server.url, "auditor-user")
    banner = page.locator(".scope-banner")
    expect(banner).to_contain_text("the entity Claims triage agent; the regulation SOC 2")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Entities").click()
    expect(page.get_by_role("link", name="Claims triage agent")).to_be_visible()
    expect(page.get_by_text("Hidden fraud model")).to_have_count(0)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Checks").click()
    expect(page.locator("tbody")).not_to_contain_text("GDPR")
    response = page.goto(f"{live_server.url}/entities/{hidden.pk}/")
    assert response.status == 404
