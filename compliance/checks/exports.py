"""Spreadsheet exports: safe cell values, streamed CSV, XLSX files, and the check list export.

The cell and file helpers live in this app, the lowest one that exports, so
that ``compliance.reports.exports`` can use them without importing upwards.

Every text cell that a spreadsheet could evaluate as a formula (text starting
with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) gets a leading
``'``. XLSX files also store every text as a string cell, which spreadsheet
programs never evaluate. Numbers stay numbers in both formats, so a score of
``-2.5`` is not mistaken for a formula and is not turned into text.
"""

import csv
import datetime as dt
import logging
import tempfile
from decimal import Decimal

import xlsxwriter
from django.http import FileResponse, StreamingHttpResponse

from compliance.catalog.models import Regulation

logger = logging.getLogger(__name__)

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Excel stores at most 32,767 characters in one cell.
XLSX_MAX_CELL_CHARS = 32_767
XLSX_TRUNCATION_MARK = " [truncated]"
# A byte order mark, so spreadsheet programs read the CSV as UTF-8 and not as a legacy code page.
CSV_BOM = "\ufeff"
# CSV rows are sent in chunks of about this many characters, not one write per row.
CSV_CHUNK_CHARS = 64 * 1024

# The largest check list export, in rows. Larger exports are rejected, so one
# download occupies a worker for seconds: writing 100,000 rows of 10 text cells as
# XLSX took 11-15 s on a 2-core machine.
EXPORT_MAX_ROWS = 100_000
CHECK_LIST_COLUMNS = [
    "Check ID",
    "Entity ID",
    "Entity name",
    "Framework",
    "Check status",
    "Created at",
    "Control ID",
    "Finding status",
    "Severity",
    "Finding title",
]
# Database rows are fetched from the cursor in batches of this size.
ITERATOR_CHUNK_SIZE = 2000


def neutralise_text(text):
    """Return ``text`` with a leading ``'`` when a spreadsheet would read it as a formula."""
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def is_number(value):
    """Return whether ``value`` is written as a number cell (``bool`` is not a number here)."""
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def csv_cell(value):
    """Return one CSV field: ``None`` as empty, numbers unchanged, anything else as safe text."""
    if value is None:
        return ""
    if is_number(value):
        return value
    return neutralise_text(str(value))


class _LineBuffer:
    """A file-like object whose ``write`` returns the text, so ``csv.writer`` yields lines."""

    def write(self, text):
        return text


def csv_chunks(header, rows):
    """Yield the CSV text of ``header`` and ``rows`` in chunks, starting with a byte order mark.

    ``rows`` may be a generator, so a large export never sits in memory whole.
    """
    writer = csv.writer(_LineBuffer())
    pending = [CSV_BOM, writer.writerow([csv_cell(name) for name in header])]
    size = 0
    for row in rows:
        line = writer.writerow([csv_cell(value) for value in row])
        pending.append(line)
        size += len(line)
        if size >= CSV_CHUNK_CHARS:
            yield "".join(pending)
            pending = []
            size = 0
    if pending:
        yield "".join(pending)


def csv_response(filename, header, rows):
    """Return a streamed CSV attachment of ``header`` and ``rows``."""
    response = StreamingHttpResponse(csv_chunks(header, rows), content_type=CSV_CONTENT_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-cache"
    return response


def xlsx_text(value):
    """Return ``value`` as safe cell text that fits Excel's per-cell limit."""
    text = neutralise_text(str(value))
    if len(text) > XLSX_MAX_CELL_CHARS:
        keep = XLSX_MAX_CELL_CHARS - len(XLSX_TRUNCATION_MARK)
        text = text[:keep] + XLSX_TRUNCATION_MARK
    return text


def write_xlsx_cell(sheet, row, column, value):
    """Write a number cell for numbers, nothing for ``None``, and a string cell for the rest."""
    if value is None:
        return
    if is_number(value):
        sheet.write_number(row, column, value)
    else:
        sheet.write_string(row, column, xlsx_text(value))


def write_xlsx_sheet(workbook, name, header, rows, widths=()):
    """Add a sheet of a bold, frozen, filterable header row and ``rows``, and return the row count.

    The workbook runs in constant-memory mode, so the rows must come in order
    and each is flushed to a temporary file once the next one starts.
    """
    sheet = workbook.add_worksheet(name)
    for column, width in enumerate(widths):
        sheet.set_column(column, column, width)
    bold = workbook.add_format({"bold": True})
    for column, title in enumerate(header):
        sheet.write_string(0, column, xlsx_text(title), bold)
    sheet.freeze_panes(1, 0)

    count = 0
    for count, row in enumerate(rows, start=1):
        for column, value in enumerate(row):
            write_xlsx_cell(sheet, count, column, value)
    sheet.autofilter(0, 0, count, len(header) - 1)
    return count


def new_workbook(target, title):
    """Open an XLSX workbook on a file object that never turns text into formulas or links."""
    workbook = xlsxwriter.Workbook(
        target,
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_numbers": False,
            "strings_to_urls": False,
        },
    )
    workbook.set_properties({"title": title})
    return workbook


def xlsx_response(filename, title, fill):
    """Return an XLSX attachment whose sheets ``fill(workbook)`` adds.

    The workbook is written to an anonymous temporary file, which the
    response streams and closes, so a large export is not held in memory.
    """
    # The response closes the file after sending it, so no context manager here.
    target = tempfile.TemporaryFile()  # noqa: SIM115
    try:
        workbook = new_workbook(target, title)
        fill(workbook)
        workbook.close()
        target.seek(0)
    except BaseException:
        target.close()
        raise

    response = FileResponse(
        target, as_attachment=True, filename=filename, content_type=XLSX_CONTENT_TYPE
    )
    response["Cache-Control"] = "private, no-cache"
    return response


def check_list_values(checks):
    """Return ``checks`` joined to their findings: one row per finding, newest check first.

    The join is a left outer join, so a check without findings still gives one
    row, with empty finding columns. Findings of one check are in control ID order.
    """
    ordered = checks.order_by("-created_at", "-id", "findings__control_id", "findings__id")
    return ordered.values_list(
        "id",
        "entity_id",
        "entity__name",
        "regulation",
        "status",
        "created_at",
        "findings__control_id",
        "findings__status",
        "findings__severity",
        "findings__title",
    )


def count_check_list_rows(checks, limit):
    """Return the row count of the export of ``checks``, counting no further than limit + 1."""
    return check_list_values(checks).order_by()[: limit + 1].count()


def check_list_rows(checks, limit):
    """Yield the export rows of ``checks``, at most ``limit`` of them.

    The caller checks the size first with ``count_check_list_rows``.
    """
    # NOTE: checks created between that count and this query can still push the
    # total over the limit. The rows after the limit are then dropped with a warning.
    values = check_list_values(checks).iterator(chunk_size=ITERATOR_CHUNK_SIZE)
    for written, row in enumerate(values):
        if written == limit:
            logger.warning("check list export stopped at its limit of %d rows", limit)
            return
        yield check_list_row(row)


def check_list_row(values):
    """Return one export row from the columns that ``check_list_values`` selects."""
    check_id, entity_id, entity_name, regulation, status, created_at, *finding = values
    return [
        str(check_id),
        str(entity_id),
        entity_name,
        Regulation(regulation).framework,
        status,
        utc_timestamp(created_at),
        *finding,
    ]


def utc_timestamp(value):
    """Format an aware datetime as ISO 8601 in UTC with ``Z``, as the API returns timestamps.

    ``compliance.reports.aggregation.isoformat_z`` does the same, but this app
    sits below ``reports`` and must not import it.
    """
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def check_list_filename(file_format):
    return f"compliance-checks.{file_format}"


def check_list_response(checks, file_format, limit):
    """Return the CSV or XLSX attachment of ``checks``, whose rows ``limit`` must cover."""
    filename = check_list_filename(file_format)
    logger.info("exporting check list as %s", file_format)
    if file_format == "csv":
        return csv_response(filename, CHECK_LIST_COLUMNS, check_list_rows(checks, limit))
    if file_format == "xlsx":
        return xlsx_response(filename, "Compliance checks", lambda book: _fill(book, checks, limit))
    raise ValueError(f"Unknown export format {file_format!r}; expected csv or xlsx.")


def _fill(workbook, checks, limit):
    widths = [38, 38, 28, 10, 12, 22, 14, 14, 10, 60]
    rows = check_list_rows(checks, limit)
    write_xlsx_sheet(workbook, "Checks", CHECK_LIST_COLUMNS, rows, widths)
