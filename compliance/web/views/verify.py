"""The PDF verification page, which checks whether this system issued an uploaded PDF.

An auditor uploads a report PDF. The page computes the file's SHA-256 while
the upload streams in and compares it with the ``pdf_sha256`` of the
tenant's ready reports. The file itself is never stored, not even in a
temporary file, because only its digest is needed.
"""

import hashlib
import io
import logging

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopFutureHandlers, StopUpload
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from compliance.audit.models import AuditAction, AuditOutcome
from compliance.audit.services import record_request_event
from compliance.reports.models import Report, ReportStatus
from compliance.web.access import TenantRoleMixin

logger = logging.getLogger(__name__)

TEMPLATE = "web/verify/verify.html"
# A PDF file starts with this header and its version, such as %PDF-1.7.
PDF_HEADER = b"%PDF-"


class HashedUpload(UploadedFile):
    """An uploaded file reduced to its name, size, SHA-256 and first bytes, without the rest."""

    def __init__(self, name, content_type, size, sha256, header):
        super().__init__(file=io.BytesIO(), name=name, content_type=content_type, size=size)
        self.sha256 = sha256
        self.header = header

    @property
    def is_pdf(self):
        return self.header.startswith(PDF_HEADER)


class Sha256UploadHandler(FileUploadHandler):
    """Hash each uploaded file as it arrives and keep only the digest and the size.

    ``new_file`` stops Django's default handlers, so no file lands in memory or
    in a temporary file. A file over ``max_bytes`` stops the upload: Django
    reads and discards the rest of the body, and ``too_large`` is set.
    """

    def __init__(self, request, max_bytes):
        super().__init__(request)
        self.max_bytes = max_bytes
        self.too_large = False
        self.hasher = None
        self.received = 0
        self.header = b""

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.hasher = hashlib.sha256()
        self.received = 0
        self.header = b""
        raise StopFutureHandlers()

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.max_bytes:
            self.too_large = True
            raise StopUpload(connection_reset=False)

        self.hasher.update(raw_data)
        if len(self.header) < len(PDF_HEADER):
            self.header += raw_data[: len(PDF_HEADER) - len(self.header)]
        # Returning None keeps the chunk from any later handler.
        return None

    def file_complete(self, file_size):
        return HashedUpload(
            self.file_name, self.content_type, file_size, self.hasher.hexdigest(), self.header
        )


class VerifyPdfForm(forms.Form):
    """One uploaded file. The size check happens in the upload handler, before this form."""

    pdf = forms.FileField(
        label="Report PDF",
        required=False,
        widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,.pdf"}),
    )

    def __init__(self, *args, max_bytes, upload_too_large=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_bytes = max_bytes
        self.upload_too_large = upload_too_large
        self.fields["pdf"].help_text = (
            f"At most {format_size(max_bytes)}. The file is not stored, only its "
            "SHA-256 is computed."
        )

    def clean_pdf(self):
        if self.upload_too_large:
            raise ValidationError(
                f"The file is larger than {format_size(self.max_bytes)}, the upload "
                "limit, so it was not checked. Report PDFs are much smaller: choose the PDF "
                "as it was downloaded.",
                code="too_large",
            )
        upload = self.cleaned_data.get("pdf")
        if not upload:
            raise ValidationError("Choose a PDF file to verify.", code="required")
        if not upload.is_pdf:
            raise ValidationError(
                f"{upload.name} is not a PDF file, because it does not start with "
                f"{PDF_HEADER.decode()}, so it was not checked. Choose the report PDF as it "
                "was downloaded.",
                code="not_pdf",
            )
        return upload


def format_size(size):
    """Format a byte count as whole MiB when it is a multiple of one MiB, else in bytes."""
    mebibyte = 1024 * 1024
    if size % mebibyte == 0:
        return f"{size // mebibyte} MiB"
    return f"{size} bytes"


def find_report(tenant, sha256):
    """Return the tenant's ready report whose stored PDF has this SHA-256, or ``None``."""
    return (
        Report.objects.for_tenant(tenant)
        .filter(status=ReportStatus.READY, pdf_sha256=sha256)
        .select_related("entity")
        .defer("findings", "summary")
        .order_by("created_at", "id")
        .first()
    )


@method_decorator(csrf_exempt, name="dispatch")
class ReportVerifyView(TenantRoleMixin, View):
    """Compare an uploaded PDF's SHA-256 with the tenant's reports. Every role may use it.

    The CSRF check reads the request body, so it runs in ``post`` after the
    hashing upload handler is installed, and the exemption on ``dispatch``
    only postpones it.
    """

    def get(self, request):
        return render_page(request, self.make_form())

    def post(self, request):
        handler = Sha256UploadHandler(request, settings.API_MAX_UPLOAD_BYTES)
        request.upload_handlers = [handler]
        return csrf_protect(self.verify)(request, handler)

    def verify(self, request, handler):
        form = self.make_form(request.POST, request.FILES, upload_too_large=handler.too_large)
        # A rejected file, such as one that is not a PDF, is not a verification and is not
        # recorded in the audit trail.
        if not form.is_valid():
            status = 413 if form.has_error("pdf", "too_large") else 400
            if form.has_error("pdf", "not_pdf"):
                logger.info(
                    "rejected a file that is not a PDF for verification in tenant %s",
                    request.tenant.pk,
                )
            if handler.too_large:
                logger.info(
                    "rejected a PDF over %d bytes for verification in tenant %s",
                    settings.API_MAX_UPLOAD_BYTES,
                    request.tenant.pk,
                )
            return render_page(request, form, status=status)

        upload = form.cleaned_data["pdf"]
        report = find_report(request.tenant, upload.sha256)
        logger.info(
            "user %s verified a %d-byte file with sha256 %s in tenant %s: %s",
            request.user.pk,
            upload.size,
            upload.sha256,
            request.tenant.pk,
            report.public_id if report else "no matching report",
        )
        record_request_event(
            request,
            AuditAction.PDF_VERIFIED,
            target=report,
            outcome=AuditOutcome.SUCCESS if report else AuditOutcome.FAILURE,
            details={
                "pdf_sha256": upload.sha256,
                "size": upload.size,
                "report_id": report.public_id if report else None,
            },
        )
        result = {"sha256": upload.sha256, "size": upload.size, "report": report}
        return render_page(request, self.make_form(), result=result)

    def make_form(self, *args, **kwargs):
        return VerifyPdfForm(*args, max_bytes=settings.API_MAX_UPLOAD_BYTES, **kwargs)


def render_page(request, form, *, result=None, status=200):
    return render(request, TEMPLATE, {"form": form, "result": result}, status=status)
