"""Optional PAdES signatures of report PDFs with pyHanko.

When ``PDF_SIGNING_KEY`` names a key file, every stored report PDF gets an
invisible PAdES B-B signature (CMS with the signing certificate, SHA-256,
no timestamp) appended as an incremental update. The rendered bytes stay
unchanged in front of the signature, so the PDF/A-3b metadata, the
attached ``report.json`` and the pages are kept, and the stored SHA-256 is
over the signed file.

The key is a PEM private key with its certificate in ``PDF_SIGNING_CERT``
(further PEM certificates in that file are embedded as the chain), or a
PKCS#12 bundle that contains both. ``PDF_SIGNING_PASSPHRASE`` decrypts
either. ``check_signing_settings`` loads them at startup as a Django system
check, so a missing file or a wrong passphrase stops the service before
the first render.
"""

import datetime as dt
import functools
import io
import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from django.conf import settings
from django.core import checks

logger = logging.getLogger(__name__)

SIGNATURE_FIELD_NAME = "ReportSignature"
PEM_MARKER = b"-----BEGIN"


class SigningConfigurationError(Exception):
    """Raised when the signing key or certificate cannot be loaded as configured."""


@dataclass(frozen=True)
class SigningMaterial:
    """The loaded private key, the signing certificate and the other certificates of the chain."""

    private_key: object
    certificate: x509.Certificate
    chain: tuple

    @property
    def fingerprint(self):
        """Return the hex SHA-256 of the signing certificate's DER encoding."""
        return self.certificate.fingerprint(hashes.SHA256()).hex()


def signing_enabled():
    return bool(settings.PDF_SIGNING_KEY)


def load_signing_material(key_path, cert_path, passphrase):
    """Load and cross-check the key and certificate, or raise ``SigningConfigurationError``.

    ``key_path`` is a PEM private key, which needs ``cert_path``, or a
    PKCS#12 bundle, for which ``cert_path`` is optional and adds chain
    certificates. The message names the setting and the file to fix.
    """
    password = passphrase.encode() if passphrase else None
    key_bytes = _read(key_path, "PDF_SIGNING_KEY")

    if key_bytes.lstrip().startswith(PEM_MARKER):
        if not cert_path:
            raise SigningConfigurationError(
                f"PDF_SIGNING_KEY {key_path} is a PEM key, so PDF_SIGNING_CERT must name "
                "the PEM file of its certificate."
            )
        private_key = _load_pem_key(key_bytes, password, key_path)
        certificates = _load_pem_certificates(_read(cert_path, "PDF_SIGNING_CERT"), cert_path)
    else:
        private_key, certificates = _load_pkcs12(key_bytes, password, key_path)
        if cert_path:
            certificates += _load_pem_certificates(_read(cert_path, "PDF_SIGNING_CERT"), cert_path)

    signer_certificate = _certificate_of(private_key, certificates, key_path)
    chain = tuple(cert for cert in certificates if cert is not signer_certificate)
    return SigningMaterial(private_key, signer_certificate, chain)


def _read(path, setting):
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SigningConfigurationError(
            f"{setting} names {path}, which cannot be read: {exc.strerror}."
        ) from exc


def _load_pem_key(key_bytes, password, key_path):
    try:
        return serialization.load_pem_private_key(key_bytes, password=password)
    except TypeError as exc:
        # cryptography raises TypeError when a passphrase is missing or not needed.
        raise SigningConfigurationError(
            f"The private key in {key_path} could not be loaded: {exc}. "
            "Set PDF_SIGNING_PASSPHRASE to its passphrase, or leave it empty for a "
            "key without one."
        ) from exc
    except ValueError as exc:
        raise SigningConfigurationError(
            f"The private key in {key_path} could not be loaded: the passphrase in "
            "PDF_SIGNING_PASSPHRASE is wrong or the file is not a valid PEM key."
        ) from exc


def _load_pem_certificates(cert_bytes, cert_path):
    try:
        certificates = x509.load_pem_x509_certificates(cert_bytes)
    except ValueError as exc:
        raise SigningConfigurationError(
            f"PDF_SIGNING_CERT {cert_path} contains no valid PEM certificate."
        ) from exc
    return list(certificates)


def _load_pkcs12(key_bytes, password, key_path):
    try:
        private_key, certificate, extra = pkcs12.load_key_and_certificates(key_bytes, password)
    except ValueError as exc:
        raise SigningConfigurationError(
            f"The PKCS#12 file {key_path} could not be loaded: the passphrase in "
            "PDF_SIGNING_PASSPHRASE is wrong or the file is neither PKCS#12 nor PEM."
        ) from exc
    if private_key is None:
        raise SigningConfigurationError(f"The PKCS#12 file {key_path} contains no private key.")
    certificates = [certificate] if certificate is not None else []
    return private_key, certificates + list(extra)


def _certificate_of(private_key, certificates, key_path):
    """Return the certificate whose public key belongs to ``private_key``."""
    public = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for certificate in certificates:
        candidate = certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if candidate == public:
            return certificate
    raise SigningConfigurationError(
        f"No certificate in PDF_SIGNING_CERT (or in {key_path}) belongs to the private key "
        f"in {key_path}. Name the certificate that was issued for this key."
    )


@functools.cache
def _configured_material(key_path, cert_path, passphrase):
    return load_signing_material(key_path, cert_path, passphrase)


def configured_material():
    """Return the ``SigningMaterial`` of the settings, loaded once per process."""
    return _configured_material(
        settings.PDF_SIGNING_KEY, settings.PDF_SIGNING_CERT, settings.PDF_SIGNING_PASSPHRASE
    )


@functools.cache
def metadata_preserving_writer_class():
    """Return an incremental writer that leaves the document information and XMP as they are.

    pyHanko 0.38 otherwise appends itself to ``/Producer``, sets
    ``/ModDate`` and rewrites the XMP stream, so the information dictionary
    and the XMP packet would disagree, which PDF/A forbids. pyHanko is
    imported here, on the first signature, because importing it takes about
    0.3 s and most deployments never sign.
    NOTE: this overrides a private method of the pinned pyHanko version.
    """
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    class MetadataPreservingWriter(IncrementalPdfFileWriter):
        def _update_meta(self):
            return None

    return MetadataPreservingWriter


def sign_pdf(pdf, material, *, reason):
    """Return ``pdf`` with an invisible PAdES B-B signature appended as an incremental update."""
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from pyhanko.sign import fields, signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    signer = signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(
            material.certificate.public_bytes(serialization.Encoding.DER)
        ),
        signing_key=asn1_keys.PrivateKeyInfo.load(
            material.private_key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        ),
        cert_registry=SimpleCertificateStore.from_certs(
            [
                asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
                for cert in material.chain
            ]
        ),
    )
    metadata = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD_NAME,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason,
    )
    writer = metadata_preserving_writer_class()(io.BytesIO(pdf))
    output = signers.sign_pdf(
        writer,
        metadata,
        signer=signer,
        new_field_spec=fields.SigFieldSpec(sig_field_name=SIGNATURE_FIELD_NAME),
    )
    signed = output.getvalue()
    logger.info(
        "signed a PDF of %d bytes with certificate %s (%s)",
        len(pdf),
        material.fingerprint,
        material.certificate.subject.rfc4514_string(),
    )
    return signed


def check_signing_settings(app_configs=None, **kwargs):
    """Report a signing key or certificate that cannot be loaded, as a startup error.

    Without ``PDF_SIGNING_KEY`` there is nothing to check. An expired or
    not yet valid certificate is a warning, because signing still works but
    validators reject the signature.
    """
    if not settings.PDF_SIGNING_KEY:
        if settings.PDF_SIGNING_CERT:
            return [
                checks.Error(
                    "PDF_SIGNING_CERT is set but PDF_SIGNING_KEY is empty.",
                    hint="Set PDF_SIGNING_KEY to the signing key, or unset PDF_SIGNING_CERT.",
                    id="reports.E001",
                )
            ]
        return []

    try:
        material = configured_material()
    except SigningConfigurationError as exc:
        return [
            checks.Error(
                f"Report PDFs cannot be signed: {exc}",
                hint="Fix the PDF_SIGNING_* settings, or unset PDF_SIGNING_KEY to store "
                "unsigned PDFs.",
                id="reports.E002",
            )
        ]

    now = dt.datetime.now(dt.UTC)
    certificate = material.certificate
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        return [
            checks.Warning(
                f"The PDF signing certificate {certificate.subject.rfc4514_string()} is valid "
                f"from {certificate.not_valid_before_utc:%Y-%m-%d} to "
                f"{certificate.not_valid_after_utc:%Y-%m-%d}, not now.",
                hint="Validators will reject new signatures. Install a current certificate.",
                id="reports.W001",
            )
        ]
    return []
