"""Every report download carries the same headers in the pages and the API.

The PDF and OSCAL bodies are known before they are sent, so those also
carry their SHA-256. The CSV and XLSX exports are streamed and carry the
report digest alone.
"""

import base64
import datetime as dt
import hashlib

import pytest
from django.urls import reverse
from django.utils import timezone

from compliance.catalog.models import Severity
from compliance.checks.models import FindingStatus
from compliance.reports.models import ReportStatus
from compliance.reports.services import request_report
from compliance.tenancy.models import Role
from tests.conftest import make_check

# (URL name in the pages, URL name in the API, whether the body's SHA-256 is sent)
DOWNLOADS = [
    ("web:report-pdf", "api:report-pdf", True),
    ("web:report-oscal", "api:report-oscal", True),
    ("web:report-export-csv", "api:report-findings-csv", False),
    ("web:report-export-xlsx", "api:report-findings-xlsx", False),
]


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def report(tenant, entity):
    make_check(
        entity,
        "SOC2",
        timezone.now().replace(microsecond=0) - dt.timedelta(days=1),
        [("CC6.1", FindingStatus.FAIL, Severity.HIGH), ("CC7.2", FindingStatus.PASS, Severity.LOW)],
    )
    today = tenant.today()
    ready = request_report(
        tenant=tenant,
        entity=entity,
        regulation="SOC2",
        period_start=today - dt.timedelta(days=6),
        period_end=today,
    )
    assert ready.status == ReportStatus.READY, ready.error
    return ready


def body_of(response):
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def page_download(client, login_as, report, url_name):
    login_as(Role.AUDITOR)
    return client.get(reverse(url_name, kwargs={"report_id": report.pk}))


def api_download(client, issue_key, tenant, report, url_name):
    key = issue_key(tenant, role=Role.AUDITOR)
    path = reverse(url_name, kwargs={"report_id": report.public_id})
    return client.get(path, headers={"X-API-Key": key})


def assert_report_headers(response, report, sends_sha256):
    body = body_of(response)
    assert response.status_code == 200, body[:500]
    assert response["X-Report-Digest"] == report.digest
    assert response["Cache-Control"] == "private, no-cache"
    if not sends_sha256:
        assert "X-Content-SHA256" not in response
        return

    sha256 = hashlib.sha256(body).hexdigest()
    encoded = base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert response["X-Content-SHA256"] == sha256
    assert response["ETag"] == f'"{sha256}"'
    assert response["Repr-Digest"] == f"sha-256=:{encoded}:"


@pytest.mark.django_db
@pytest.mark.parametrize(("page_name", "api_name", "sends_sha256"), DOWNLOADS)
def test_page_download_headers(client, login_as, report, page_name, api_name, sends_sha256):
    response = page_download(client, login_as, report, page_name)
    assert_report_headers(response, report, sends_sha256)


@pytest.mark.django_db
@pytest.mark.parametrize(("page_name", "api_name", "sends_sha256"), DOWNLOADS)
def test_api_download_headers(client, issue_key, tenant, report, page_name, api_name, sends_sha256):
    response = api_download(client, issue_key, tenant, report, api_name)
    assert_report_headers(response, report, sends_sha256)


@pytest.mark.django_db
@pytest.mark.parametrize(("page_name", "api_name", "sends_sha256"), DOWNLOADS)
def test_page_and_api_headers_match(
    client, login_as, issue_key, tenant, report, page_name, api_name, sends_sha256
):
    names = ["X-Report-Digest", "X-Content-SHA256", "ETag", "Repr-Digest", "Cache-Control"]
    from_api = api_download(client, issue_key, tenant, report, api_name)
    body_of(from_api)
    from_page = page_download(client, login_as, report, page_name)
    body_of(from_page)

    for name in names:
        assert from_page.get(name) == from_api.get(name), name
