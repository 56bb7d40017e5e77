"""Settings fail closed outside demo mode and parse the environment strictly."""

import os
import subprocess
import sys

from tests.conftest import ROOT


def run_check(**env):
    base = {key: value for key, value in os.environ.items() if key != "COMPLIANCE_DEMO"}
    base.pop("SECRET_KEY", None)
    base.pop("API_KEY_PEPPERS", None)
    base["DJANGO_SETTINGS_MODULE"] = "compliance.settings"
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_missing_secret_key_rejected():
    result = run_check()

    assert result.returncode != 0
    assert "SECRET_KEY is missing" in result.stderr


def test_missing_peppers_rejected():
    result = run_check(SECRET_KEY="x" * 50)

    assert result.returncode != 0
    assert "API_KEY_PEPPERS is missing" in result.stderr


def test_malformed_peppers_rejected():
    result = run_check(SECRET_KEY="x" * 50, API_KEY_PEPPERS="[1, 2]")

    assert result.returncode != 0
    assert "API_KEY_PEPPERS must be a JSON object" in result.stderr


def test_malformed_boolean_rejected():
    result = run_check(COMPLIANCE_DEMO="maybe")

    assert result.returncode != 0
    assert "COMPLIANCE_DEMO must be a boolean" in result.stderr


def test_production_settings_start():
    result = run_check(
        SECRET_KEY="x" * 50, API_KEY_PEPPERS='{"1": "pepper"}', ALLOWED_HOSTS="a.example"
    )

    assert result.returncode == 0, result.stderr
