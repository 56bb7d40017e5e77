"""Spreadsheet cells and the check list export: formula neutralising, CSV streaming, XLSX cells.

XLSX files are read back by unzipping their XML, so the tests check the cell
types that a spreadsheet program reads: a number cell, a string cell, or a
formula (which no export may contain).
"""

import csv
import datetime as dt
import io
import itertools
import re
import tracemalloc
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass

import pytest
from django.db import connection
from django.utils import timezone

from compliance.catalog.models import Severity
from compliance.checks import exports
from compliance.checks.models import Check, CheckSource, Finding, FindingStatus
from compliance.inventory.models import Entity, EntityType
from compliance.tenancy.models import Role

CHECKS_CSV = "/v1/compliance/checks.csv"
CHECKS_XLSX = "/v1/compliance/checks.xlsx"
MAIN_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
RELATIONSHIP_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
HOSTILE_TITLES = ['=HYPERLINK("http://127.0.0.1:9/x","click")', "+1+1", "-2+3", "@SUM(A1)"]


# Reading files back


@dataclass
class Cell:
    kind: str  # "number", "string" or "formula"
    value: object


def _column_index(reference):
    letters = re.match(r"[A-Z]+", reference).group()
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1


def _unescape(text):
    """Decode the ``_xHHHH_`` escapes that XLSX uses for control characters."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda match: chr(int(match.group(1), 16)), text)


def _text_of(element):
    return _unescape("".join(node.text or "" for node in element.iter(f"{MAIN_NS}t")))


def _cell(element, shared_strings):
    if element.find(f"{MAIN_NS}f") is not None:
        return Cell("formula", element.find(f"{MAIN_NS}f").text)
    kind = element.get("t", "n")
    if kind == "inlineStr":
        return Cell("string", _text_of(element.find(f"{MAIN_NS}is")))
    if kind == "s":
        return Cell("string", shared_strings[int(element.find(f"{MAIN_NS}v").text)])
    if kind == "n":
        return Cell("number", float(element.find(f"{MAIN_NS}v").text))
    return Cell(kind, element.find(f"{MAIN_NS}v").text)


def _sheet_rows(xml, shared_strings):
    rows = []
    for row in xml.iter(f"{MAIN_NS}row"):
        cells = {}
        for element in row.iter(f"{MAIN_NS}c"):
            cells[_column_index(element.get("r"))] = _cell(element, shared_strings)
        width = max(cells, default=-1) + 1
        rows.append([cells.get(index) for index in range(width)])
    return rows


def _xml(archive, name):
    return ET.fromstring(archive.read(name))  # noqa: S314 - only files that the exports wrote


def read_xlsx(data):
    """Return ``{sheet name: rows}`` of an XLSX file, each row a list of ``Cell`` or ``None``."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        shared_strings = []
        if "xl/sharedStrings.xml" in names:
            shared = _xml(archive, "xl/sharedStrings.xml")
            shared_strings = [_text_of(item) for item in shared.iter(f"{MAIN_NS}si")]
        relations = _xml(archive, "xl/_rels/workbook.xml.rels")
        targets = {relation.get("Id"): relation.get("Target") for relation in relations}
        workbook = _xml(archive, "xl/workbook.xml")
        sheets = {}
        for sheet in workbook.iter(f"{MAIN_NS}sheet"):
            xml = _xml(archive, "xl/" + targets[sheet.get(RELATIONSHIP_ID)])
            sheets[sheet.get("name")] = _sheet_rows(xml, shared_strings)
        return sheets


def xlsx_has_formula(data):
    """Return whether any worksheet of an XLSX file contains a formula element."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheets = [name for name in archive.namelist() if name.startswith("xl/worksheets/")]
        return any(b"<f>" in archive.read(name) or b"<f " in archive.read(name) for name in sheets)


def values(row):
    return [cell.value if cell else None for cell in row]


def read_csv(body):
    """Return the rows of a CSV body, which must start with a UTF-8 byte order mark."""
    assert body.startswith(b"\xef\xbb\xbf"), body[:20]
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def streamed_body(response):
    assert response.streaming, "exports are streamed"
    return b"".join(response.streaming_content)


# Cell helpers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (HOSTILE_TITLES[0], "'" + HOSTILE_TITLES[0]),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("CC6.1 evaluated", "CC6.1 evaluated"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_neutralise_text(text, expected):
    assert exports.neutralise_text(text) == expected


def test_csv_keeps_numbers_numeric():
    lines = "".join(exports.csv_chunks(["a", "b", "c", "d", "e"], [[-2.5, 3, "-2+3", None, 0]]))

    assert lines == "\ufeffa,b,c,d,e\r\n-2.5,3,'-2+3,,0\r\n"


def test_csv_neutralises_header():
    lines = "".join(exports.csv_chunks(["=cmd"], []))

    assert lines == "\ufeff'=cmd\r\n"


def test_csv_chunks_lazily():
    """The writer consumes rows as it goes, so an endless source still gives a first chunk."""
    endless = (["row", index] for index in itertools.count())

    first = next(exports.csv_chunks(["name", "index"], endless))

    assert first.startswith("\ufeffname,index\r\nrow,0\r\n")
    assert len(first) >= exports.CSV_CHUNK_CHARS


def test_csv_chunks_join_to_whole():
    rows = [[f"title {index}", index] for index in range(5000)]

    chunks = list(exports.csv_chunks(["title", "index"], rows))

    assert len(chunks) > 1
    parsed = list(csv.reader(io.StringIO("".join(chunks).removeprefix("\ufeff"))))
    assert parsed[0] == ["title", "index"]
    assert parsed[1:] == [[f"title {index}", str(index)] for index in range(5000)]


def workbook_bytes(header, rows):
    target = io.BytesIO()
    workbook = exports.new_workbook(target, "test")
    exports.write_xlsx_sheet(workbook, "Sheet", header, rows)
    workbook.close()
    return target.getvalue()


def test_xlsx_cell_types():
    data = workbook_bytes(["text", "score", "count", "empty"], [["-2+3", -2.5, 7, None]])

    header, row = read_xlsx(data)["Sheet"]

    assert values(header) == ["text", "score", "count", "empty"]
    assert row[0] == Cell("string", "'-2+3")
    assert row[1] == Cell("number", -2.5)
    assert row[2] == Cell("number", 7)
    assert len(row) == 3, "None leaves the cell empty"
    assert not xlsx_has_formula(data)


@pytest.mark.parametrize("text", [*HOSTILE_TITLES, "\t=1+1", "\r=1+1"])
def test_xlsx_hostile_text_is_string(text):
    data = workbook_bytes(["title"], [[text]])

    cell = read_xlsx(data)["Sheet"][1][0]

    assert cell == Cell("string", "'" + text)
    assert not xlsx_has_formula(data)


def test_xlsx_truncates_long_text():
    data = workbook_bytes(["text"], [["x" * 40_000]])

    cell = read_xlsx(data)["Sheet"][1][0]

    assert len(cell.value) == exports.XLSX_MAX_CELL_CHARS
    assert cell.value.endswith(exports.XLSX_TRUNCATION_MARK)


def test_xlsx_counts_rows():
    target = io.BytesIO()
    workbook = exports.new_workbook(target, "test")

    written = exports.write_xlsx_sheet(workbook, "Sheet", ["n"], ([index] for index in range(3)))
    workbook.close()

    assert written == 3


# The check list export


def add_check(entity, when, rows, regulation="SOC2", status="partial"):
    """Create a check at ``when`` with findings from ``(control_id, status, severity, title)``."""
    check = Check.objects.create(
        tenant=entity.tenant,
        entity=entity,
        regulation=regulation,
        source=CheckSource.API,
        status=status,
        created_at=when,
        completed_at=when,
    )
    Finding.objects.bulk_create(
        Finding(
            compliance_check=check,
            tenant=entity.tenant,
            entity=entity,
            regulation=regulation,
            observed_at=when,
            finding_id=f"{control_id}-{index}",
            control_id=control_id,
            status=finding_status,
            severity=severity,
            title=title,
        )
        for index, (control_id, finding_status, severity, title) in enumerate(rows)
    )
    return check


@pytest.fixture
def key(tenant, issue_key):
    return issue_key(tenant, role=Role.AUDITOR)


@pytest.fixture
def history(entity):
    """Three checks: two with findings, one newest without, plus a hostile finding title."""
    now = timezone.now().replace(microsecond=0)
    older = add_check(
        entity,
        now - dt.timedelta(days=3),
        [
            ("CC7.2", FindingStatus.PASS, Severity.LOW, "Logs are kept"),
            ("CC6.1", FindingStatus.FAIL, Severity.HIGH, HOSTILE_TITLES[0]),
        ],
        status="failed",
    )
    newer = add_check(
        entity,
        now - dt.timedelta(days=1),
        [("Art. 32", FindingStatus.PASS, Severity.MEDIUM, "+1+1")],
        regulation="GDPR",
        status="passed",
    )
    empty = add_check(entity, now, [], regulation="HIPAA", status="pending")
    return older, newer, empty


def get_csv(client, key, **params):
    return client.get(CHECKS_CSV, params, headers={"X-API-Key": key})


@pytest.mark.django_db
class TestCheckListCsv:
    def test_rows_newest_first(self, client, key, entity, history):
        older, newer, empty = history

        response = get_csv(client, key)

        assert response.status_code == 200
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        assert response["Content-Disposition"] == 'attachment; filename="compliance-checks.csv"'
        rows = read_csv(streamed_body(response))
        assert rows[0] == exports.CHECK_LIST_COLUMNS
        assert [row[0] for row in rows[1:]] == [
            str(empty.pk),
            str(newer.pk),
            str(older.pk),
            str(older.pk),
        ]

    def test_row_columns(self, client, key, entity, history):
        older, _, _ = history

        rows = read_csv(streamed_body(get_csv(client, key)))

        created = older.created_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert rows[3] == [
            str(older.pk),
            str(entity.pk),
            entity.name,
            "soc2",
            "failed",
            created,
            "CC6.1",
            "fail",
            "high",
            "'" + HOSTILE_TITLES[0],
        ]
        assert rows[4][6:] == ["CC7.2", "pass", "low", "Logs are kept"]
        assert rows[2][3] == "gdpr"
        assert rows[2][9] == "'+1+1"

    def test_check_without_findings_has_one_row(self, client, key, history):
        _, _, empty = history

        rows = read_csv(streamed_body(get_csv(client, key)))

        assert [row[0] for row in rows].count(str(empty.pk)) == 1
        assert rows[1][0] == str(empty.pk)
        assert rows[1][3:5] == ["hipaa", "pending"]
        assert rows[1][6:] == ["", "", "", ""]

    def test_raw_text_has_no_formula(self, client, key, history):
        body = streamed_body(get_csv(client, key)).decode("utf-8-sig")

        assert "'=HYPERLINK(" in body
        assert ",=" not in body
        assert ",+" not in body

    def test_same_filters_as_list(self, client, key, entity, history):
        _, newer, _ = history
        headers = {"X-API-Key": key}
        params = {"framework": "GDPR", "status": "Passed", "agent_id": str(entity.pk)}

        listed = client.get("/v1/compliance/reports", params, headers=headers).json()
        rows = read_csv(streamed_body(get_csv(client, key, **params)))

        assert [item["check_id"] for item in listed["items"]] == [str(newer.pk)]
        assert [row[0] for row in rows[1:]] == [str(newer.pk)]

    def test_other_entity_filter_is_empty(self, client, key, history, other_entity):
        add_check(other_entity, timezone.now(), [("CC6.1", "fail", "high", "Globex finding")])

        body = streamed_body(get_csv(client, key, agent_id=str(other_entity.pk)))

        assert read_csv(body) == [exports.CHECK_LIST_COLUMNS]
        assert b"Globex" not in body

    def test_other_tenant_rows_absent(self, client, key, history, other_entity):
        add_check(other_entity, timezone.now(), [("CC6.1", "fail", "high", "Globex finding")])

        body = streamed_body(get_csv(client, key))

        assert b"Globex" not in body
        assert str(other_entity.pk).encode() not in body

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("limit=5", "limit"),
            ("offset=0", "offset"),
            ("page=2", "page"),
            ("status=done", "status"),
            ("framework=pci", "framework"),
            ("agent_id=not-a-uuid", "agent_id"),
            ("status=", "status"),
            ("status=passed&status=failed", "status"),
        ],
    )
    def test_rejects_invalid_parameter(self, client, key, query, field):
        response = client.get(f"{CHECKS_CSV}?{query}", headers={"X-API-Key": key})

        assert response.status_code == 400
        body = response.json()
        assert body["code"] == "invalid_parameter"
        assert field in body["details"]

    def test_names_every_invalid_parameter(self, client, key):
        response = client.get(f"{CHECKS_XLSX}?status=done&limit=3", headers={"X-API-Key": key})

        assert response.status_code == 400
        assert set(response.json()["details"]) == {"status", "limit"}

    def test_needs_credential(self, client):
        response = client.get(CHECKS_CSV)

        assert response.status_code == 401
        assert response.json()["code"] == "unauthenticated"

    def test_streams_with_flat_memory(self, client, key, entity):
        """Peak memory grows by less than half when the export grows fourfold."""
        when = timezone.now()
        add_finding_batch(entity, when, 0)
        small_total, small_peak = streaming_peak(get_csv(client, key))
        for batch in range(1, 4):
            add_finding_batch(entity, when - dt.timedelta(minutes=batch), batch)

        large_total, large_peak = streaming_peak(get_csv(client, key))

        assert large_total > 3.9 * small_total
        assert large_peak < 1.5 * small_peak, f"peak {small_peak} grew to {large_peak} bytes"


def insert_findings(check, count):
    """Insert ``count`` passing findings into ``check`` with one executemany, not as models."""
    template = Finding(
        compliance_check=check,
        tenant_id=check.tenant_id,
        entity_id=check.entity_id,
        regulation=check.regulation,
        observed_at=check.created_at,
        status="pass",
        severity="low",
        title="t",
    )
    fields = [field for field in Finding._meta.concrete_fields if not field.primary_key]
    stored = {
        field.attname: field.get_db_prep_save(getattr(template, field.attname), connection)
        for field in fields
    }
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    table = connection.ops.quote_name(Finding._meta.db_table)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"  # noqa: S608
    rows = [
        tuple(
            {**stored, "finding_id": str(index), "control_id": f"X{index}"}[field.attname]
            for field in fields
        )
        for index in range(count)
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def add_finding_batch(entity, when, batch, size=5000):
    rows = [
        (f"C{batch}.{index}", "fail", "high", f"Finding {index:05d} " + "x" * 120)
        for index in range(size)
    ]
    add_check(entity, when, rows)


def streaming_peak(response):
    """Return the bytes a streamed response sends and the peak traced memory while reading it."""
    tracemalloc.start()
    total = 0
    try:
        for chunk in response.streaming_content:
            total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return total, peak


@pytest.mark.django_db
class TestCheckListXlsx:
    def test_cells(self, client, key, entity, history):
        older, _, empty = history

        response = client.get(CHECKS_XLSX, headers={"X-API-Key": key})
        data = streamed_body(response)

        assert response.status_code == 200
        assert response["Content-Type"] == exports.XLSX_CONTENT_TYPE
        assert response["Content-Disposition"] == 'attachment; filename="compliance-checks.xlsx"'
        rows = read_xlsx(data)["Checks"]
        assert values(rows[0]) == exports.CHECK_LIST_COLUMNS
        assert len(rows) == 5
        assert values(rows[1])[:5] == [
            str(empty.pk),
            str(entity.pk),
            entity.name,
            "hipaa",
            "pending",
        ]
        assert values(rows[3])[0] == str(older.pk)
        assert rows[3][9] == Cell("string", "'" + HOSTILE_TITLES[0])
        assert rows[2][9] == Cell("string", "'+1+1")
        assert not xlsx_has_formula(data)

    def test_same_rows_as_csv(self, client, key, history):
        headers = {"X-API-Key": key}

        csv_rows = read_csv(streamed_body(client.get(CHECKS_CSV, headers=headers)))
        xlsx_rows = read_xlsx(streamed_body(client.get(CHECKS_XLSX, headers=headers)))["Checks"]

        as_text = [[value or "" for value in values(row)] for row in xlsx_rows]
        padded = [row + [""] * (len(csv_rows[0]) - len(row)) for row in as_text]
        assert padded == csv_rows


@pytest.mark.django_db
class TestCheckListCap:
    def test_cap_allows_exact_limit(self, client, key, history, monkeypatch):
        monkeypatch.setattr(exports, "EXPORT_MAX_ROWS", 4)

        response = get_csv(client, key)

        assert response.status_code == 200
        assert len(read_csv(streamed_body(response))) == 5

    @pytest.mark.parametrize("path", [CHECKS_CSV, CHECKS_XLSX])
    def test_cap_rejects_one_more(self, client, key, history, monkeypatch, path):
        monkeypatch.setattr(exports, "EXPORT_MAX_ROWS", 3)

        response = client.get(path, headers={"X-API-Key": key})

        assert response.status_code == 400
        body = response.json()
        assert body["code"] == "invalid_parameter"
        assert "more than 3 rows" in body["message"]
        assert "Narrow the filters" in body["message"]

    def test_filters_bring_export_under_cap(self, client, key, history, monkeypatch):
        monkeypatch.setattr(exports, "EXPORT_MAX_ROWS", 3)

        response = get_csv(client, key, framework="soc2")

        assert response.status_code == 200
        assert len(read_csv(streamed_body(response))) == 3

    def test_real_cap_rejects_100001_rows(self, client, key, entity):
        check = add_check(entity, timezone.now(), [])
        insert_findings(check, exports.EXPORT_MAX_ROWS + 1)

        response = get_csv(client, key)

        assert exports.EXPORT_MAX_ROWS == 100_000
        assert response.status_code == 400
        assert "more than 100,000 rows" in response.json()["message"]

    def test_rows_beyond_limit_dropped(self, entity, history):
        checks = Check.objects.filter(tenant=entity.tenant)

        rows = list(exports.check_list_rows(checks, 2))

        assert len(rows) == 2

    def test_count_stops_after_limit(self, entity, history):
        checks = Check.objects.filter(tenant=entity.tenant)

        assert exports.count_check_list_rows(checks, 10) == 4
        assert exports.count_check_list_rows(checks, 2) == 3


@pytest.mark.django_db
def test_entity_names_of_each_check(client, key, tenant, history):
    second = Entity.objects.create(tenant=tenant, entity_type=EntityType.MODEL, name="@model")
    add_check(second, timezone.now() + dt.timedelta(seconds=1), [], status="pending")

    rows = read_csv(streamed_body(get_csv(client, key)))

    assert rows[1][1:3] == [str(second.pk), "'@model"]
    assert rows[2][1:3] == [str(history[2].entity_id), "Claims triage agent"]
