"""With CACHE_URL set, server processes share the cache that counts requests and failed logins.

These tests run only with CACHE_URL set (`.ci/run` sets it). Each writes
one key with a random suffix and deletes it afterwards.
"""

import os
import subprocess
import sys
import uuid

import pytest
from django.conf import settings
from django.core.cache import cache

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(
    not os.environ.get("CACHE_URL"),
    reason="needs CACHE_URL=redis://127.0.0.1:6379/8 (.ci/run sets it)",
)


def set_in_other_process(key, value):
    code = f"from django.core.cache import cache; cache.set({key!r}, {value!r}, 60)"
    subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_cache_is_redis():
    assert settings.CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"


def test_other_process_sees_value():
    key = f"shared-cache-test-{uuid.uuid4().hex}"
    try:
        set_in_other_process(key, "written elsewhere")

        assert cache.get(key) == "written elsewhere"
    finally:
        cache.delete(key)


def test_counter_spans_processes():
    key = f"shared-cache-test-{uuid.uuid4().hex}"
    try:
        cache.set(key, 1, 60)
        set_in_other_process(key, 5)

        assert cache.incr(key) == 6
    finally:
        cache.delete(key)
