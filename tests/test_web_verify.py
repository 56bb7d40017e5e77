"""The PDF verification page: matches, mismatches, tenancy, upload limit and CSRF."""

import datetime as dt
import hashlib
import io
import re

import pytest
from django.core.files.uploadedfile import (
    InMemoryUploadedFile,
    SimpleUploadedFile,
    TemporaryUploadedFile,
)
from django.test import Client
from django.urls import reverse

from compliance.audit.models import AuditEvent
from compliance.reports.pdf import ensure_pdf
from compliance.reports.services import request_report
from compliance.tenancy.models import Role
from compliance.web.views.verify import Sha256UploadHandler

VERIFY_URL = "/reports/verify/"
NO_MATCH = (
    "No report of this tenant has this PDF's SHA-256; it was not issued by this system "
    "or it was changed."
)
MIB = 1024 * 1024


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def issued_pdf(tenant, entity):
    """Generate a report, store its PDF and return ``(report, pdf bytes)``."""
    today = tenant.today()
    report = request_report(
        tenant=tenant,
        entity=entity,
        regulation="SOC2",
        period_start=today - dt.timedelta(days=6),
        period_end=today,
    )
    ensure_pdf(report)
    with report.pdf.open("rb") as handle:
        return report, handle.read()


def upload(client, content, name="report.pdf"):
    file = SimpleUploadedFile(name, content, content_type="application/pdf")
    return client.post(VERIFY_URL, {"pdf": file})


def page_text(response):
    """Return the page's HTML with runs of whitespace collapsed, for sentence matching."""
    return re.sub(r"\s+", " ", response.content.decode())


@pytest.mark.django_db
class TestVerifyPage:
    def test_url_name(self):
        assert reverse("web:report-verify") == VERIFY_URL

    @pytest.mark.parametrize("role", [Role.AUDITOR, Role.OFFICER, Role.ADMIN])
    def test_form_for_every_role(self, client, login_as, role):
        login_as(role)

        response = client.get(VERIFY_URL)

        assert response.status_code == 200
        html = response.content.decode()
        assert 'enctype="multipart/form-data"' in html
        assert 'type="file"' in html
        assert 'aria-current="page">Verify PDF</a>' in html

    def test_nav_links_page(self, client, login_as):
        login_as(Role.AUDITOR)

        response = client.get(reverse("web:report-list"))

        assert f'href="{VERIFY_URL}"' in response.content.decode()

    def test_anonymous_redirected(self, client):
        response = client.get(VERIFY_URL)

        assert response.status_code == 302
        assert response["Location"].startswith(reverse("web:login"))

    def test_page_within_csp(self, client, login_as):
        login_as(Role.AUDITOR)

        response = client.get(VERIFY_URL)

        html = response.content.decode()
        assert "script-src 'self'" in response["Content-Security-Policy"]
        assert " style=" not in html
        assert not re.search(r'<script(?![^>]*\ssrc="/static/)', html), "inline script"


@pytest.mark.django_db
class TestVerifyUpload:
    def test_issued_pdf_matches(self, client, login_as, tenant, entity, media_root):
        report, pdf_bytes = issued_pdf(tenant, entity)
        login_as(Role.AUDITOR)

        response = upload(client, pdf_bytes)

        assert response.status_code == 200
        text = page_text(response)
        issued = report.generated_at.astimezone(tenant.zone).strftime("%Y-%m-%d %H:%M")
        assert (
            f'This PDF is report <span class="mono">{report.public_id}</span> issued on '
            f"{issued} (Europe/Berlin) for Claims triage agent" in text
        )
        assert f'(digest <span class="mono digest">{report.digest}</span>)' in text
        assert hashlib.sha256(pdf_bytes).hexdigest() == report.pdf_sha256
        assert report.pdf_sha256 in text
        assert NO_MATCH not in text
        event = AuditEvent.objects.get(action="pdf_verified")
        assert event.outcome == "success"
        assert event.details["report_id"] == report.public_id

    def test_changed_byte_does_not_match(self, client, login_as, tenant, entity, media_root):
        report, pdf_bytes = issued_pdf(tenant, entity)
        changed = bytearray(pdf_bytes)
        changed[len(changed) // 2] ^= 0x01
        login_as(Role.AUDITOR)

        response = upload(client, bytes(changed))

        assert response.status_code == 200
        text = page_text(response)
        assert NO_MATCH in text
        assert report.public_id not in text
        assert hashlib.sha256(bytes(changed)).hexdigest() in text
        event = AuditEvent.objects.get(action="pdf_verified")
        assert event.outcome == "failure"
        assert event.details["pdf_sha256"] == hashlib.sha256(bytes(changed)).hexdigest()

    def test_other_tenant_pdf_does_not_match(
        self, client, login_as, entity, other_tenant, other_entity, media_root
    ):
        other_report, pdf_bytes = issued_pdf(other_tenant, other_entity)
        login_as(Role.ADMIN)

        response = upload(client, pdf_bytes)

        assert response.status_code == 200
        text = page_text(response)
        assert NO_MATCH in text
        assert other_report.public_id not in text

    def test_missing_file_rejected(self, client, login_as):
        login_as(Role.AUDITOR)

        response = client.post(VERIFY_URL, {})

        assert response.status_code == 400
        assert "Choose a PDF file to verify." in response.content.decode()

    def test_empty_file_rejected(self, client, login_as):
        login_as(Role.AUDITOR)

        response = upload(client, b"")

        assert response.status_code == 400
        assert "The submitted file is empty." in response.content.decode()

    def test_oversize_rejected(self, client, login_as, settings):
        assert settings.API_MAX_UPLOAD_BYTES == 20 * MIB
        login_as(Role.AUDITOR)

        response = upload(client, b"%PDF-" + b"\0" * (20 * MIB - 4))

        assert response.status_code == 413
        text = page_text(response)
        assert "The file is larger than 20 MiB, the upload limit, so it was not checked." in text
        assert NO_MATCH not in text

    def test_limit_is_inclusive(self, client, login_as, settings):
        settings.API_MAX_UPLOAD_BYTES = 1024
        login_as(Role.AUDITOR)

        at_limit = upload(client, b"%PDF-" + b"x" * 1019)
        over_limit = upload(client, b"%PDF-" + b"x" * 1020)

        assert at_limit.status_code == 200
        assert NO_MATCH in page_text(at_limit)
        assert over_limit.status_code == 413
        assert "The file is larger than 1024 bytes, the upload limit" in page_text(over_limit)

    def test_csv_rejected_as_not_pdf(self, client, login_as):
        login_as(Role.AUDITOR)

        response = upload(client, b"control_id,status\nCC6.1,fail\n", name="findings.csv")

        assert response.status_code == 400
        text = page_text(response)
        assert "findings.csv is not a PDF file, because it does not start with %PDF-" in text
        assert "this PDF" not in text
        assert NO_MATCH not in text
        assert not AuditEvent.objects.filter(action="pdf_verified").exists()

    def test_pdf_header_split_across_chunks(self):
        handler = Sha256UploadHandler(None, max_bytes=1024)
        handler.file_name, handler.content_type = "report.pdf", "application/pdf"
        handler.hasher = hashlib.sha256()

        for chunk in (b"%P", b"D", b"F-1.7\n", b"%%EOF\n"):
            handler.receive_data_chunk(chunk, 0)
        hashed = handler.file_complete(18)

        assert hashed.header == b"%PDF-"
        assert hashed.is_pdf

    def test_upload_never_stored(self, client, login_as, settings, monkeypatch):
        """Neither Django's in-memory nor its temporary-file upload is ever created."""
        settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0
        created = []

        def record(kind):
            def reject_creation(self, *args, **kwargs):
                created.append(kind)
                raise AssertionError(f"a {kind} upload was created")

            return reject_creation

        monkeypatch.setattr(TemporaryUploadedFile, "__init__", record("temporary"))
        monkeypatch.setattr(InMemoryUploadedFile, "__init__", record("in-memory"))
        login_as(Role.AUDITOR)

        response = client.post(VERIFY_URL, {"pdf": open_fixture_pdf()})

        assert response.status_code == 200
        assert created == []
        assert hashlib.sha256(FIXTURE_PDF).hexdigest() in page_text(response)


FIXTURE_PDF = b"%PDF-1.7\n% not a real report\n%%EOF\n"


def open_fixture_pdf():
    """Return a file to upload that is not a SimpleUploadedFile, which the test patches."""
    handle = io.BytesIO(FIXTURE_PDF)
    handle.name = "fixture.pdf"
    return handle


@pytest.mark.django_db
class TestVerifyCsrf:
    def test_post_without_token_forbidden(self, make_member):
        csrf_client = Client(enforce_csrf_checks=True)
        csrf_client.force_login(make_member(Role.AUDITOR))

        response = upload(csrf_client, FIXTURE_PDF)

        assert response.status_code == 403
        assert NO_MATCH not in page_text(response)

    def test_post_with_token_allowed(self, make_member):
        csrf_client = Client(enforce_csrf_checks=True)
        csrf_client.force_login(make_member(Role.AUDITOR))
        form = csrf_client.get(VERIFY_URL)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.content.decode())

        file = SimpleUploadedFile("report.pdf", FIXTURE_PDF, content_type="application/pdf")
        response = csrf_client.post(
            VERIFY_URL, {"csrfmiddlewaretoken": token.group(1), "pdf": file}
        )

        assert response.status_code == 200
        assert NO_MATCH in page_text(response)
