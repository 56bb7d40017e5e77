"""How the browser tests and the screenshot script start Debian's Chromium.

Playwright drives the system browser at ``CHROMIUM`` and never downloads
one of its own. The arguments keep Chromium from contacting any host for
updates, sync or component downloads. ``--no-sandbox`` lets it run as
root, which Chromium rejects while its sandbox is on.
"""

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch(playwright, profile_dir, **options):
    """Start headless Chromium with the empty profile ``profile_dir`` and return its context."""
    return playwright.chromium.launch_persistent_context(
        str(profile_dir),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        **options,
    )
