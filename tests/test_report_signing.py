"""PAdES signatures of report PDFs, checked with pyHanko's validator against a test CA.

The CA and the signing certificate are generated for each test session with
``cryptography``, so no key material is stored in the repository. The
validator never fetches revocation data, because the certificates name no
URLs and fetching is off.
"""

import datetime as dt
import hashlib
import io

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from compliance.audit.models import AuditAction, AuditEvent
from compliance.reports import pdf as report_pdf
from compliance.reports import signing
from compliance.tenancy.models import Role
from tests import test_report_pdf_filing as filing
from tests.test_report_pdf import build_history, make_report
from tests.test_report_pdf_filing import add_mixed_sources, clinic, media_root  # noqa: F401
from tests.test_web_verify import NO_MATCH, page_text, upload

PASSPHRASE = "correct horse battery staple"


def name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def certificate(subject, issuer, public_key, issuer_key, *, ca, days=30):
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    else:
        usage = x509.KeyUsage(True, True, False, False, False, False, False, False, False)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
    builder = builder.add_extension(usage, critical=True)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="session")
def authority():
    """Return ``(CA certificate, signer key, signer certificate)`` for one test session."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = certificate(
        name("Test Compliance CA"), name("Test Compliance CA"), ca_key.public_key(), ca_key, ca=True
    )
    signer_key = ec.generate_private_key(ec.SECP256R1())
    signer_cert = certificate(
        name("Report signing"), ca_cert.subject, signer_key.public_key(), ca_key, ca=False
    )
    return ca_cert, signer_key, signer_cert


def pem_files(tmp_path, authority, *, passphrase=PASSPHRASE):
    ca_cert, signer_key, signer_cert = authority
    key_path = tmp_path / "signing-key.pem"
    cert_path = tmp_path / "signing-cert.pem"
    encryption = serialization.BestAvailableEncryption(passphrase.encode())
    key_path.write_bytes(
        signer_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
    )
    cert_path.write_bytes(
        signer_cert.public_bytes(serialization.Encoding.PEM)
        + ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    return key_path, cert_path


def pkcs12_file(tmp_path, authority):
    ca_cert, signer_key, signer_cert = authority
    path = tmp_path / "signing.p12"
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"report signing",
            signer_key,
            signer_cert,
            [ca_cert],
            serialization.BestAvailableEncryption(PASSPHRASE.encode()),
        )
    )
    return path


@pytest.fixture
def signing_settings(settings, tmp_path, authority):
    key_path, cert_path = pem_files(tmp_path, authority)
    settings.PDF_SIGNING_KEY = str(key_path)
    settings.PDF_SIGNING_CERT = str(cert_path)
    settings.PDF_SIGNING_PASSPHRASE = PASSPHRASE
    return settings


def validate(pdf_bytes, ca_cert):
    """Return pyHanko's validation status of the PDF's only signature, trusting ``ca_cert``."""
    reader = PdfFileReader(io.BytesIO(pdf_bytes))
    (embedded,) = reader.embedded_signatures
    context = ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(ca_cert.public_bytes(serialization.Encoding.DER))],
        allow_fetching=False,
    )
    return validate_pdf_signature(embedded, context)


def stored_bytes(report):
    report.refresh_from_db()
    with report.pdf.open("rb") as handle:
        return handle.read()


@pytest.fixture
def signing_run(clinic, media_root, signing_settings, monkeypatch):  # noqa: F811
    """Return a ready report, its stored signed PDF and the unsigned bytes that were signed.

    The unsigned bytes are captured from the render, because rendering again
    need not give the same bytes: PostgreSQL's jsonb reorders the keys of the
    stored summary, which changes the attached ``report.json``.
    """
    tenant, entity = clinic
    build_history(entity)
    add_mixed_sources(entity)
    report = make_report(tenant, entity)
    rendered = []
    render = report_pdf.render_pdf

    def capturing_render(target):
        rendered.append(render(target))
        return rendered[-1]

    monkeypatch.setattr(report_pdf, "render_pdf", capturing_render)
    report_pdf.ensure_pdf(report)
    return report, stored_bytes(report), rendered[0]


@pytest.fixture
def signed(signing_run):
    """Return a ready report and its stored, signed PDF."""
    report, pdf_bytes, _ = signing_run
    return report, pdf_bytes


@pytest.mark.django_db
class TestSignedPdf:
    def test_signature_validates(self, signed, authority):
        _, pdf_bytes = signed

        status = validate(pdf_bytes, authority[0])

        assert status.intact
        assert status.valid
        assert status.trusted
        assert status.bottom_line
        assert status.coverage.name == "ENTIRE_FILE"

    def test_signature_is_pades(self, signed):
        _, pdf_bytes = signed
        reader = PdfFileReader(io.BytesIO(pdf_bytes))

        (embedded,) = reader.embedded_signatures

        assert embedded.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
        assert embedded.field_name == signing.SIGNATURE_FIELD_NAME

    def test_signature_is_invisible(self, signed):
        _, pdf_bytes = signed
        reader = PdfFileReader(io.BytesIO(pdf_bytes))

        (embedded,) = reader.embedded_signatures

        rectangle = [float(value) for value in embedded.sig_field["/Rect"]]
        assert rectangle == [0.0, 0.0, 0.0, 0.0]

    def test_rendered_bytes_kept(self, signing_run):
        _, pdf_bytes, unsigned = signing_run

        # The signature is an incremental update appended to the rendered file.
        assert pdf_bytes.startswith(unsigned)
        assert len(pdf_bytes) > len(unsigned)
        assert filing.embedded_json(filing.reader_of(pdf_bytes)) == filing.embedded_json(
            filing.reader_of(unsigned)
        )

    def test_stored_sha256_covers_signature(self, signed):
        report, pdf_bytes = signed

        assert report.pdf_sha256 == hashlib.sha256(pdf_bytes).hexdigest()

    def test_audit_event_names_certificate(self, signed, authority):
        report, _ = signed
        fingerprint = authority[2].fingerprint(hashes.SHA256()).hex()

        event = AuditEvent.objects.get(action=AuditAction.PDF_RENDERED, target_id=str(report.pk))

        assert event.details["signed"] is True
        assert event.details["signing_certificate_sha256"] == fingerprint
        assert event.details["pdf_sha256"] == report.pdf_sha256

    def test_changed_byte_breaks_signature(self, signed, authority):
        _, pdf_bytes = signed
        # Flip one byte inside the first stream, so the file still parses.
        position = pdf_bytes.index(b"stream\n") + len(b"stream\n") + 10
        flipped = bytes([pdf_bytes[position] ^ 0x01])
        tampered = pdf_bytes[:position] + flipped + pdf_bytes[position + 1 :]

        status = validate(tampered, authority[0])

        assert not status.intact

    def test_verification_matches_signed_file(self, signed, client, issue_key):
        report, pdf_bytes = signed
        key = issue_key(report.tenant)

        response = client.get(
            f"/v1/compliance/reports/{report.public_id}/verification", headers={"X-API-Key": key}
        )

        assert response.status_code == 200
        assert response.json()["pdf_sha256"] == hashlib.sha256(pdf_bytes).hexdigest()

    def test_verify_page_matches_signed_file(self, signed, client, login_as):
        report, pdf_bytes = signed
        login_as(Role.AUDITOR, member_of=report.tenant)

        matched = upload(client, pdf_bytes)
        unsigned = upload(client, report_pdf.render_pdf(report))

        assert report.public_id in page_text(matched)
        assert NO_MATCH not in page_text(matched)
        assert NO_MATCH in page_text(unsigned)


class TestSignedPdfA(filing.TestPdfA):
    """The PDF/A-3b checks of the unsigned file, run on the signed one."""

    @pytest.fixture
    def filed(self, signed):
        return signed

    def test_header_and_identifier(self, signing_run):
        _, pdf_bytes, unsigned_bytes = signing_run
        reader = filing.reader_of(pdf_bytes)
        unsigned = filing.reader_of(unsigned_bytes)

        identifier = reader.trailer["/ID"]

        assert pdf_bytes.startswith(b"%PDF-1.7\n")
        assert not reader.is_encrypted
        assert len(identifier) == 2
        # An update keeps the first part, which identifies the document, and changes the second.
        assert identifier[0] == unsigned.trailer["/ID"][0]


@pytest.mark.django_db
def test_pkcs12_bundle_signs(clinic, media_root, settings, tmp_path, authority):  # noqa: F811
    settings.PDF_SIGNING_KEY = str(pkcs12_file(tmp_path, authority))
    settings.PDF_SIGNING_CERT = ""
    settings.PDF_SIGNING_PASSPHRASE = PASSPHRASE
    tenant, entity = clinic
    report = make_report(tenant, entity)

    report_pdf.ensure_pdf(report)

    assert validate(stored_bytes(report), authority[0]).bottom_line


@pytest.mark.django_db
def test_unsigned_without_setting(clinic, media_root, settings):  # noqa: F811
    settings.PDF_SIGNING_KEY = ""
    tenant, entity = clinic
    report = make_report(tenant, entity)

    report_pdf.ensure_pdf(report)

    reader = PdfFileReader(io.BytesIO(stored_bytes(report)))
    assert list(reader.embedded_signatures) == []
    event = AuditEvent.objects.get(action=AuditAction.PDF_RENDERED, target_id=str(report.pk))
    assert event.details["signed"] is False


class TestSystemCheck:
    def error_ids(self):
        return [message.id for message in signing.check_signing_settings()]

    def test_valid_settings_pass(self, signing_settings):
        assert self.error_ids() == []

    def test_no_setting_passes(self, settings):
        settings.PDF_SIGNING_KEY = ""
        settings.PDF_SIGNING_CERT = ""

        assert self.error_ids() == []

    def test_missing_key_file(self, signing_settings, tmp_path):
        signing_settings.PDF_SIGNING_KEY = str(tmp_path / "absent.pem")

        (message,) = signing.check_signing_settings()

        assert message.id == "reports.E002"
        assert "absent.pem, which cannot be read" in message.msg

    def test_wrong_passphrase(self, signing_settings):
        signing_settings.PDF_SIGNING_PASSPHRASE = "wrong"

        (message,) = signing.check_signing_settings()

        assert message.id == "reports.E002"
        assert "passphrase in PDF_SIGNING_PASSPHRASE is wrong" in message.msg

    def test_missing_passphrase(self, signing_settings):
        signing_settings.PDF_SIGNING_PASSPHRASE = ""

        (message,) = signing.check_signing_settings()

        assert message.id == "reports.E002"
        assert "Set PDF_SIGNING_PASSPHRASE" in message.msg

    def test_pkcs12_wrong_passphrase(self, settings, tmp_path, authority):
        settings.PDF_SIGNING_KEY = str(pkcs12_file(tmp_path, authority))
        settings.PDF_SIGNING_CERT = ""
        settings.PDF_SIGNING_PASSPHRASE = "wrong"

        (message,) = signing.check_signing_settings()

        assert message.id == "reports.E002"
        assert "PKCS#12" in message.msg

    def test_certificate_of_other_key(self, signing_settings, tmp_path):
        other_key = ec.generate_private_key(ec.SECP256R1())
        other = certificate(
            name("Other"), name("Other"), other_key.public_key(), other_key, ca=False
        )
        path = tmp_path / "other.pem"
        path.write_bytes(other.public_bytes(serialization.Encoding.PEM))
        signing_settings.PDF_SIGNING_CERT = str(path)

        (message,) = signing.check_signing_settings()

        assert message.id == "reports.E002"
        assert "belongs to the private key" in message.msg

    def test_certificate_without_key(self, settings, tmp_path):
        settings.PDF_SIGNING_KEY = ""
        settings.PDF_SIGNING_CERT = str(tmp_path / "cert.pem")

        assert self.error_ids() == ["reports.E001"]

    def test_check_command_fails(self, signing_settings, tmp_path):
        signing_settings.PDF_SIGNING_KEY = str(tmp_path / "absent.pem")

        with pytest.raises(SystemCheckError, match=r"reports\.E002"):
            call_command("check")
