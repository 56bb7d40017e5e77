"""Shared fixtures: tenants, entities, API keys, checks with findings, and a worker."""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from compliance.catalog.models import Severity
from compliance.checks.models import (
    Check,
    CheckSource,
    Finding,
    FindingStatus,
    status_from_findings,
)
from compliance.checks.rollups import record_rollups
from compliance.inventory.models import Entity, EntityType
from compliance.keys.models import ApiKey
from compliance.tenancy.models import Membership, Role, Tenant

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def tenant(db):
    return Tenant.objects.create(slug="acme", name="Acme Health", time_zone="Europe/Berlin")


@pytest.fixture
def other_tenant(db):
    return Tenant.objects.create(slug="globex", name="Globex", time_zone="UTC")


@pytest.fixture
def entity(tenant):
    return Entity.objects.create(
        tenant=tenant, entity_type=EntityType.AGENT, name="Claims triage agent", owner="Ops"
    )


@pytest.fixture
def other_entity(other_tenant):
    return Entity.objects.create(
        tenant=other_tenant, entity_type=EntityType.MODEL, name="Globex model"
    )


MEMBER_PASSWORD = "correct horse battery staple"


@pytest.fixture
def make_member(tenant):
    """Return a function that creates a user with one membership of the given role."""

    def make(role, username=None, member_of=None):
        user = get_user_model().objects.create_user(
            username or f"{role}-user", password=MEMBER_PASSWORD
        )
        Membership.objects.create(user=user, tenant=member_of or tenant, role=role)
        return user

    return make


@pytest.fixture
def login_as(client, make_member):
    """Return a function that logs the test client in as a new member with a role."""

    def login(role, **kwargs):
        user = make_member(role, **kwargs)
        client.force_login(user)
        return user

    return login


@pytest.fixture
def issue_key():
    def issue(tenant, role=Role.OFFICER, name="test key"):
        _, plaintext = ApiKey.issue(tenant=tenant, name=name, role=role)
        return plaintext

    return issue


def make_check(entity, regulation, when, results, source=CheckSource.API):
    """Create a check at ``when`` with findings from ``(control_id, status, severity)`` rows.

    The check, its findings and the daily rollups are written together, as the
    product's own save paths do.
    """
    check = Check(
        tenant=entity.tenant,
        entity=entity,
        regulation=regulation,
        source=source,
        created_at=when,
        completed_at=when,
    )
    findings = [
        Finding(
            compliance_check=check,
            tenant=entity.tenant,
            entity=entity,
            regulation=regulation,
            observed_at=when,
            finding_id=f"{control_id}-{index}",
            control_id=control_id,
            status=status,
            severity=severity,
            title=f"{control_id} evaluated",
            description=f"{control_id} is {status}",
        )
        for index, (control_id, status, severity) in enumerate(results)
    ]
    check.status = status_from_findings(findings)
    with transaction.atomic():
        check.save()
        Finding.objects.bulk_create(findings)
        record_rollups([check], findings)
    return check


@pytest.fixture
def check_factory():
    return make_check


@pytest.fixture
def soc2_history(entity):
    """Three SOC 2 checks a week apart, the last one failing CC6.1 with high severity."""
    now = timezone.now().replace(microsecond=0)
    make_check(
        entity,
        "SOC2",
        now - dt.timedelta(days=14),
        [("CC6.1", FindingStatus.PASS, Severity.HIGH), ("CC7.2", FindingStatus.FAIL, Severity.LOW)],
    )
    make_check(
        entity,
        "SOC2",
        now - dt.timedelta(days=7),
        [("CC6.1", FindingStatus.PASS, Severity.HIGH), ("CC7.2", FindingStatus.PASS, Severity.LOW)],
    )
    return make_check(
        entity,
        "SOC2",
        now - dt.timedelta(days=1),
        [
            ("CC6.1", FindingStatus.FAIL, Severity.HIGH),
            ("A1.2", FindingStatus.NOT_APPLICABLE, Severity.LOW),
        ],
    )


class Api:
    """A small HTTP client for the live server that sends one API key."""

    def __init__(self, base_url, key):
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["X-API-Key"] = key

    def get(self, path, **kwargs):
        return self.session.get(self.base_url + path, timeout=30, **kwargs)

    def post(self, path, **kwargs):
        return self.session.post(self.base_url + path, timeout=30, **kwargs)


@pytest.fixture
def api(live_server, tenant, issue_key):
    return Api(live_server.url, issue_key(tenant))


def database_url():
    """Return a DATABASE_URL for the test database that a child process can open."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = settings["USER"] or ""
    host = settings["HOST"] or "127.0.0.1"
    port = settings["PORT"] or 5432
    return f"postgres://{user}@{host}:{port}/{settings['NAME']}"


@pytest.fixture
def run_worker():
    """Run the real task worker in a child process until the queue is empty."""

    def run():
        env = {**os.environ, "DATABASE_URL": database_url()}
        completed = subprocess.run(
            [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        return completed

    return run


def assert_status(response, expected):
    """Assert an HTTP status and show the body when it differs."""
    assert response.status_code == expected, (
        f"expected {expected}, got {response.status_code}: {response.text[:2000]}"
    )
