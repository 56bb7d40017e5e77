"""Browser checks of the progressive enhancements: htmx swaps, the copy button, the dark theme.

Like the journeys, these run in Debian's Chromium on a live server, each
with a fresh profile, and only with ``-m browser`` (``make browser-test``).
"""

import datetime as dt
import re

import pytest
from django.utils import timezone

from compliance.catalog.models import Severity
from compliance.checks.models import FindingStatus
from compliance.reports.models import ReportStatus
from compliance.reports.services import request_report
from compliance.tenancy.models import Role
from tests.browser.chromium import CHROMIUM, launch
from tests.conftest import MEMBER_PASSWORD, make_check
from tests.test_theme_contrast import GRAPHICS_MINIMUM, TEXT_MINIMUM, contrast

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is missing: install the dev extras"
)
expect = playwright_api.expect

ACTION_TIMEOUT_MS = 15_000
VIEWPORT = {"width": 1366, "height": 900}

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
    """Let the test thread use the ORM between page actions (see test_journeys)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def open_browser(tmp_path):
    """Return a function that starts Chromium with the given context options and returns a page.

    Every browser it started is closed after the test.
    """
    contexts = []
    with playwright_api.sync_playwright() as playwright:

        def start(**options):
            profile = tmp_path / f"profile-{len(contexts)}"
            context = launch(playwright, profile, viewport=VIEWPORT, **options)
            context.set_default_timeout(ACTION_TIMEOUT_MS)
            contexts.append(context)
            return context.pages[0] if context.pages else context.new_page()

        try:
            yield start
        finally:
            for context in contexts:
                context.close()


@pytest.fixture
def ready_report(entity, soc2_history):
    today = entity.tenant.today()
    report = request_report(
        tenant=entity.tenant,
        entity=entity,
        regulation="SOC2",
        period_start=today - dt.timedelta(days=20),
        period_end=today,
    )
    assert report.status == ReportStatus.READY
    return report


def log_in(page, base_url, username):
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(MEMBER_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base_url}/overview/")


def record_csp_violations(page):
    """Return a list that collects the page's Content-Security-Policy violations as they occur."""
    violations = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return violations


def create_api_key(page, base_url, name):
    page.goto(f"{base_url}/settings/api-keys/")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Role").select_option(label="Auditor")
    page.get_by_role("button", name="Create key").click()


def rgb_to_hex(css_colour):
    """Return ``#rrggbb`` for a computed ``rgb(r, g, b)`` colour."""
    red, green, blue = (int(part) for part in re.findall(r"\d+", css_colour)[:3])
    return f"#{red:02x}{green:02x}{blue:02x}"


def computed(page, selector, property_name):
    colour = page.locator(selector).first.evaluate(
        "(element, name) => getComputedStyle(element).getPropertyValue(name)", property_name
    )
    return rgb_to_hex(colour)


def test_copy_button_copies_new_key(open_browser, live_server, make_member):
    make_member(Role.ADMIN, username="admin-user")
    page = open_browser(permissions=["clipboard-read", "clipboard-write"])
    violations = record_csp_violations(page)
    log_in(page, live_server.url, "admin-user")

    create_api_key(page, live_server.url, "Copied key")
    key = page.locator("#new-key-value").input_value()
    button = page.get_by_role("button", name="Copy API key")
    expect(button).to_be_visible()
    button.click()

    expect(page.get_by_role("status").filter(has_text="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == key
    assert key.startswith("cmp_")
    assert violations == []


def test_copy_button_hidden_without_javascript(open_browser, live_server, make_member):
    make_member(Role.ADMIN, username="admin-user")
    page = open_browser(java_script_enabled=False)
    log_in(page, live_server.url, "admin-user")

    create_api_key(page, live_server.url, "Key without script")

    expect(page.locator("#new-key-value")).to_have_value(re.compile(r"^cmp_"))
    expect(page.get_by_role("button", name="Copy API key")).to_be_hidden()


def test_check_filters_swap_results_in_place(open_browser, live_server, make_member, entity):
    make_member(Role.AUDITOR, username="auditor-user")
    now = timezone.now()
    for hours in range(30):
        make_check(entity, "SOC2", now - dt.timedelta(hours=hours), [("CC6.1", "pass", "low")])
    make_check(entity, "GDPR", now, [("Art.32", FindingStatus.FAIL, Severity.MEDIUM)])
    page = open_browser()
    violations = record_csp_violations(page)
    log_in(page, live_server.url, "auditor-user")
    page.goto(f"{live_server.url}/checks/")
    # A full page load would drop this marker, an htmx swap keeps it.
    page.evaluate("window.pageMarker = 'kept'")

    page.get_by_role("link", name="Next").click()
    expect(page).to_have_url(re.compile(r"page=2"))
    expect(page.get_by_text("Page 2 of 2")).to_be_visible()

    page.get_by_label("Regulation").select_option(label="GDPR")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"framework=gdpr"))
    expect(page.locator("caption")).to_contain_text("1 check matching the filters")

    assert page.evaluate("window.pageMarker") == "kept"
    assert violations == []


def test_charts_meet_contrast_in_both_schemes(open_browser, live_server, make_member, ready_report):
    make_member(Role.AUDITOR, username="auditor-user")
    url = f"{live_server.url}/reports/{ready_report.pk}/"

    for scheme in ("light", "dark"):
        page = open_browser(color_scheme=scheme)
        log_in(page, live_server.url, "auditor-user")
        page.goto(url)

        # The chart itself is transparent, so the card around it gives the background.
        background = computed(page, "section.card:has(.chart)", "background-color")
        line = computed(page, ".chart polyline.score-line", "stroke")
        label = computed(page, ".chart .y-axis text", "fill")

        assert contrast(line, background) >= GRAPHICS_MINIMUM, f"{scheme}: line {line}"
        assert contrast(label, background) >= TEXT_MINIMUM, f"{scheme}: label {label}"
        page.context.close()


def test_print_uses_light_colours_in_dark_mode(
    open_browser, live_server, make_member, ready_report
):
    make_member(Role.AUDITOR, username="auditor-user")
    page = open_browser(color_scheme="dark")
    log_in(page, live_server.url, "auditor-user")
    page.goto(f"{live_server.url}/reports/{ready_report.pk}/")
    assert computed(page, "body", "background-color") == "#0d1117"

    page.emulate_media(media="print")

    assert computed(page, "body", "background-color") == "#ffffff"
    assert computed(page, ".chart polyline.score-line", "stroke") == "#0969da"
