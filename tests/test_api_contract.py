"""Contract test: schemathesis generates valid and invalid requests from the served schema.

Every response must match the schema (status code documented, body shape) and
no input may cause a server error. Schema-valid requests may still be
rejected for rules the schema cannot state (an expiry in the past, an end
date before the start, an unknown entity), so that one check is left out.
The run is bounded by ``CONTRACT_EXAMPLES``
examples per operation and mode, so it stays within a few minutes.
"""

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from compliance.keys.models import ApiKey
from compliance.tenancy.models import Role
from compliance.wsgi import application

MAX_EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", "25"))

schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", application)
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True)


@pytest.fixture
def keep_test_connection():
    """Stop request signals from closing the test database connection between calls."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def admin_key(keep_test_connection, tenant, entity, soc2_history):
    _, plaintext = ApiKey.issue(tenant=tenant, name="contract", role=Role.ADMIN)
    return plaintext


@pytest.mark.django_db
@schema.parametrize()
@settings(suppress_health_check=list(HealthCheck), deadline=None)
def test_api_conforms_to_schema(case, admin_key):
    case.call_and_validate(
        headers={"X-API-Key": admin_key}, excluded_checks=[positive_data_acceptance]
    )
