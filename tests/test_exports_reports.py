"""Report findings exports: API and page downloads, hostile text, and one source of numbers.

The numbers test generates one report and reads its score and counts from
the API JSON, the page HTML, the CSV, the XLSX summary sheet and the text of
the PDF, which must all agree.
"""

import datetime as dt
import html
import io
import re

import pytest
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from compliance.catalog.models import Severity
from compliance.checks.exports import XLSX_CONTENT_TYPE, neutralise_text
from compliance.checks.models import FindingStatus
from compliance.reports import aggregation, services
from compliance.reports.exports import FINDING_COLUMNS
from compliance.reports.models import Report, ReportStatus
from compliance.reports.services import request_report
from compliance.tenancy.models import Role
from tests.conftest import make_check
from tests.test_exports import (
    HOSTILE_TITLES,
    Cell,
    read_csv,
    read_xlsx,
    streamed_body,
    values,
    xlsx_has_formula,
)

HEADER = [title for title, _ in FINDING_COLUMNS]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SEVERITY_LABELS = {"critical": "Critical", "high": "High", "medium": "Medium", "low": "Low"}


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def auditor_key(tenant, issue_key):
    return issue_key(tenant, role=Role.AUDITOR)


def make_history(entity):
    """Pass two controls in the previous week, then fail them, so the score change is negative.

    The current week has hostile titles, a tab in a description and a
    carriage return in a remediation, all of which a spreadsheet could run.
    """
    now = timezone.now().replace(microsecond=0)
    make_check(
        entity,
        "SOC2",
        now - dt.timedelta(days=10),
        [
            ("CC6.1", FindingStatus.PASS, Severity.HIGH),
            ("CC7.2", FindingStatus.PASS, Severity.MEDIUM),
        ],
    )
    check = make_check(
        entity,
        "SOC2",
        now - dt.timedelta(days=2),
        [
            ("CC6.1", FindingStatus.FAIL, Severity.HIGH),
            ("CC7.2", FindingStatus.FAIL, Severity.MEDIUM),
            ("CC8.1", FindingStatus.PASS, Severity.LOW),
            ("A1.2", FindingStatus.NOT_ASSESSED, Severity.LOW),
        ],
    )
    for control_id, title in zip(["CC6.1", "CC7.2", "CC8.1", "A1.2"], HOSTILE_TITLES, strict=True):
        check.findings.filter(control_id=control_id).update(title=title)
    check.findings.filter(control_id="CC6.1").update(
        description="\t=cmd|' /C calc'!A0", remediation="\r=1+1"
    )


def generate(tenant, entity):
    today = tenant.today()
    report = request_report(
        tenant=tenant,
        entity=entity,
        regulation="SOC2",
        period_start=today - dt.timedelta(days=6),
        period_end=today,
    )
    assert report.status == ReportStatus.READY, report.error
    return report


@pytest.fixture
def report(tenant, entity):
    make_history(entity)
    return generate(tenant, entity)


def api_path(report, file_format):
    return f"/v1/compliance/reports/{report.public_id}/findings.{file_format}"


def page_path(report, file_format):
    return reverse(f"web:report-export-{file_format}", kwargs={"report_id": report.pk})


def api_get(client, key, path):
    return client.get(path, headers={"X-API-Key": key})


def csv_text(value):
    """Return a stored finding value as the CSV writes it."""
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return neutralise_text(str(value))


def summary_cells(data):
    """Return ``{field: Cell}`` of the Summary sheet of an XLSX export."""
    rows = read_xlsx(data)["Summary"]
    assert values(rows[0]) == ["Field", "Value"]
    return {row[0].value: row[1] if len(row) > 1 else None for row in rows[1:]}


def make_report_row(entity, status):
    end = dt.date(2026, 3, 31)
    return Report.objects.create(
        tenant=entity.tenant,
        entity=entity,
        regulation="SOC2",
        period_start=end - dt.timedelta(days=6),
        period_end=end,
        status=status,
        error="Aggregation failed: OperationalError" if status == ReportStatus.FAILED else "",
    )


@pytest.mark.django_db
class TestReportCsv:
    def test_headers(self, client, auditor_key, report):
        response = api_get(client, auditor_key, api_path(report, "csv"))

        assert response.status_code == 200
        assert response["Content-Type"] == "text/csv; charset=utf-8"
        expected_name = report.public_id.replace(":", "-") + "-findings.csv"
        assert response["Content-Disposition"] == f'attachment; filename="{expected_name}"'
        assert response["X-Report-Digest"] == report.digest
        assert response["Cache-Control"] == "private, no-cache"

    def test_one_row_per_control(self, client, auditor_key, report):
        rows = read_csv(streamed_body(api_get(client, auditor_key, api_path(report, "csv"))))

        assert rows[0] == HEADER
        assert len(rows) == len(report.findings) + 1
        for row, entry in zip(rows[1:], report.findings, strict=True):
            assert row == [csv_text(entry[key]) for _, key in FINDING_COLUMNS]

    def test_hostile_text_quoted(self, client, auditor_key, report):
        body = streamed_body(api_get(client, auditor_key, api_path(report, "csv")))
        rows = read_csv(body)

        titles = {row[0]: row[4] for row in rows[1:]}
        assert titles["CC6.1"] == "'" + HOSTILE_TITLES[0]
        assert titles["CC7.2"] == "'+1+1"
        assert titles["CC8.1"] == "'-2+3"
        assert titles["A1.2"] == "'@SUM(A1)"
        cc61 = next(row for row in rows if row[0] == "CC6.1")
        assert cc61[5] == "'\t=cmd|' /C calc'!A0"
        assert cc61[6] == "'\r=1+1"
        for row in rows:
            for field in row:
                assert not field.startswith(FORMULA_STARTS), field

    def test_observations_are_plain_numbers(self, client, auditor_key, report):
        rows = read_csv(streamed_body(api_get(client, auditor_key, api_path(report, "csv"))))

        observations = [row[9] for row in rows[1:]]
        assert observations == [str(entry["observations"]) for entry in report.findings]
        assert all(value.isdigit() for value in observations)

    def test_empty_report_has_header_only(self, client, auditor_key, tenant, entity):
        empty = generate(tenant, entity)

        rows = read_csv(streamed_body(api_get(client, auditor_key, api_path(empty, "csv"))))

        assert rows == [HEADER]


@pytest.mark.django_db
class TestReportXlsx:
    def test_headers(self, client, auditor_key, report):
        response = api_get(client, auditor_key, api_path(report, "xlsx"))

        assert response.status_code == 200
        assert response["Content-Type"] == XLSX_CONTENT_TYPE
        expected_name = report.public_id.replace(":", "-") + "-findings.xlsx"
        assert response["Content-Disposition"] == f'attachment; filename="{expected_name}"'
        assert response["X-Report-Digest"] == report.digest

    def test_summary_first_then_findings(self, client, auditor_key, report):
        data = streamed_body(api_get(client, auditor_key, api_path(report, "xlsx")))

        assert list(read_xlsx(data)) == ["Summary", "Findings"]

    def test_summary_facts(self, client, auditor_key, report, entity):
        data = streamed_body(api_get(client, auditor_key, api_path(report, "xlsx")))

        cells = summary_cells(data)
        assert cells["Report ID"] == Cell("string", report.public_id)
        assert cells["Digest"] == Cell("string", report.digest)
        assert cells["Regulation"] == Cell("string", "SOC2")
        assert cells["Entity"] == Cell("string", entity.name)
        assert cells["Entity ID"] == Cell("string", str(entity.pk))
        assert cells["Period start"] == Cell("string", report.period_start.isoformat())
        assert cells["Period end"] == Cell("string", report.period_end.isoformat())
        assert cells["Time zone"] == Cell("string", "Europe/Berlin")

    def test_summary_numbers_numeric(self, client, auditor_key, report):
        data = streamed_body(api_get(client, auditor_key, api_path(report, "xlsx")))

        cells = summary_cells(data)
        summary = report.summary
        assert cells["Compliance score (%)"] == Cell("number", summary["compliance_score"])
        assert cells["Previous period score (%)"] == Cell("number", 100.0)
        assert cells["Controls assessed"] == Cell("number", summary["controls"]["assessed"])
        assert cells["Controls not applicable"] == Cell("number", 0)
        assert cells["Checks"] == Cell("number", summary["checks"]["total"])
        assert cells["Open findings, high"] == Cell("number", 1)
        assert cells["Open findings, medium"] == Cell("number", 1)

    def test_negative_change_stays_number(self, client, auditor_key, report):
        data = streamed_body(api_get(client, auditor_key, api_path(report, "xlsx")))

        change = report.summary["previous_period"]["change"]
        assert change < 0
        assert summary_cells(data)["Score change (points)"] == Cell("number", change)

    def test_hostile_text_is_string(self, client, auditor_key, report):
        data = streamed_body(api_get(client, auditor_key, api_path(report, "xlsx")))

        rows = read_xlsx(data)["Findings"]
        assert values(rows[0]) == HEADER
        titles = {row[0].value: row[4] for row in rows[1:]}
        assert titles["CC6.1"] == Cell("string", "'" + HOSTILE_TITLES[0])
        assert titles["CC7.2"] == Cell("string", "'+1+1")
        assert titles["CC8.1"] == Cell("string", "'-2+3")
        assert titles["A1.2"] == Cell("string", "'@SUM(A1)")
        cc61 = next(row for row in rows if row[0].value == "CC6.1")
        assert cc61[5] == Cell("string", "'\t=cmd|' /C calc'!A0")
        assert cc61[6] == Cell("string", "'\r=1+1")
        assert not xlsx_has_formula(data)

    def test_findings_match_csv(self, client, auditor_key, report):
        csv_rows = read_csv(streamed_body(api_get(client, auditor_key, api_path(report, "csv"))))
        data = streamed_body(api_get(client, auditor_key, api_path(report, "xlsx")))

        xlsx_rows = read_xlsx(data)["Findings"]
        assert len(xlsx_rows) == len(csv_rows)
        for xlsx_row, csv_row in zip(xlsx_rows[1:], csv_rows[1:], strict=True):
            assert xlsx_row[9] == Cell("number", float(csv_row[9]))
            as_text = [cell.value if cell else "" for cell in xlsx_row]
            as_text[9] = csv_row[9]
            # The sheet leaves out empty cells at the end of a row, such as an open remediation.
            as_text += [""] * (len(csv_row) - len(as_text))
            assert as_text == csv_row

    def test_empty_report_has_blank_score(self, client, auditor_key, tenant, entity):
        empty = generate(tenant, entity)

        data = streamed_body(api_get(client, auditor_key, api_path(empty, "xlsx")))

        cells = summary_cells(data)
        assert "Compliance score (%)" in cells
        assert cells["Compliance score (%)"] is None
        assert cells["Controls assessed"] == Cell("number", 0)
        assert len(read_xlsx(data)["Findings"]) == 1


@pytest.mark.django_db
class TestReportExportRules:
    @pytest.mark.parametrize("file_format", ["csv", "xlsx"])
    def test_generating_is_409(self, client, auditor_key, entity, file_format):
        pending = make_report_row(entity, ReportStatus.GENERATING)

        response = api_get(client, auditor_key, api_path(pending, file_format))

        assert response.status_code == 409
        assert response.json()["code"] == "conflict"
        assert "still generating" in response.json()["message"]

    @pytest.mark.parametrize("file_format", ["csv", "xlsx"])
    def test_failed_is_409(self, client, auditor_key, entity, file_format):
        failed = make_report_row(entity, ReportStatus.FAILED)

        response = api_get(client, auditor_key, api_path(failed, file_format))

        assert response.status_code == 409
        assert "OperationalError" in response.json()["message"]

    @pytest.mark.parametrize("file_format", ["csv", "xlsx"])
    def test_other_tenant_is_404(
        self, client, other_tenant, other_entity, issue_key, report, file_format
    ):
        foreign_key = issue_key(other_tenant, role=Role.ADMIN)

        response = api_get(client, foreign_key, api_path(report, file_format))

        assert response.status_code == 404
        assert response.json()["code"] == "not_found"

    def test_malformed_id_is_400(self, client, auditor_key):
        response = api_get(client, auditor_key, "/v1/compliance/reports/report-1/findings.csv")

        assert response.status_code == 400
        assert "id" in response.json()["details"]

    def test_needs_credential(self, client, report):
        response = client.get(api_path(report, "csv"))

        assert response.status_code == 401

    def test_never_aggregates_again(self, client, auditor_key, report, entity, monkeypatch):
        before = streamed_body(api_get(client, auditor_key, api_path(report, "csv")))
        later = make_check(entity, "SOC2", timezone.now(), [("CC9.9", "fail", "critical")])
        later.findings.update(title="Later finding")

        def fail(*args, **kwargs):
            raise AssertionError("an export must not aggregate")

        monkeypatch.setattr(aggregation, "build_report", fail)
        monkeypatch.setattr(services, "build_report", fail)
        after = streamed_body(api_get(client, auditor_key, api_path(report, "csv")))

        assert after == before
        assert b"Later finding" not in after


@pytest.mark.django_db
class TestPageExports:
    @pytest.mark.parametrize("file_format", ["csv", "xlsx"])
    def test_page_matches_api(self, client, login_as, auditor_key, report, file_format):
        from_api = streamed_body(api_get(client, auditor_key, api_path(report, file_format)))
        login_as(Role.AUDITOR)

        response = client.get(page_path(report, file_format))

        assert response.status_code == 200
        assert response["X-Report-Digest"] == report.digest
        body = streamed_body(response)
        if file_format == "csv":
            assert body == from_api
        else:
            assert read_xlsx(body) == read_xlsx(from_api)

    @pytest.mark.parametrize("status", [ReportStatus.GENERATING, ReportStatus.FAILED])
    def test_page_not_ready_is_409(self, client, login_as, entity, status):
        login_as(Role.AUDITOR)
        pending = make_report_row(entity, status)

        response = client.get(page_path(pending, "csv"))

        assert response.status_code == 409
        assert f"is {status}" in response.content.decode()

    def test_page_other_tenant_is_404(self, client, login_as, report, other_tenant):
        login_as(Role.ADMIN, username="globex-admin", member_of=other_tenant)

        response = client.get(page_path(report, "xlsx"))

        assert response.status_code == 404

    def test_page_needs_login(self, client, report):
        response = client.get(page_path(report, "csv"))

        assert response.status_code == 302
        assert response["Location"].startswith(reverse("web:login"))

    def test_detail_links_downloads(self, client, login_as, report):
        login_as(Role.AUDITOR)

        page = client.get(reverse("web:report-detail", kwargs={"report_id": report.pk}))

        text = page.content.decode()
        assert f'href="{page_path(report, "csv")}"' in text
        assert f'href="{page_path(report, "xlsx")}"' in text

    def test_detail_hides_links_until_ready(self, client, login_as, entity):
        login_as(Role.AUDITOR)
        pending = make_report_row(entity, ReportStatus.GENERATING)

        page = client.get(reverse("web:report-detail", kwargs={"report_id": pending.pk}))

        assert page_path(pending, "csv") not in page.content.decode()


# One source of numbers


def page_numbers(text):
    """Read the score and counts from the executive summary of the report page."""
    text = html.unescape(text)
    score = re.search(r'<p class="score">([\d.]+)\s%</p>', text)
    numbers = {"score": float(score.group(1))}
    for label in ("Assessed", "Passing", "Failing"):
        match = re.search(rf"<dt>{label}</dt><dd>(\d+)</dd>", text)
        numbers[label.lower()] = int(match.group(1))
    for severity, label in SEVERITY_LABELS.items():
        match = re.search(rf"severity--{severity}\">{label}</span></dt><dd>(\d+)</dd>", text)
        numbers[severity] = int(match.group(1))
    return numbers


def pdf_numbers(pdf_bytes):
    """Read the score and counts from the executive summary page of the PDF."""
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(pdf_bytes)).pages]
    summary = next(text for text in pages if "Executive summary" in text)
    score = re.search(r"Compliance score\s+([\d.]+) %", summary)
    numbers = {"score": float(score.group(1))}
    controls = summary[summary.index("Controls") :]
    for label in ("Assessed", "Passing", "Failing"):
        numbers[label.lower()] = int(re.search(rf"{label}\s+(\d+)", controls).group(1))
    open_findings = summary[summary.index("Open findings by severity") :]
    for severity, label in SEVERITY_LABELS.items():
        numbers[severity] = int(re.search(rf"{label}\s+(\d+)", open_findings).group(1))
    return numbers


def xlsx_numbers(data):
    cells = summary_cells(data)
    numbers = {
        "score": cells["Compliance score (%)"].value,
        "assessed": cells["Controls assessed"].value,
        "passing": cells["Controls passing"].value,
        "failing": cells["Controls failing"].value,
    }
    for severity in SEVERITY_LABELS:
        numbers[severity] = cells[f"Open findings, {severity}"].value
    return numbers


def csv_numbers(rows, score):
    """Count the CSV's per-control rows. The CSV has no score, so the caller passes it."""
    statuses = [row[2] for row in rows[1:]]
    numbers = {
        "score": score,
        "passing": statuses.count("pass"),
        "failing": statuses.count("fail"),
    }
    numbers["assessed"] = numbers["passing"] + numbers["failing"]
    for severity in SEVERITY_LABELS:
        numbers[severity] = sum(1 for row in rows[1:] if row[2] == "fail" and row[3] == severity)
    return numbers


def json_numbers(body):
    summary = body["summary"]
    numbers = {
        "score": summary["compliance_score"],
        "assessed": summary["controls"]["assessed"],
        "passing": summary["controls"]["passing"],
        "failing": summary["controls"]["failing"],
    }
    numbers.update(summary["open_findings_by_severity"])
    return numbers


@pytest.mark.django_db
def test_numbers_agree_everywhere(client, login_as, auditor_key, report, media_root):
    body = api_get(client, auditor_key, f"/v1/compliance/reports/{report.public_id}").json()
    csv_rows = read_csv(streamed_body(api_get(client, auditor_key, api_path(report, "csv"))))
    xlsx = streamed_body(api_get(client, auditor_key, api_path(report, "xlsx")))
    pdf = streamed_body(
        api_get(client, auditor_key, f"/v1/compliance/reports/{report.public_id}/pdf")
    )
    login_as(Role.AUDITOR)
    page = client.get(reverse("web:report-detail", kwargs={"report_id": report.pk}))

    expected = json_numbers(body)
    assert expected == {
        "score": 33.3,
        "assessed": 3,
        "passing": 1,
        "failing": 2,
        "critical": 0,
        "high": 1,
        "medium": 1,
        "low": 0,
    }
    assert page_numbers(page.content.decode()) == expected
    assert xlsx_numbers(xlsx) == expected
    assert csv_numbers(csv_rows, expected["score"]) == expected
    assert pdf_numbers(pdf) == expected


def make_remediation_history(entity):
    """Fail three controls, then fix two of them: after 2 d 6 h and after 1 d."""
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    failed_at = now - dt.timedelta(days=4)
    failing = [
        (control, FindingStatus.FAIL, Severity.HIGH) for control in ("CC6.1", "CC7.2", "CC8.1")
    ]
    make_check(entity, "SOC2", failed_at, failing)
    make_check(
        entity,
        "SOC2",
        failed_at + dt.timedelta(days=1),
        [("CC7.2", FindingStatus.PASS, Severity.HIGH)],
    )
    make_check(
        entity,
        "SOC2",
        failed_at + dt.timedelta(days=2, hours=6),
        [("CC6.1", FindingStatus.PASS, Severity.HIGH)],
    )


def normalised(text):
    return " ".join(text.split())


@pytest.mark.django_db
def test_remediation_agrees_everywhere(client, login_as, auditor_key, tenant, entity, media_root):
    make_remediation_history(entity)
    report = generate(tenant, entity)
    body = api_get(client, auditor_key, f"/v1/compliance/reports/{report.public_id}").json()
    csv_rows = read_csv(streamed_body(api_get(client, auditor_key, api_path(report, "csv"))))
    xlsx = streamed_body(api_get(client, auditor_key, api_path(report, "xlsx")))
    pdf = streamed_body(
        api_get(client, auditor_key, f"/v1/compliance/reports/{report.public_id}/pdf")
    )
    login_as(Role.AUDITOR)
    page = client.get(reverse("web:report-detail", kwargs={"report_id": report.pk}))

    seconds = {
        entry["control_id"]: entry["time_to_remediate_seconds"] for entry in body["findings"]
    }
    assert seconds == {"CC6.1": 194400, "CC7.2": 86400, "CC8.1": None}
    assert body["summary"]["remediation"] == {
        "remediated_controls": 2,
        "still_failing_controls": 1,
        "median_time_to_remediate_seconds": 140400,
    }

    header = csv_rows[0]
    column = header.index("Time to remediate (s)")
    state_column = header.index("Remediation state")
    csv_seconds = {row[0]: row[column] for row in csv_rows[1:]}
    assert csv_seconds == {"CC6.1": "194400", "CC7.2": "86400", "CC8.1": ""}
    assert {row[0]: row[state_column] for row in csv_rows[1:]}["CC8.1"] == "still_failing"

    cells = summary_cells(xlsx)
    assert cells["Median time to remediate (s)"].value == 140400
    assert cells["Controls remediated"].value == 2
    assert cells["Controls still failing"].value == 1

    summary_line = "Median time to remediate: 1 d 15 h (2 controls remediated, 1 still failing)."
    page_text = normalised(html.unescape(page.content.decode()))
    assert summary_line in page_text
    assert "after 2 d 6 h" in page_text
    assert "after 1 d<" in page_text
    assert "Still failing since" in page_text

    pdf_text = normalised(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages))
    assert summary_line in pdf_text
    assert "after 2 d 6 h" in pdf_text
    assert "after 1 d" in pdf_text
    assert "Still failing since" in pdf_text
