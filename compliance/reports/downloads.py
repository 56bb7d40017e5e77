"""Audit records and headers shared by every report download, for the pages and the API."""

import base64

from django.http import FileResponse

from compliance.audit.models import AuditAction
from compliance.audit.services import record_request_event
from compliance.reports.pdf import ensure_pdf


def record_report_download(request, report, file_format):
    """Record in the audit trail that the caller of ``request`` downloaded ``report``."""
    record_request_event(
        request,
        AuditAction.EXPORT_DOWNLOADED,
        target=report,
        details={"report_id": report.public_id, "format": file_format, "digest": report.digest},
    )


def set_report_headers(response, report, content_sha256=None):
    """Set the headers that tie a download of ``report`` to the report, and return ``response``.

    Every report download carries ``X-Report-Digest`` (the report's digest)
    and ``Cache-Control: private, no-cache``. ``content_sha256`` is the hex
    SHA-256 of the response body. When given, it is sent as
    ``X-Content-SHA256``, as the ``ETag`` and as an RFC 9530 ``Repr-Digest``.
    The CSV and XLSX exports are streamed, so they pass none.
    """
    response["X-Report-Digest"] = report.digest
    response["Cache-Control"] = "private, no-cache"
    if content_sha256:
        encoded = base64.b64encode(bytes.fromhex(content_sha256)).decode()
        response["X-Content-SHA256"] = content_sha256
        response["ETag"] = f'"{content_sha256}"'
        response["Repr-Digest"] = f"sha-256=:{encoded}:"
    return response


def pdf_filename(report):
    """Return the download name: the public id with ``-`` for ``:``, which Windows rejects."""
    return report.public_id.replace(":", "-") + ".pdf"


def pdf_download(request, report):
    """Store the PDF of a ready ``report`` if needed, record the download and return the file.

    The file is rendered once and then served from storage, so its SHA-256
    is known before the body is sent.
    """
    ensure_pdf(report, request)
    record_request_event(
        request,
        AuditAction.PDF_DOWNLOADED,
        target=report,
        details={"report_id": report.public_id, "pdf_sha256": report.pdf_sha256},
    )
    response = FileResponse(
        report.pdf.open("rb"),
        as_attachment=True,
        filename=pdf_filename(report),
        content_type="application/pdf",
    )
    return set_report_headers(response, report, report.pdf_sha256)
