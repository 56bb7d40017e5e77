"""The operator commands: create_tenant, create_api_key and import_results."""

import io
import re
import uuid
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from compliance.checks.models import Check, Finding
from compliance.inventory.models import Entity, EntityType
from compliance.keys.models import ApiKey, parse_key
from compliance.tenancy.models import Membership, Tenant

REPOSITORY = Path(__file__).resolve().parent.parent
SAMPLES_DIR = REPOSITORY / "compliance" / "demo" / "data" / "prowler"
AZURE_CSV = SAMPLES_DIR / "example_output_azure.csv"
AWS_OCSF = SAMPLES_DIR / "example_output_aws.ocsf.json"
GARAK_REPORT = REPOSITORY / "compliance" / "demo" / "data" / "garak" / "test.report.jsonl"

pytestmark = pytest.mark.django_db


def run(*args, **options):
    """Run a command and return ``(stdout, stderr)``."""
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command(*args, stdout=stdout, stderr=stderr, **options)
    return stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def tenant():
    return Tenant.objects.create(slug="acme", name="Acme Health")


@pytest.fixture
def entity(tenant):
    return Entity.objects.create(tenant=tenant, entity_type=EntityType.AGENT, name="Claims agent")


# create_tenant


def test_create_tenant_stores_tenant():
    stdout, _ = run("create_tenant", "north-clinic", "--name", "North Clinic")

    tenant = Tenant.objects.get(slug="north-clinic")
    assert tenant.name == "North Clinic"
    assert tenant.time_zone == "UTC"
    assert stdout == (
        f"Created tenant north-clinic (North Clinic, time zone UTC, id {tenant.pk}).\n"
    )


def test_create_tenant_time_zone():
    run("create_tenant", "berlin", "--name", "Berlin", "--time-zone", "Europe/Berlin")

    assert Tenant.objects.get(slug="berlin").time_zone == "Europe/Berlin"


def test_create_tenant_rejects_duplicate(tenant):
    with pytest.raises(CommandError, match="slug 'acme' already exists"):
        run("create_tenant", "acme", "--name", "Again")
    assert Tenant.objects.count() == 1


def test_create_tenant_rejects_bad_zone():
    with pytest.raises(CommandError, match="time_zone: 'Mars/Olympus' is not an IANA time zone"):
        run("create_tenant", "mars", "--name", "Mars", "--time-zone", "Mars/Olympus")
    assert not Tenant.objects.exists()


def test_create_tenant_rejects_bad_slug():
    with pytest.raises(CommandError, match="Invalid tenant: slug:"):
        run("create_tenant", "not a slug", "--name", "Bad")
    assert not Tenant.objects.exists()


# create_api_key


def test_create_api_key_prints_key_alone(tenant):
    stdout, stderr = run("create_api_key", "--tenant", "acme", "--role", "officer", "--name", "CI")

    api_key = ApiKey.objects.get(tenant=tenant)
    plaintext = stdout.removesuffix("\n")
    assert stdout == plaintext + "\n"
    assert plaintext.startswith(f"cmp_{api_key.lookup}_")
    lookup, secret = parse_key(plaintext)
    assert lookup == api_key.lookup
    assert api_key.matches(secret)
    assert api_key.role == "officer"
    assert api_key.name == "CI"
    assert api_key.expires_at is None
    assert api_key.is_active
    assert plaintext not in stderr
    assert stderr.startswith(f"Issued officer key cmp_{api_key.lookup}_")
    assert "never expires" in stderr


def test_create_api_key_expiry(tenant):
    _, stderr = run(
        "create_api_key",
        "--tenant",
        "acme",
        "--role",
        "auditor",
        "--name",
        "Auditor",
        "--expires-in-days",
        "30",
    )

    api_key = ApiKey.objects.get(tenant=tenant)
    lifetime = api_key.expires_at - api_key.created_at
    assert 29.9 < lifetime.total_seconds() / 86400 <= 30
    assert "expires" in stderr


def test_create_api_key_unknown_tenant():
    with pytest.raises(CommandError, match="Tenant 'nobody' not found"):
        run("create_api_key", "--tenant", "nobody", "--role", "admin", "--name", "X")
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("days", ["0", "-3", "soon"])
def test_create_api_key_bad_expiry(tenant, days):
    with pytest.raises(CommandError, match="--expires-in-days"):
        run(
            "create_api_key",
            "--tenant",
            "acme",
            "--role",
            "admin",
            "--name",
            "X",
            "--expires-in-days",
            days,
        )
    assert not ApiKey.objects.exists()


def test_create_api_key_bad_role(tenant):
    with pytest.raises(CommandError, match="invalid choice: 'owner'"):
        run("create_api_key", "--tenant", "acme", "--role", "owner", "--name", "X")


def test_create_api_key_blank_name(tenant):
    with pytest.raises(CommandError, match="--name must not be blank"):
        run("create_api_key", "--tenant", "acme", "--role", "admin", "--name", "  ")


# import_results


def test_import_results_stores_checks(tenant, entity):
    stdout, _ = run(
        "import_results", str(AZURE_CSV), "--tenant", "acme", "--entity", str(entity.pk)
    )

    assert Check.objects.filter(entity=entity).count() == 3
    assert Finding.objects.filter(entity=entity).count() == 15
    assert "  HIPAA: check " in stdout
    assert stdout.splitlines()[-1] == (
        "Imported example_output_azure.csv (prowler-csv) for Claims agent: 3 checks, "
        "15 findings, 0 of 4 records without a mapped control, 0 records skipped."
    )


def test_import_results_twice_changes_nothing(tenant, entity):
    arguments = ("import_results", str(AWS_OCSF), "--tenant", "acme", "--entity", str(entity.pk))
    run(*arguments)

    stdout, _ = run(*arguments)

    assert Check.objects.count() == 1
    assert Finding.objects.count() == 4
    assert stdout.splitlines()[-1] == (
        "example_output_aws.ocsf.json was already imported for Claims agent; nothing changed "
        "(1 check, 4 findings, 0 records skipped)."
    )


def test_import_results_unmapped_file_twice(tenant, entity):
    arguments = (
        "import_results",
        str(GARAK_REPORT),
        "--tenant",
        "acme",
        "--entity",
        str(entity.pk),
    )

    first, _ = run(*arguments)
    second, _ = run(*arguments)

    assert "  unmapped: Probe test.Test has no OWASP LLM Top 10 tag" in first
    assert first.splitlines()[-1].startswith("Imported test.report.jsonl (garak)")
    assert second.splitlines()[-1] == (
        "test.report.jsonl was already imported for Claims agent; nothing changed "
        "(0 checks, 0 findings, 0 records skipped)."
    )
    assert not Check.objects.exists()


def test_import_results_format_option(tenant, entity):
    with pytest.raises(CommandError, match="CSV header is missing the Prowler column"):
        run(
            "import_results",
            str(AWS_OCSF),
            "--tenant",
            "acme",
            "--entity",
            str(entity.pk),
            "--format",
            "prowler-csv",
        )
    assert not Check.objects.exists()

    run(
        "import_results",
        str(AWS_OCSF),
        "--tenant",
        "acme",
        "--entity",
        str(entity.pk),
        "--format",
        "prowler-ocsf",
    )
    assert Check.objects.count() == 1


def test_import_results_unknown_format_choice(tenant, entity):
    with pytest.raises(CommandError, match="invalid choice: 'nessus'"):
        run(
            "import_results",
            str(AWS_OCSF),
            "--tenant",
            "acme",
            "--entity",
            str(entity.pk),
            "--format",
            "nessus",
        )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (AWS_OCSF.read_text(encoding="utf-8").encode("utf-16"), "The file is UTF-16"),
        (b"[]\n", "The file contains no records"),
    ],
)
def test_import_results_names_unreadable_file(tenant, entity, tmp_path, content, message):
    path = tmp_path / "scan.json"
    path.write_bytes(content)

    with pytest.raises(CommandError) as raised:
        run("import_results", str(path), "--tenant", "acme", "--entity", str(entity.pk))

    assert message in str(raised.value)
    assert "Unsupported file format" not in str(raised.value)
    assert Check.objects.count() == 0


def test_import_results_unknown_tenant(entity):
    with pytest.raises(CommandError, match="Tenant 'nobody' not found"):
        run("import_results", str(AZURE_CSV), "--tenant", "nobody", "--entity", str(entity.pk))


def test_import_results_bad_uuid(tenant):
    with pytest.raises(CommandError, match="--entity must be an entity UUID, got 'entity-1'"):
        run("import_results", str(AZURE_CSV), "--tenant", "acme", "--entity", "entity-1")


def test_import_results_unknown_entity(tenant):
    missing = uuid.uuid4()
    with pytest.raises(CommandError, match=f"Entity {missing} not found in tenant 'acme'"):
        run("import_results", str(AZURE_CSV), "--tenant", "acme", "--entity", str(missing))


def test_import_results_entity_of_other_tenant(tenant, entity):
    Tenant.objects.create(slug="other", name="Other")

    with pytest.raises(CommandError, match=f"Entity {entity.pk} not found in tenant 'other'"):
        run("import_results", str(AZURE_CSV), "--tenant", "other", "--entity", str(entity.pk))
    assert not Check.objects.exists()


def test_import_results_missing_file(tenant, entity, tmp_path):
    missing = tmp_path / "nothing.json"
    with pytest.raises(CommandError, match=f"File not found: {missing}"):
        run("import_results", str(missing), "--tenant", "acme", "--entity", str(entity.pk))


def test_import_results_malformed_file(tenant, entity, tmp_path):
    broken = tmp_path / "broken.csv"
    text = AZURE_CSV.read_text(encoding="utf-8").replace(";PASS;", ";MAYBE;", 1)
    broken.write_text(text, encoding="utf-8")

    with pytest.raises(CommandError) as excinfo:
        run("import_results", str(broken), "--tenant", "acme", "--entity", str(entity.pk))

    message = str(excinfo.value)
    assert "stored nothing" in message
    assert "CSV row 1 (line 2): invalid STATUS 'MAYBE'" in message
    assert "Pass --skip-invalid to import the valid records." in message
    assert not Check.objects.exists()


def test_import_results_skip_invalid(tenant, entity, tmp_path):
    broken = tmp_path / "broken.csv"
    text = AZURE_CSV.read_text(encoding="utf-8").replace(";PASS;", ";MAYBE;", 1)
    broken.write_text(text, encoding="utf-8")
    arguments = ("import_results", str(broken), "--tenant", "acme", "--entity", str(entity.pk))

    stdout, _ = run(*arguments, "--skip-invalid")
    again, _ = run(*arguments, "--skip-invalid")

    assert "  skipped CSV row 1 (line 2): invalid STATUS 'MAYBE'." in stdout
    assert stdout.splitlines()[-1].endswith(
        "0 of 3 records without a mapped control, 1 record skipped."
    )
    assert again.splitlines()[-1].endswith("1 record skipped).")
    assert Check.objects.filter(entity=entity).exists()


def test_create_member_new_user(tenant):
    stdout = io.StringIO()

    call_command(
        "create_member",
        "--tenant",
        tenant.slug,
        "--username",
        "dana",
        "--role",
        "auditor",
        stdout=stdout,
    )

    password = re.search(r"Password for new user dana: (\S+)", stdout.getvalue()).group(1)
    user = get_user_model().objects.get(username="dana")
    assert user.check_password(password)
    assert Membership.objects.get(user=user, tenant=tenant).role == "auditor"
    assert stdout.getvalue().splitlines()[-1] == (f"Added dana as Auditor in tenant {tenant.slug}.")


def test_create_member_existing_user_keeps_password(tenant, other_tenant):
    user = get_user_model().objects.create_user("erin", password="kept-password")
    Membership.objects.create(user=user, tenant=tenant, role="auditor")
    stdout = io.StringIO()

    call_command(
        "create_member",
        "--tenant",
        tenant.slug,
        "--username",
        "erin",
        "--role",
        "admin",
        stdout=stdout,
    )

    user.refresh_from_db()
    assert user.check_password("kept-password")
    assert "Password" not in stdout.getvalue()
    assert Membership.objects.get(user=user, tenant=tenant).role == "admin"
    assert not Membership.objects.filter(user=user, tenant=other_tenant).exists()


def test_create_member_unknown_tenant(db):
    with pytest.raises(CommandError, match="Tenant 'nowhere' not found"):
        call_command("create_member", "--tenant", "nowhere", "--username", "x", "--role", "admin")
