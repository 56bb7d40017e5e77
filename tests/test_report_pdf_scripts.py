"""Text in any script renders with the bundled fonts, never as missing-glyph boxes."""

import io
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont
from pypdf import PdfReader

from compliance.catalog.models import Severity
from compliance.checks.models import FindingStatus
from compliance.inventory.models import Entity, EntityType
from compliance.reports import pdf as report_pdf
from compliance.tenancy.models import Tenant
from tests.test_report_pdf import add_check, at, compact, make_report, page_texts

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
FONT_DIR = STATIC_DIR / "fonts"
# One title per script: Latin with an umlaut, Greek, Cyrillic, Arabic, Chinese, Japanese.
TITLES = {
    "latin": "Zugriffsprüfung",
    "greek": "Ελεγχος",
    "cyrillic": "Проверка доступа",
    "arabic": "مراجعة الوصول",
    "chinese": "访问审查",
    "japanese": "アクセス確認",
}
# The PDF names each embedded font after its @font-face family in report_pdf.css.
BUNDLED_FAMILIES = {
    "Report-Sans",
    "Report-Sans-Bold",
    "Report-Arabic",
    "Report-Arabic-Bold",
    "Report-CJK",
    "Report-Mono",
    "DejaVu-Sans",
}
LICENCES = {
    "NotoSans-": "Noto-LICENSE.txt",
    "NotoSansArabic-": "Noto-LICENSE.txt",
    "DroidSansFallback": "DroidSansFallback-LICENSE.txt",
    "DejaVuSans": "DejaVu-LICENSE.txt",
}
MAX_FONT_BYTES = 15 * 1024 * 1024


@pytest.fixture
def multilingual(db, settings, tmp_path):
    """Render a report whose entity name and six finding titles use six scripts."""
    settings.MEDIA_ROOT = tmp_path / "media"
    tenant = Tenant.objects.create(slug="global", name="Global Health", time_zone="UTC")
    entity = Entity.objects.create(
        tenant=tenant, entity_type=EntityType.AGENT, name=" · ".join(TITLES.values())
    )
    rows = [
        (f"A.5.{index}", FindingStatus.FAIL, Severity.HIGH, title)
        for index, title in enumerate(TITLES.values(), start=1)
    ]
    add_check(entity, at(4, 10), rows)
    report = make_report(tenant, entity)
    return report, report_pdf.render_pdf(report)


def fonts_by_page(pdf_bytes):
    """Return the set of embedded font names, without subset prefixes, for each page."""
    pages = []
    for page in PdfReader(io.BytesIO(pdf_bytes)).pages:
        names = set()
        for font in page["/Resources"]["/Font"].values():
            base_font = font.get_object()["/BaseFont"]
            names.add(base_font.lstrip("/").split("+", 1)[-1])
        pages.append(names)
    return pages


def bundled_code_points():
    """Return every code point that some bundled font maps to a glyph."""
    points = set()
    for path in FONT_DIR.glob("*.ttf"):
        font = TTFont(path, lazy=True)
        points.update(font.getBestCmap())
        font.close()
    return points


@pytest.mark.django_db
class TestScripts:
    @pytest.mark.parametrize("script", list(TITLES))
    def test_finding_title_extracted(self, multilingual, script):
        _, pdf_bytes = multilingual

        findings_page = next(text for text in page_texts(pdf_bytes) if "A.5.1" in text)

        assert TITLES[script] in findings_page

    @pytest.mark.parametrize("script", list(TITLES))
    def test_entity_name_on_cover(self, multilingual, script):
        _, pdf_bytes = multilingual

        cover = page_texts(pdf_bytes)[0]

        # The name wraps on the cover, so compare without whitespace.
        assert compact(TITLES[script]) in compact(cover)

    def test_fallback_fonts_used(self, multilingual):
        _, pdf_bytes = multilingual
        texts = page_texts(pdf_bytes)

        fonts = fonts_by_page(pdf_bytes)

        findings_index = next(index for index, text in enumerate(texts) if "A.5.1" in text)
        assert {"Report-Sans", "Report-Arabic", "Report-CJK"} <= fonts[0]
        assert {"Report-Sans", "Report-Arabic", "Report-CJK"} <= fonts[findings_index]

    def test_only_bundled_fonts_embedded(self, multilingual):
        _, pdf_bytes = multilingual

        embedded = set().union(*fonts_by_page(pdf_bytes))

        assert embedded <= BUNDLED_FAMILIES, "a glyph came from a system font"

    def test_every_character_has_glyph(self, multilingual):
        _, pdf_bytes = multilingual

        text = "".join(page_texts(pdf_bytes))

        covered = bundled_code_points()
        missing = {char for char in text if not char.isspace() and ord(char) not in covered}
        assert missing == set()


def test_fonts_fit_size_budget():
    total = sum(path.stat().st_size for path in FONT_DIR.glob("*.ttf"))

    assert total < MAX_FONT_BYTES


@pytest.mark.parametrize("path", sorted(FONT_DIR.glob("*.ttf")), ids=lambda path: path.name)
def test_font_has_licence(path):
    licences = [name for prefix, name in LICENCES.items() if path.name.startswith(prefix)]

    assert licences, f"no licence file is listed for {path.name}"
    for licence in licences:
        assert (FONT_DIR / licence).is_file()


def test_stylesheet_declares_fallback_chain():
    css = (STATIC_DIR / "reports" / "report_pdf.css").read_text()

    assert 'font-family: "Report Sans", "Report Arabic", "Report CJK", sans-serif;' in css
    for path in FONT_DIR.glob("*.ttf"):
        assert f'url("../fonts/{path.name}")' in css, f"{path.name} is not declared"
