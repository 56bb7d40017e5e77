"""The import page: upload a scanner file for an entity, with or without skipping bad records."""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse

from compliance.audit.models import AuditAction, AuditEvent
from compliance.checks.models import Check, Finding
from compliance.tenancy.models import Role

pytestmark = pytest.mark.django_db

URL = reverse("web:import-new")
OCSF_DIR = Path(__file__).resolve().parent / "data" / "ocsf"
GOOD_FILE = OCSF_DIR / "compliance_findings.json"
BAD_RECORD_FILE = OCSF_DIR / "compliance_findings_bad_record.json"
GARAK_REPORT = Path(__file__).resolve().parents[1] / "compliance/demo/data/garak/test.report.jsonl"


def upload(path, name=None):
    return SimpleUploadedFile(name or path.name, path.read_bytes())


def post(client, entity, path, **fields):
    data = {"entity": str(entity.pk), "format": "", "file": upload(path), **fields}
    return client.post(URL, data)


def test_officer_sees_form_with_entity_chosen(client, login_as, entity):
    login_as(Role.OFFICER)

    response = client.get(URL, {"entity": str(entity.pk)})

    assert response.status_code == 200
    assert response.context["form"].initial["entity"] == entity
    assert b'enctype="multipart/form-data"' in response.content


def test_skip_checkbox_beside_label(client, login_as, entity):
    login_as(Role.OFFICER)

    body = client.get(URL).content.decode()

    field = body.split('<div class="field field--checkbox">', 1)[1].split("</form>", 1)[0]
    assert '<label for="id_skip_invalid">Import without the invalid records</label>' in field
    assert 'type="checkbox" name="skip_invalid"' in field
    css = (Path(__file__).resolve().parents[1] / "static" / "css" / "app.css").read_text()
    assert ".field--checkbox {\n  display: grid;" in css


def test_import_creates_checks(client, login_as, entity):
    login_as(Role.OFFICER)

    response = post(client, entity, GOOD_FILE)

    assert response.status_code == 200
    result = response.context["result"]
    assert result.already_imported is False
    assert result.finding_count == 8
    assert Check.objects.filter(entity=entity).count() == len(result.checks)
    body = response.content.decode()
    assert "Imported compliance_findings.json for Claims triage agent" in body
    assert "1 skipped" in body
    assert "OCSF record 6 (array index 5)" in body
    assert "Not imported: none of its standards" in body


def test_import_records_audit_events(client, login_as, entity):
    login_as(Role.ADMIN)

    post(client, entity, BAD_RECORD_FILE, skip_invalid="on")

    check_ids = [str(pk) for pk in Check.objects.values_list("pk", flat=True)]
    events = AuditEvent.objects.filter(action=AuditAction.CREATE, target_id__in=check_ids)
    assert len(check_ids) == 3
    assert events.count() == 3
    for event in events:
        assert event.details["skipped_count"] == 1
        assert event.details["format"] == "ocsf-compliance"


def test_same_file_twice_changes_nothing(client, login_as, entity):
    login_as(Role.OFFICER)
    post(client, entity, GOOD_FILE)

    response = post(client, entity, GOOD_FILE)

    assert response.status_code == 200
    assert response.context["result"].already_imported is True
    assert "was already imported for Claims triage agent; nothing changed" in (
        response.content.decode()
    )
    assert Finding.objects.count() == 8


def test_unmapped_file_twice_says_why(client, login_as, entity):
    login_as(Role.OFFICER)

    first = post(client, entity, GARAK_REPORT)
    second = post(client, entity, GARAK_REPORT)

    first_body = first.content.decode()
    assert "Imported test.report.jsonl for Claims triage agent" in first_body
    assert "so no check was stored" in first_body
    assert "Probe test.Test has no OWASP LLM Top 10 tag in the bundled probe table." in first_body
    second_body = second.content.decode()
    assert "was already imported for Claims triage agent; nothing changed" in second_body
    assert "the earlier import stored no check either" in second_body
    assert not Check.objects.exists()


def test_bad_file_shows_error_and_keeps_input(client, login_as, entity):
    login_as(Role.OFFICER)

    response = client.post(
        URL,
        {
            "entity": str(entity.pk),
            "format": "garak",
            "skip_invalid": "on",
            "file": SimpleUploadedFile("scan.txt", b"no scanner wrote this"),
        },
    )

    assert response.status_code == 400
    assert "scan.txt was not imported, and nothing was stored." in response.content.decode()
    form = response.context["form"]
    assert form["entity"].value() == str(entity.pk)
    assert form["format"].value() == "garak"
    assert form["skip_invalid"].value() is True
    assert not Check.objects.exists()


def test_bad_record_without_option_names_it(client, login_as, entity):
    login_as(Role.OFFICER)

    response = post(client, entity, BAD_RECORD_FILE)

    assert response.status_code == 400
    body = response.content.decode()
    assert "OCSF record 3 (array index 2): invalid severity_id 7." in body
    assert "Import without the invalid records" in body
    assert not Check.objects.exists()


SKIP_HINT = 'tick "Import without the invalid records" and upload the file again'


def test_bad_record_suggests_skipping(client, login_as, entity):
    login_as(Role.OFFICER)

    response = post(client, entity, BAD_RECORD_FILE)

    assert response.status_code == 400
    assert SKIP_HINT in response.content.decode()


def test_unsupported_file_suggests_no_skipping(client, login_as, entity):
    login_as(Role.OFFICER)

    response = client.post(
        URL,
        {
            "entity": str(entity.pk),
            "format": "",
            "file": SimpleUploadedFile("notes.txt", b"no scanner wrote this"),
        },
    )

    assert response.status_code == 400
    body = response.content.decode()
    assert "Unsupported file format." in body
    assert SKIP_HINT not in body


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"class_uid": 2003}]'.encode("utf-16"), "The file is UTF-16"),
        (b"[]", "The file contains no records"),
    ],
)
def test_unreadable_file_says_why(client, login_as, entity, content, message):
    login_as(Role.OFFICER)

    response = client.post(
        URL,
        {
            "entity": str(entity.pk),
            "format": "",
            "file": SimpleUploadedFile("scan.json", content),
        },
    )

    assert response.status_code == 400
    body = response.content.decode()
    assert message in body
    assert "Unsupported file format" not in body


def test_json_lines_error_names_column(client, login_as, entity):
    login_as(Role.OFFICER)
    truncated = b'{"entry_type": "start_run setup", "transient.run_id": "abc\n'

    response = client.post(
        URL,
        {
            "entity": str(entity.pk),
            "format": "garak",
            "file": SimpleUploadedFile("report.jsonl", truncated),
        },
    )

    assert response.status_code == 400
    body = response.content.decode()
    assert "Line 1: invalid JSON at column 55: a string starts here and is never closed." in body
    assert "starting at." not in body


def test_bad_record_with_option_is_skipped(client, login_as, entity):
    login_as(Role.OFFICER)

    response = post(client, entity, BAD_RECORD_FILE, skip_invalid="on")

    assert response.status_code == 200
    result = response.context["result"]
    assert [(skipped.position, skipped.record) for skipped in result.skipped] == [
        (3, "OCSF record 3 (array index 2)")
    ]
    body = response.content.decode()
    assert "Invalid: invalid severity_id 7." in body
    assert Finding.objects.filter(entity=entity).count() == 4


@override_settings(API_MAX_UPLOAD_BYTES=100)
def test_file_over_limit_is_rejected(client, login_as, entity):
    login_as(Role.OFFICER)

    response = post(client, entity, GOOD_FILE)

    assert response.status_code == 413
    assert "over the limit of 100 bytes" in response.content.decode()
    assert not Check.objects.exists()


def test_missing_file_is_a_form_error(client, login_as, entity):
    login_as(Role.OFFICER)

    response = client.post(URL, {"entity": str(entity.pk), "format": ""})

    assert response.status_code == 400
    assert response.context["form"].errors["file"]


@pytest.mark.parametrize("method", ["get", "post"])
def test_auditor_is_forbidden(client, login_as, entity, method):
    login_as(Role.AUDITOR)

    response = client.get(URL) if method == "get" else post(client, entity, GOOD_FILE)

    assert response.status_code == 403
    assert not Check.objects.exists()


def test_other_tenant_entity_is_404(client, login_as, entity, other_entity):
    login_as(Role.ADMIN)

    posted = post(client, other_entity, GOOD_FILE)
    fetched = client.get(URL, {"entity": str(other_entity.pk)})

    assert posted.status_code == 404
    assert fetched.status_code == 404
    assert not Check.objects.exists()


def test_links_from_checks_and_entity_pages(client, login_as, entity):
    login_as(Role.OFFICER)

    checks_page = client.get(reverse("web:check-list"))
    entity_page = client.get(reverse("web:entity-detail", kwargs={"entity_id": entity.pk}))

    assert URL in checks_page.content.decode()
    assert f"{URL}?entity={entity.pk}" in entity_page.content.decode()


def test_auditor_pages_have_no_import_link(client, login_as, entity):
    login_as(Role.AUDITOR)

    checks_page = client.get(reverse("web:check-list"))

    assert URL not in checks_page.content.decode()
