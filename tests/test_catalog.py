"""The bundled control catalog and the canonical control IDs."""

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from compliance.catalog.canonical import canonical_control_id
from compliance.catalog.loader import CATALOG_FILE, read_catalog, read_catalog_rows, sync_catalog
from compliance.catalog.models import Control, Regulation

REPOSITORY = Path(__file__).resolve().parent.parent
MAPPINGS_DIR = REPOSITORY / "compliance" / "checks" / "importers" / "prowler_mappings"
FRAMEWORK_REGULATIONS = {
    "SOC2": Regulation.SOC2,
    "ISO27001": Regulation.ISO27001,
    "HIPAA": Regulation.HIPAA,
    "GDPR": Regulation.GDPR,
}


def catalog_rows():
    return list(read_catalog())


def prowler_requirement_ids():
    """Yield ``(file name, regulation, requirement Id)`` for every bundled mapping file."""
    paths = sorted(MAPPINGS_DIR.glob("*.json"))
    assert paths, f"no Prowler mapping files in {MAPPINGS_DIR}"
    for path in paths:
        mapping = json.loads(path.read_text(encoding="utf-8"))
        regulation = FRAMEWORK_REGULATIONS[mapping["Framework"]]
        for requirement in mapping["Requirements"]:
            yield path.name, regulation, requirement["Id"]


def test_catalog_ids_are_unique():
    keys = Counter((regulation, control_id) for regulation, control_id, _, _ in catalog_rows())
    duplicates = [key for key, count in keys.items() if count > 1]
    assert duplicates == []


def test_catalog_has_one_header_and_six_columns():
    with open(CATALOG_FILE, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["regulation", "control_id", "title", "group", "requirement", "guidance"]
    assert all(len(row) == 6 for row in rows)


def test_catalog_uses_crlf_line_endings():
    data = CATALOG_FILE.read_bytes()
    assert data.count(b"\r\n") == data.count(b"\n")


def test_every_control_has_guidance():
    missing = [(row.regulation, row.control_id) for row in read_catalog_rows() if not row.guidance]
    assert missing == []


def test_guidance_is_one_or_two_sentences():
    for row in read_catalog_rows():
        sentences = row.guidance.count(". ") + 1
        assert row.guidance.endswith("."), row.control_id
        assert sentences <= 2, row.control_id
        assert len(row.guidance) <= 300, row.control_id


# The Security Standards Matrix (Appendix A to Subpart C of Part 164) and
# the paragraphs of 164.314 and 164.316 that name their specifications
# "(Required)". A standard without separate specifications is required
# itself; a standard with specifications has no mark of its own.
HIPAA_REQUIREMENTS = {
    "164.308(a)(1)(ii)(A)": "required",
    "164.308(a)(1)(ii)(B)": "required",
    "164.308(a)(1)(ii)(C)": "required",
    "164.308(a)(1)(ii)(D)": "required",
    "164.308(a)(2)": "required",
    "164.308(a)(3)(ii)(A)": "addressable",
    "164.308(a)(3)(ii)(B)": "addressable",
    "164.308(a)(3)(ii)(C)": "addressable",
    "164.308(a)(4)(ii)(A)": "required",
    "164.308(a)(4)(ii)(B)": "addressable",
    "164.308(a)(4)(ii)(C)": "addressable",
    "164.308(a)(5)(ii)(A)": "addressable",
    "164.308(a)(5)(ii)(B)": "addressable",
    "164.308(a)(5)(ii)(C)": "addressable",
    "164.308(a)(5)(ii)(D)": "addressable",
    "164.308(a)(6)(ii)": "required",
    "164.308(a)(7)(ii)(A)": "required",
    "164.308(a)(7)(ii)(B)": "required",
    "164.308(a)(7)(ii)(C)": "required",
    "164.308(a)(7)(ii)(D)": "addressable",
    "164.308(a)(7)(ii)(E)": "addressable",
    "164.308(a)(8)": "required",
    "164.308(b)(3)": "required",
    "164.310(a)(2)(i)": "addressable",
    "164.310(a)(2)(ii)": "addressable",
    "164.310(a)(2)(iii)": "addressable",
    "164.310(a)(2)(iv)": "addressable",
    "164.310(b)": "required",
    "164.310(c)": "required",
    "164.310(d)(2)(i)": "required",
    "164.310(d)(2)(ii)": "required",
    "164.310(d)(2)(iii)": "addressable",
    "164.310(d)(2)(iv)": "addressable",
    "164.312(a)(2)(i)": "required",
    "164.312(a)(2)(ii)": "required",
    "164.312(a)(2)(iii)": "addressable",
    "164.312(a)(2)(iv)": "addressable",
    "164.312(b)": "required",
    "164.312(c)(2)": "addressable",
    "164.312(d)": "required",
    "164.312(e)(2)(i)": "addressable",
    "164.312(e)(2)(ii)": "addressable",
    "164.314(a)(2)(i)": "required",
    "164.314(a)(2)(ii)": "required",
    "164.314(a)(2)(iii)": "required",
    "164.314(b)(2)": "required",
    "164.316(a)": "required",
    "164.316(b)(2)(i)": "required",
    "164.316(b)(2)(ii)": "required",
    "164.316(b)(2)(iii)": "required",
}


def test_hipaa_requirement_marks_match_matrix():
    marks = {
        row.control_id: row.requirement
        for row in read_catalog_rows()
        if row.regulation == Regulation.HIPAA and row.requirement
    }
    assert marks == HIPAA_REQUIREMENTS


def test_hipaa_specifications_all_marked():
    for row in read_catalog_rows():
        if row.regulation != Regulation.HIPAA:
            continue
        # A specification sits one level below its standard: "(ii)(A)" in
        # 164.308, "(2)(i)" elsewhere, or a lone paragraph such as "(a)(6)(ii)".
        is_specification = "(ii)" in row.control_id or "(2)(" in row.control_id
        if is_specification:
            assert row.requirement, row.control_id


def test_only_hipaa_has_requirement_marks():
    for row in read_catalog_rows():
        if row.regulation != Regulation.HIPAA:
            assert row.requirement == "", (row.regulation, row.control_id)


def test_read_catalog_rows_rejects_unknown_requirement(tmp_path):
    path = tmp_path / "controls.csv"
    path.write_text(
        "regulation,control_id,title,group,requirement,guidance\r\n"
        "HIPAA,164.312(b),Audit controls,Technical,optional,Logs.\r\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=r"Invalid requirement 'optional' of '164\.312\(b\)'"):
        list(read_catalog_rows(path))


def test_catalog_ids_are_canonical():
    for regulation, control_id, _, _ in catalog_rows():
        assert canonical_control_id(regulation, control_id) == control_id


def test_catalog_hipaa_standards_appear_once():
    rows = catalog_rows()
    hipaa_ids = {control_id for regulation, control_id, _, _ in rows if regulation == "HIPAA"}
    assert "164.312(a)(1)" in hipaa_ids
    assert "164.312(a)" not in hipaa_ids
    assert "164.312(c)(1)" in hipaa_ids
    assert "164.312(c)" not in hipaa_ids
    assert "164.308(a)(3)" in hipaa_ids
    assert "164.308(a)(3)(i)" not in hipaa_ids
    assert "164.310(a)(1)" in hipaa_ids
    assert "164.310(a)" not in hipaa_ids


def test_prowler_requirement_ids_are_in_catalog():
    catalog = {(regulation.value, control_id) for regulation, control_id, _, _ in catalog_rows()}
    count = 0
    for file_name, regulation, requirement_id in prowler_requirement_ids():
        canonical = canonical_control_id(regulation, requirement_id)
        assert (regulation.value, canonical) in catalog, (file_name, requirement_id, canonical)
        count += 1
    assert count > 300


@pytest.mark.parametrize(
    ("regulation", "raw", "expected"),
    [
        ("SOC2", "cc_6_1", "CC6.1"),
        ("SOC2", "CC6.1", "CC6.1"),
        ("SOC2", "cc6.1", "CC6.1"),
        ("SOC2", "cc_a_1_1", "A1.1"),
        ("SOC2", "A1.1", "A1.1"),
        ("SOC2", "cc_c_1_2", "C1.2"),
        ("SOC2", "pi_1_1", "PI1.1"),
        ("SOC2", "pi_1_3", "PI1.3"),
        ("SOC2", "PP1.1", "PI1.1"),
        ("SOC2", "p_4_2", "P4.2"),
        ("soc2", "P4.2", "P4.2"),
        ("ISO27001", "8.28", "A.8.28"),
        ("ISO27001", "a.8.28", "A.8.28"),
        ("ISO27001", "A.8.28", "A.8.28"),
        ("ISO27001", "A.5.1", "A.5.1"),
        ("HIPAA", "164_308_a_1_ii_a", "164.308(a)(1)(ii)(A)"),
        ("HIPAA", "164.308(a)(1)(ii)(A)", "164.308(a)(1)(ii)(A)"),
        ("HIPAA", "164.312(a)(1)", "164.312(a)(1)"),
        ("HIPAA", "164.312(a)", "164.312(a)(1)"),
        ("HIPAA", "164_312_a_1", "164.312(a)(1)"),
        ("HIPAA", "§ 164.312(a)(1)", "164.312(a)(1)"),
        ("HIPAA", "164_308_a_3_i", "164.308(a)(3)"),
        ("HIPAA", "164.308(a)(3)", "164.308(a)(3)"),
        ("HIPAA", "164_308_a_4_ii_c", "164.308(a)(4)(ii)(C)"),
        ("HIPAA", "164_312_e_2_ii", "164.312(e)(2)(ii)"),
        ("HIPAA", "164.310(d)", "164.310(d)(1)"),
        ("GDPR", "article_25", "Art. 25"),
        ("GDPR", "Art. 25", "Art. 25"),
        ("GDPR", "art25", "Art. 25"),
        ("GDPR", "Article 32", "Art. 32"),
        ("EU_AI_ACT", "Art. 9", "Art. 9"),
        ("EU_AI_ACT", "article_9", "Art. 9"),
        ("EU_AI_ACT", "Annex IV", "Annex IV"),
        ("EU_AI_ACT", "annex_iv", "Annex IV"),
        ("EU_AI_ACT", "Annex 4", "Annex IV"),
        (Regulation.EU_AI_ACT, "Annex XII", "Annex XII"),
    ],
)
def test_canonical_control_id_spellings(regulation, raw, expected):
    assert canonical_control_id(regulation, raw) == expected


@pytest.mark.parametrize(
    ("regulation", "raw", "message"),
    [
        ("SOC2", "CC6", "Unknown SOC 2 control ID 'CC6'"),
        ("SOC2", "CC9.9", "'CC9.9' is not in the bundled catalog"),
        ("SOC2", "XY1.1", "Unknown SOC 2 control ID"),
        ("ISO27001", "A.9.1", "'A.9.1' is not in the bundled catalog"),
        ("ISO27001", "A.8", "Unknown ISO/IEC 27001:2022 control ID"),
        ("HIPAA", "164.312(z)(9)", "not in the bundled catalog"),
        ("HIPAA", "164_312_a_1_ii_a_b", "Unknown HIPAA Security Rule control ID"),
        ("HIPAA", "164.312(1)", "Unknown HIPAA Security Rule control ID"),
        ("HIPAA", "CC6.1", "Unknown HIPAA Security Rule control ID"),
        ("GDPR", "Art. 100", "not in the bundled catalog"),
        ("GDPR", "Art. 25(1)", "Unknown GDPR control ID"),
        ("EU_AI_ACT", "Annex IIII", "Unknown EU AI Act control ID"),
        ("EU_AI_ACT", "Annex XIV", "not in the bundled catalog"),
        ("GDPR", "", "Missing GDPR control ID"),
        ("GDPR", None, "Missing GDPR control ID"),
    ],
)
def test_canonical_control_id_rejects_unknown(regulation, raw, message):
    with pytest.raises(ValueError) as excinfo:
        canonical_control_id(regulation, raw)
    assert message in str(excinfo.value)


def test_canonical_control_id_rejects_unknown_regulation():
    with pytest.raises(ValueError, match="Unknown regulation 'PCI'"):
        canonical_control_id("PCI", "1.1")


@pytest.mark.django_db
def test_catalog_loaded_after_migrate():
    expected = Counter(regulation.value for regulation, _, _, _ in catalog_rows())
    loaded = Counter(Control.objects.values_list("regulation", flat=True))
    assert loaded == expected
    assert set(expected) == set(Regulation.values)


@pytest.mark.django_db
def test_catalog_rows_keep_file_order():
    control = Control.objects.get(regulation=Regulation.HIPAA, control_id="164.312(a)(1)")
    assert control.title == "Access control"
    assert control.group == "Technical Safeguards (45 CFR § 164.312)"
    first_hipaa = Control.objects.filter(regulation=Regulation.HIPAA).order_by("sort_key").first()
    assert first_hipaa.control_id == "164.308(a)(1)"


@pytest.mark.django_db
def test_sync_catalog_removes_stale_controls():
    Control.objects.create(
        regulation="HIPAA", control_id="164.312(a)", title="Old spelling", catalog_version="old"
    )
    before = Control.objects.count()

    changed = sync_catalog()

    assert changed == 1
    assert Control.objects.count() == before - 1
    assert not Control.objects.filter(control_id="164.312(a)").exists()
    assert sync_catalog() == 0


@pytest.mark.django_db
def test_sync_catalog_loads_guidance_and_requirement():
    control = Control.objects.get(regulation=Regulation.HIPAA, control_id="164.312(a)(2)(iv)")
    assert control.requirement == "addressable"
    assert control.guidance.startswith("Encryption of the ePHI")
    standard = Control.objects.get(regulation=Regulation.HIPAA, control_id="164.312(a)(1)")
    assert standard.requirement == ""


@pytest.mark.django_db
def test_sync_catalog_updates_changed_guidance():
    Control.objects.filter(regulation=Regulation.GDPR, control_id="Art. 32").update(guidance="")

    assert sync_catalog() == 1

    control = Control.objects.get(regulation=Regulation.GDPR, control_id="Art. 32")
    assert control.guidance != ""


@pytest.mark.parametrize(
    ("regulation", "control_id"),
    [
        ("GDPR", "Art. 1"),
        ("GDPR", "Art. 4"),
        ("GDPR", "Art. 51"),
        ("GDPR", "Art. 68"),
        ("GDPR", "Art. 83"),
        ("GDPR", "Art. 99"),
        ("EU_AI_ACT", "Art. 3"),
        ("EU_AI_ACT", "Art. 30"),
        ("EU_AI_ACT", "Art. 64"),
        ("EU_AI_ACT", "Art. 99"),
        ("EU_AI_ACT", "Art. 113"),
        ("EU_AI_ACT", "Annex I"),
        ("EU_AI_ACT", "Annex XIII"),
    ],
)
def test_catalog_leaves_out_non_obligations(regulation, control_id):
    ids = {row.control_id for row in read_catalog_rows() if row.regulation == regulation}
    assert control_id not in ids


@pytest.mark.parametrize(
    ("regulation", "control_id"),
    [
        ("GDPR", "Art. 5"),
        ("GDPR", "Art. 17"),
        ("GDPR", "Art. 28"),
        ("GDPR", "Art. 46"),
        ("EU_AI_ACT", "Art. 4"),
        ("EU_AI_ACT", "Art. 5"),
        ("EU_AI_ACT", "Art. 26"),
        ("EU_AI_ACT", "Art. 50"),
        ("EU_AI_ACT", "Art. 53"),
        ("EU_AI_ACT", "Art. 55"),
        ("EU_AI_ACT", "Art. 73"),
        ("EU_AI_ACT", "Annex IV"),
    ],
)
def test_catalog_keeps_obligations(regulation, control_id):
    ids = {row.control_id for row in read_catalog_rows() if row.regulation == regulation}
    assert control_id in ids
