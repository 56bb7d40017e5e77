"""Test settings: the demo secrets, a throwaway media folder, fast hashing."""

import os
import tempfile

os.environ.setdefault("COMPLIANCE_DEMO", "1")
os.environ.setdefault("COMPLIANCE_VAR_DIR", tempfile.mkdtemp(prefix="compliance-test-"))

from compliance.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405

# A file-backed SQLite test database, so that a worker process started by a
# test reads the same data as the test itself.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}  # noqa: F405

# The suite sends many requests with one key; the throttling tests set their own rates.
API_RATE_LIMIT = "100000/minute"
