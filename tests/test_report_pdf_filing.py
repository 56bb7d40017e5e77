"""The filing features of the auditor PDF: methodology appendix, bookmarks, metadata,
the attached JSON and the PDF/A-3b structure that can be checked without a validator."""

import datetime as dt
import hashlib
import io
import json

import pytest
from django.db import transaction
from django.urls import reverse
from pypdf import PdfReader

from compliance.catalog.loader import CATALOG_VERSION
from compliance.catalog.models import Severity
from compliance.checks.models import Check, CheckSource, FindingStatus
from compliance.checks.rollups import record_rollups
from compliance.inventory.models import Entity, EntityType
from compliance.lib.canonical_json import canonical_json
from compliance.reports import pdf as report_pdf
from compliance.tenancy.models import Role, Tenant
from tests.test_report_pdf import (
    PERIOD_START,
    REGULATION,
    add_check,
    at,
    build_history,
    compact,
    make_report,
    page_texts,
)

TOP_LEVEL_BOOKMARKS = [
    "Cover",
    "Executive summary",
    "Findings per control",
    "Controls without evidence",
    "Appendix: methodology",
]
APPENDIX_BOOKMARKS = [
    "Evidence",
    "Versions",
    "Compliance score",
    "Findings at the same instant",
    "Period bounds",
    "Verifying the digest",
]


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def clinic(db):
    tenant = Tenant.objects.create(slug="clinic", name="Klinikum Nord", time_zone="Europe/Berlin")
    entity = Entity.objects.create(
        tenant=tenant, entity_type=EntityType.AGENT, name="Triage assistant"
    )
    return tenant, entity


@transaction.atomic
def add_bare_check(entity, when, source, *, source_name="", rule_set_version="", regulation=None):
    """Create a check without findings: it counts as evidence input but sets no control status."""
    check = Check.objects.create(
        tenant=entity.tenant,
        entity=entity,
        regulation=regulation or REGULATION,
        source=source,
        source_name=source_name,
        catalog_version=CATALOG_VERSION if source == CheckSource.AUTOMATED else "",
        rule_set_version=rule_set_version,
        status="passed",
        created_at=when,
        completed_at=when,
    )
    record_rollups([check], [])
    return check


def add_mixed_sources(entity):
    """Add two automated, three imported and (with build_history) three API checks."""
    add_bare_check(entity, at(1, 8), CheckSource.AUTOMATED, rule_set_version="rules-a")
    add_bare_check(entity, at(12, 8), CheckSource.AUTOMATED, rule_set_version="rules-b")
    add_bare_check(entity, at(3, 8), CheckSource.IMPORTED, source_name="prowler")
    add_bare_check(entity, at(4, 8), CheckSource.IMPORTED, source_name="prowler")
    add_bare_check(entity, at(5, 8), CheckSource.IMPORTED, source_name="garak")
    # Neither of these fed the report: one is before the period, one is another regulation.
    before = at(0, 0) - dt.timedelta(hours=1)
    add_bare_check(entity, before, CheckSource.AUTOMATED, rule_set_version="rules-old")
    add_bare_check(
        entity, at(6, 8), CheckSource.AUTOMATED, rule_set_version="rules-soc2", regulation="SOC2"
    )


@pytest.fixture
def filed(clinic, media_root):
    """Return a ready report with checks from every source, and its rendered PDF."""
    tenant, entity = clinic
    build_history(entity)
    add_mixed_sources(entity)
    report = make_report(tenant, entity)
    return report, report_pdf.render_pdf(report)


def reader_of(pdf_bytes):
    return PdfReader(io.BytesIO(pdf_bytes))


def appendix_text(pdf_bytes):
    """Return the text of the pages from the appendix heading to the end."""
    texts = page_texts(pdf_bytes)
    start = next(index for index, text in enumerate(texts) if "Appendix: methodology" in text)
    return "\n".join(texts[start:])


def outline_entries(reader):
    """Return ``(depth, title, page index)`` for every bookmark, in document order."""
    entries = []

    def walk(items, depth):
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
            else:
                entries.append((depth, item.title, reader.get_destination_page_number(item)))

    walk(reader.outline, 0)
    return entries


def embedded_json(reader):
    files = reader.attachments
    assert list(files) == ["report.json"]
    (content,) = files["report.json"]
    return content


@pytest.mark.django_db
class TestMethodologyAppendix:
    def test_appendix_is_last_section(self, filed):
        _, pdf_bytes = filed

        texts = page_texts(pdf_bytes)

        starts = [index for index, text in enumerate(texts) if "Appendix: methodology" in text]
        assert len(starts) == 1
        missing_pages = [i for i, text in enumerate(texts) if "Controls without evidence" in text]
        assert starts[0] > max(missing_pages)
        assert "Verifying the digest" in "\n".join(texts[starts[0] :])

    def test_counts_checks_by_source(self, filed):
        report, pdf_bytes = filed

        text = compact(appendix_text(pdf_bytes))

        assert report.summary["checks"]["total"] == 8
        assert "8checksofTriageassistantagainstISO/IEC27001:2022werecreated" in text
        assert "Automatedrules2" in text
        assert "Importedscannerresults3" in text
        assert "prowler2" in text
        assert "garak1" in text
        assert "SubmittedthroughtheAPI3" in text
        assert "Total8" in text
        assert "recordedorremovedafterthereportwasgenerated" not in text

    def test_lists_versions_in_period(self, filed):
        _, pdf_bytes = filed

        text = appendix_text(pdf_bytes)

        assert f"version {CATALOG_VERSION} of the ISO/IEC 27001:2022 control catalog" in text
        assert "rules-a" in text
        assert "rules-b" in text
        assert "rules-old" not in text, "a check before the period is not listed"
        assert "rules-soc2" not in text, "a check of another regulation is not listed"

    def test_recorded_versions_need_no_note(self, filed):
        _, pdf_bytes = filed

        text = " ".join(appendix_text(pdf_bytes).split())

        assert "not recorded" not in text
        assert "stored before this product recorded versions" not in text

    def test_unrecorded_versions_explained(self, clinic, media_root):
        tenant, entity = clinic
        build_history(entity)
        old = add_bare_check(entity, at(1, 8), CheckSource.AUTOMATED, rule_set_version="rules-a")
        Check.objects.filter(pk=old.pk).update(catalog_version="", rule_set_version="")
        report = make_report(tenant, entity)

        text = " ".join(appendix_text(report_pdf.render_pdf(report)).split())

        assert "except checks stored before this product recorded versions" in text
        assert "not recorded not recorded 1" in text

    def test_no_automated_check_stated(self, clinic, media_root):
        tenant, entity = clinic
        build_history(entity)
        report = make_report(tenant, entity)

        text = appendix_text(report_pdf.render_pdf(report))

        assert "No automated check ran in the period." in text
        assert "Automated rules 0" in text

    def test_explains_score_with_numbers(self, filed):
        report, pdf_bytes = filed

        text = " ".join(appendix_text(pdf_bytes).split())

        controls = report.summary["controls"]
        score = report.summary["compliance_score"]
        passing, failing = controls["passing"], controls["failing"]
        assert f"This report: {passing} / ({passing} + {failing}) = {score:.1f} %" in text
        assert "passing controls divided by passing plus failing controls" in text
        assert "rounded half up to one decimal" in text
        assert "not applicable leave the denominator" in text
        assert "without evidence in the period is not assessed, never passing" in text
        assert "null in the JSON" in text

    def test_unscored_report_explained(self, clinic, media_root):
        tenant, entity = clinic
        report = make_report(tenant, entity)

        text = " ".join(appendix_text(report_pdf.render_pdf(report)).split())

        assert report.summary["compliance_score"] is None
        assert "no control passed or failed, so the score is not assessed" in text

    def test_states_tie_break_order(self, filed):
        _, pdf_bytes = filed

        text = " ".join(appendix_text(pdf_bytes).split())

        assert "in this order: fail, not assessed, pass, not applicable." in text
        assert "then to the finding stored last" in text

    def test_states_period_bounds(self, filed):
        _, pdf_bytes = filed

        text = " ".join(appendix_text(pdf_bytes).split())

        assert "includes both 2026-03-01 and 2026-03-21 in Europe/Berlin" in text
        assert "starts at 2026-03-01 00:00 and ends before 2026-03-22 00:00 local time" in text
        # Berlin is UTC+1 in winter, so midnight is 23:00 UTC the day before.
        assert "2026-02-28T23:00:00Z (included)" in text
        assert "2026-03-21T23:00:00Z (excluded)" in text

    def test_explains_digest_verification(self, filed):
        report, pdf_bytes = filed

        text = " ".join(appendix_text(pdf_bytes).split())
        flat = compact(text)

        assert "Extract the attachment report.json" in text
        assert "keys sorted, no whitespace between tokens" in text
        assert "UTF-8" in text
        assert 'json.dumps(body,sort_keys=True,separators=(",",":"),ensure_ascii=False)' in flat
        verification = f"/v1/compliance/reports/{report.public_id}/verification"
        assert compact(verification) in flat
        assert "/reports/verify/" in text
        assert "A PDF cannot contain its own SHA-256" in text

    def test_late_check_flagged(self, clinic, media_root):
        tenant, entity = clinic
        build_history(entity)
        report = make_report(tenant, entity)
        add_bare_check(entity, at(7, 8), CheckSource.IMPORTED, source_name="prowler")

        text = " ".join(appendix_text(report_pdf.render_pdf(report)).split())

        assert report.summary["checks"]["total"] == 3
        assert "4 checks of Triage assistant" in text
        assert "The summary counts 3 checks, but 4 are in the period now" in text
        assert "recorded or removed after the report was generated" in text


@pytest.mark.django_db
class TestNavigationAndMetadata:
    def test_bookmarks_name_sections(self, filed):
        _, pdf_bytes = filed
        reader = reader_of(pdf_bytes)

        entries = outline_entries(reader)

        top = [title for depth, title, _ in entries if depth == 0]
        nested = [title for depth, title, _ in entries if depth == 1]
        assert top == TOP_LEVEL_BOOKMARKS
        assert nested == APPENDIX_BOOKMARKS
        assert max(depth for depth, _, _ in entries) == 1

    def test_bookmarks_point_at_pages(self, filed):
        _, pdf_bytes = filed
        reader = reader_of(pdf_bytes)
        texts = page_texts(pdf_bytes)

        pages = {title: page for depth, title, page in outline_entries(reader) if depth == 0}

        assert pages["Cover"] == 0
        assert "Executive summary" in texts[pages["Executive summary"]]
        assert "Findings per control" in texts[pages["Findings per control"]]
        assert "Controls without evidence" in texts[pages["Controls without evidence"]]
        assert "Appendix: methodology" in texts[pages["Appendix: methodology"]]
        assert reader.trailer["/Root"]["/PageMode"] == "/UseOutlines"

    def test_document_metadata(self, filed):
        report, pdf_bytes = filed

        metadata = reader_of(pdf_bytes).metadata

        assert metadata.title == f"Compliance report {report.public_id}"
        assert metadata.author == "AI Compliance"
        assert metadata.subject == (
            "ISO/IEC 27001:2022 compliance of Triage assistant, 2026-03-01 to 2026-03-21"
        )
        keywords = metadata["/Keywords"].split(", ")
        assert keywords == [
            "compliance report",
            "ISO/IEC 27001:2022",
            "Triage assistant",
            "Klinikum Nord",
            report.public_id,
        ]
        assert metadata.creator == "AI Compliance"
        assert metadata.creation_date == report.generated_at.replace(microsecond=0)

    def test_keywords_drop_commas(self, clinic, media_root):
        tenant, entity = clinic
        entity.name = "Triage, intake and routing"
        entity.save()
        report = make_report(tenant, entity)

        metadata = reader_of(report_pdf.render_pdf(report)).metadata

        assert "Triage  intake and routing" in metadata["/Keywords"].split(", ")


@pytest.mark.django_db
class TestJsonAttachment:
    def test_attachment_is_api_body(self, filed, client, issue_key):
        report, pdf_bytes = filed
        key = issue_key(report.tenant, role=Role.AUDITOR)

        response = client.get(
            reverse("api:report-detail", kwargs={"report_id": report.public_id}),
            headers={"X-API-Key": key},
        )

        assert response.status_code == 200
        # The same document; PostgreSQL's jsonb may order object keys differently.
        assert json.loads(embedded_json(reader_of(pdf_bytes))) == response.json()

    def test_attachment_verifies_digest(self, filed):
        report, pdf_bytes = filed

        body = json.loads(embedded_json(reader_of(pdf_bytes)))

        digest = body.pop("digest")
        assert digest == report.digest
        assert digest == "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()
        assert body["id"] == report.public_id
        assert len(body["findings"]) == len(report.findings)

    def test_attachment_escapes_line_separators(self, clinic, media_root):
        """U+2028 and U+2029 are escaped as the API's JSON renderer does."""
        tenant, entity = clinic
        add_check(
            entity, at(3, 9), [("A.5.1", FindingStatus.FAIL, Severity.HIGH, "one\u2028two\u2029")]
        )
        report = make_report(tenant, entity)

        content = embedded_json(reader_of(report_pdf.render_pdf(report)))

        assert b"one\\u2028two\\u2029" in content
        assert json.loads(content)["findings"][0]["title"] == "one\u2028two\u2029"

    def test_attachment_is_associated_file(self, filed):
        report, pdf_bytes = filed
        catalog = reader_of(pdf_bytes).trailer["/Root"]

        (filespec,) = [reference.get_object() for reference in catalog["/AF"]]

        assert filespec["/Type"] == "/Filespec"
        assert filespec["/F"] == "report.json"
        assert filespec["/UF"] == "report.json"
        assert filespec["/AFRelationship"] == "/Source"
        assert report.public_id in filespec["/Desc"]
        stream = filespec["/EF"]["/F"].get_object()
        assert stream["/Subtype"] == "/application/json"
        generated = report.generated_at.astimezone(dt.UTC)
        assert stream["/Params"]["/ModDate"] == generated.strftime("D:%Y%m%d%H%M%SZ")
        assert stream["/Params"]["/Size"] == len(report_pdf.api_body_json(report))


@pytest.mark.django_db
class TestPdfA:
    """PDF/A-3b properties that pypdf can read. A validator such as veraPDF checks the rest."""

    def test_header_and_identifier(self, filed):
        _, pdf_bytes = filed
        reader = reader_of(pdf_bytes)

        assert pdf_bytes.startswith(b"%PDF-1.7\n")
        assert not reader.is_encrypted
        identifier = reader.trailer["/ID"]
        assert len(identifier) == 2
        assert all(len(part) == 32 for part in identifier)

    def test_xmp_declares_pdfa_3b(self, filed):
        _, pdf_bytes = filed

        xmp = reader_of(pdf_bytes).xmp_metadata

        assert xmp is not None
        assert xmp.pdfaid_part == "3"
        assert xmp.pdfaid_conformance == "B"

    def test_xmp_matches_document_info(self, filed):
        report, pdf_bytes = filed
        reader = reader_of(pdf_bytes)
        info = reader.metadata

        xmp = reader.xmp_metadata

        assert xmp.dc_title == {"x-default": info.title}
        assert xmp.dc_creator == [info.author]
        assert xmp.dc_description == {"x-default": info.subject}
        assert xmp.pdf_keywords == info["/Keywords"]
        assert xmp.xmp_creator_tool == info.creator
        assert xmp.pdf_producer == info.producer
        created = xmp.xmp_create_date.replace(tzinfo=dt.UTC)
        assert created == info.creation_date
        assert created == report.generated_at.replace(microsecond=0)

    def test_output_intent_is_srgb(self, filed):
        _, pdf_bytes = filed
        catalog = reader_of(pdf_bytes).trailer["/Root"]

        (intent,) = [reference.get_object() for reference in catalog["/OutputIntents"]]

        assert intent["/S"] == "/GTS_PDFA1"
        assert "sRGB" in intent["/OutputConditionIdentifier"]
        profile = intent["/DestOutputProfile"].get_object()
        assert profile["/N"] == 3
        icc = profile.get_data()
        assert icc[36:40] == b"acsp", "an ICC profile signature"
        assert icc[16:20] == b"RGB ", "an RGB colour space"

    def test_every_font_embedded(self, filed):
        _, pdf_bytes = filed

        fonts = {}
        for page in reader_of(pdf_bytes).pages:
            for font in page["/Resources"]["/Font"].values():
                font = font.get_object()
                fonts[font["/BaseFont"]] = font

        assert fonts
        for name, font in fonts.items():
            assert font["/Subtype"] == "/Type0", name
            (descendant,) = [item.get_object() for item in font["/DescendantFonts"]]
            descriptor = descendant["/FontDescriptor"].get_object()
            assert "/FontFile2" in descriptor, f"{name} is not embedded"

    def test_catalog_language(self, filed):
        _, pdf_bytes = filed

        catalog = reader_of(pdf_bytes).trailer["/Root"]

        assert catalog["/Lang"] == "en"


@pytest.mark.django_db
def test_period_bounds_follow_tenant_zone(media_root, db):
    tenant = Tenant.objects.create(slug="tokyo", name="Tokyo Lab", time_zone="Asia/Tokyo")
    entity = Entity.objects.create(tenant=tenant, entity_type=EntityType.MODEL, name="Ranker")
    report = make_report(tenant, entity)

    text = " ".join(appendix_text(report_pdf.render_pdf(report)).split())

    assert report.period_start == PERIOD_START
    assert "in Asia/Tokyo" in text
    assert "2026-02-28T15:00:00Z (included)" in text
    assert "2026-03-21T15:00:00Z (excluded)" in text
