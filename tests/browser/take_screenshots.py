"""Take the screenshots in docs/screenshots/ from a running demo server.

Start the demo server on this machine first (docs/screenshots/README.md has
the commands), then run::

    .venv/bin/python -m tests.browser.take_screenshots --base-url http://127.0.0.1:8768

Each page is captured whole at 1366 px wide in Debian's Chromium, then
reduced to a 256-colour PNG, which keeps the text sharp and the files small.
The script logs in as the demo admin, whose role opens every page, and adds the
member ``dana`` on the members page to show the one-time link. A second browser
that prefers a dark colour scheme then captures the pages with charts again,
as ``<name>-dark.png``.
"""

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image
from playwright.sync_api import sync_playwright

from tests.browser.chromium import launch

logger = logging.getLogger(__name__)

WIDTH = 1366
HEIGHT = 900
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
ACTION_TIMEOUT_MS = 30_000
OUTPUT_DIR = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

# (file name, path) of the pages that need no link lookup.
FIXED_PAGES = [
    ("overview.png", "/overview/"),
    ("reports.png", "/reports/"),
    ("generate-report.png", "/reports/new/"),
    ("api-keys.png", "/settings/api-keys/"),
    ("audit.png", "/settings/audit/"),
    ("controls.png", "/controls/"),
    ("verify-pdf.png", "/reports/verify/"),
    ("entities.png", "/entities/"),
    ("checks.png", "/checks/"),
]

# (file name, list path, link prefix) of the detail pages captured in the dark theme.
DARK_DETAIL_PAGES = [
    ("report-detail-dark.png", "/reports/", "/reports/"),
    ("entity-detail-dark.png", "/entities/", "/entities/"),
]


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base-url", required=True, help="Demo server on this machine, e.g. http://127.0.0.1:8768."
    )
    parser.add_argument("--username", default="admin", help="Demo admin login (default admin).")
    parser.add_argument(
        "--password", default="demo-password-123", help="Its password (the seed_demo default)."
    )
    parser.add_argument(
        "--out", type=Path, default=OUTPUT_DIR, help="Folder for the PNG files (docs/screenshots)."
    )
    arguments = parser.parse_args(argv)

    host = urlsplit(arguments.base_url).hostname
    if host not in LOCAL_HOSTS:
        parser.error(f"--base-url must point at this machine, not {host!r}.")
    arguments.base_url = arguments.base_url.rstrip("/")
    return arguments


def save_reduced(page, path):
    """Capture the whole page and store it as an optimised 256-colour PNG."""
    raw = path.with_suffix(".raw.png")
    page.screenshot(path=str(raw), full_page=True)

    with Image.open(raw) as image:
        reduced = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        reduced.save(path, optimize=True)
    raw.unlink()
    logger.info("saved %s (%d KB)", path, path.stat().st_size // 1024)


def log_in(page, base_url, username, password):
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}/overview/")


def first_link(page, base_url, list_path, href_prefix):
    """Open ``list_path`` and return the absolute URL of its first link under ``href_prefix``."""
    page.goto(f"{base_url}{list_path}")
    href = page.locator(f"main tbody a[href^='{href_prefix}']").first.get_attribute("href")
    return f"{base_url}{href}"


def capture_members(page, base_url, out):
    """Capture the members page with a one-time link for the member ``dana``.

    The first run adds ``dana``, and later runs issue ``dana`` a new link.
    """
    page.goto(f"{base_url}/settings/members/")
    if page.get_by_role("rowheader", name="dana").count() == 0:
        page.get_by_label("Username", exact=True).fill("dana")
        page.get_by_label("Email").fill("dana@example.com")
        page.get_by_label("Role", exact=True).select_option(label="Auditor")
        page.get_by_role("button", name="Add member").click()
    else:
        page.get_by_role("button", name="New link to set the password of dana").click()
    page.locator("#set-password-link").wait_for()
    save_reduced(page, out / "members.png")


def capture_dark(page, base_url, username, password, out):
    """Capture the pages with charts in the dark theme, after logging in again."""
    log_in(page, base_url, username, password)
    page.goto(f"{base_url}/overview/")
    save_reduced(page, out / "overview-dark.png")
    for name, list_path, href_prefix in DARK_DETAIL_PAGES:
        page.goto(first_link(page, base_url, list_path, href_prefix))
        save_reduced(page, out / name)


def capture_all(page, base_url, username, password, out):
    page.goto(f"{base_url}/login/")
    save_reduced(page, out / "login.png")
    log_in(page, base_url, username, password)
    # First, so that the audit trail shows the member it adds.
    capture_members(page, base_url, out)

    for name, path in FIXED_PAGES:
        page.goto(f"{base_url}{path}")
        save_reduced(page, out / name)

    detail_pages = [
        ("report-detail.png", "/reports/", "/reports/"),
        ("control-detail.png", "/controls/", "/controls/"),
        ("check-detail.png", "/checks/", "/checks/"),
        ("entity-detail.png", "/entities/", "/entities/"),
    ]
    for name, list_path, href_prefix in detail_pages:
        page.goto(first_link(page, base_url, list_path, href_prefix))
        save_reduced(page, out / name)


def open_page(playwright, profile, **options):
    context = launch(playwright, profile, viewport={"width": WIDTH, "height": HEIGHT}, **options)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    return context, context.pages[0] if context.pages else context.new_page()


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    arguments = parse_arguments(argv)
    arguments.out.mkdir(parents=True, exist_ok=True)

    login = (arguments.base_url, arguments.username, arguments.password, arguments.out)
    with sync_playwright() as playwright:
        for color_scheme, capture in (("light", capture_all), ("dark", capture_dark)):
            with tempfile.TemporaryDirectory() as profile:
                context, page = open_page(playwright, profile, color_scheme=color_scheme)
                try:
                    capture(page, *login)
                finally:
                    context.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
