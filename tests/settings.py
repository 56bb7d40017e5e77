"""Test settings: the demo secrets, a throwaway media folder, fast hashing."""

import os
import tempfile

os.environ.setdefault("COMPLIANCE_DEMO", "1")
os.environ.setdefault("COMPLIANCE_VAR_DIR", tempfile.mkdtemp(prefix="compliance-test-"))

from compliance.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
