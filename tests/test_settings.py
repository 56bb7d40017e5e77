"""Settings fail closed outside demo mode and parse the environment strictly."""

import os
import subprocess
import sys

from tests.conftest import ROOT

PRODUCTION = {
    "SECRET_KEY": "k7Qm2VxL9pR4tW8yZ1aC5eG3jN6sU0bD-production-like-secret-value",
    "API_KEY_PEPPERS": '{"1": "a-long-random-pepper"}',
    "ALLOWED_HOSTS": "compliance.example",
    "HTTPS": "1",
    "SECURE_HSTS_PRELOAD": "1",
}


def run_check(*arguments, **env):
    base = {key: value for key, value in os.environ.items() if key != "COMPLIANCE_DEMO"}
    base.pop("SECRET_KEY", None)
    base.pop("API_KEY_PEPPERS", None)
    base["DJANGO_SETTINGS_MODULE"] = "compliance.settings"
    return subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [sys.executable, "manage.py", "check", *arguments],
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


def test_deploy_check_clean_in_production():
    result = run_check("--deploy", "--fail-level", "WARNING", **PRODUCTION)

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_deploy_check_warns_without_https():
    result = run_check("--deploy", "--fail-level", "WARNING", **{**PRODUCTION, "HTTPS": "0"})

    assert result.returncode != 0
    assert "SECURE_HSTS_SECONDS" in result.stderr


def test_malformed_integer_rejected():
    result = run_check(**{**PRODUCTION, "SECURE_HSTS_SECONDS": "a year"})

    assert result.returncode != 0
    assert "SECURE_HSTS_SECONDS must be an integer" in result.stderr


def test_cache_url_must_be_redis():
    result = run_check(COMPLIANCE_DEMO="1", CACHE_URL="memcached://127.0.0.1:11211")

    assert result.returncode != 0
    assert "CACHE_URL must be a redis://" in result.stderr
