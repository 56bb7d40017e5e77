"""Compliance checks of one entity against one regulation, and their findings per control."""

import uuid

from django.db import models

from compliance.catalog.models import Regulation, Severity
from compliance.inventory.models import Entity
from compliance.tenancy.models import Tenant
from compliance.tenancy.scope import within_scope


class CheckStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    PARTIAL = "partial", "Partial"


class CheckSource(models.TextChoices):
    AUTOMATED = "automated", "Automated"
    IMPORTED = "imported", "Imported"
    API = "api", "API"


class FindingStatus(models.TextChoices):
    PASS = "pass", "Pass"
    FAIL = "fail", "Fail"
    NOT_APPLICABLE = "not_applicable", "Not applicable"
    NOT_ASSESSED = "not_assessed", "Not assessed"


def status_from_findings(findings):
    """Return a check's status from its findings.

    Failed on a failing control of high or critical severity, partial on
    other failures, and passed when no control failed and at least one
    passed. A check in which no control could be assessed (every finding
    not assessed or not applicable) is partial, because nothing in it shows
    compliance.
    """
    failures = [finding for finding in findings if finding.status == FindingStatus.FAIL]
    if any(Severity.rank(finding.severity) >= Severity.rank(Severity.HIGH) for finding in failures):
        return CheckStatus.FAILED
    if failures:
        return CheckStatus.PARTIAL
    if not any(finding.status == FindingStatus.PASS for finding in findings):
        return CheckStatus.PARTIAL
    return CheckStatus.PASSED


class CheckQuerySet(models.QuerySet):
    def for_tenant(self, tenant):
        """Return the tenant's checks within the caller's access scope."""
        return within_scope(self.filter(tenant=tenant), tenant, "created_at")


class FindingQuerySet(models.QuerySet):
    def for_tenant(self, tenant):
        """Return the tenant's findings within the caller's access scope."""
        return within_scope(self.filter(tenant=tenant), tenant, "observed_at")


class Check(models.Model):
    """One evaluation of an entity against a regulation, automated or imported."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="checks")
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="checks")
    regulation = models.CharField(max_length=16, choices=Regulation.choices)
    scope = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=CheckStatus.choices, default=CheckStatus.PENDING
    )
    source = models.CharField(max_length=16, choices=CheckSource.choices)
    # The tool that produced an imported check, e.g. "prowler".
    source_name = models.CharField(max_length=64, blank=True)
    # SHA-256 of the imported file; a second import of the same file is a no-op.
    source_digest = models.CharField(max_length=64, blank=True)
    is_demo = models.BooleanField(default=False, help_text="Generated demo history, not evidence.")
    # The versions an automated check evaluated, so an old result can be explained.
    catalog_version = models.CharField(max_length=32, blank=True)
    rule_set_version = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = CheckQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="check_tenant_created_idx"),
            models.Index(
                fields=["tenant", "entity", "regulation", "created_at"],
                name="check_entity_reg_created_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "entity", "regulation", "source_digest"],
                condition=~models.Q(source_digest=""),
                name="check_import_once",
            )
        ]

    def __str__(self):
        return f"{self.regulation} check of {self.entity_id} at {self.created_at:%Y-%m-%d %H:%M}"


class ImportedFile(models.Model):
    """A file imported for an entity, kept so that importing it again changes nothing.

    A file whose records map to no control stores no check, so without this
    row a repeated import would look like the first one.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="imported_files")
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="imported_files")
    source_digest = models.CharField(max_length=64, help_text="SHA-256 of the imported bytes.")
    format = models.CharField(max_length=32)
    record_count = models.PositiveIntegerField(default=0)
    unmapped_count = models.PositiveIntegerField(default=0)
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "entity", "source_digest"], name="imported_file_once"
            )
        ]

    def __str__(self):
        return f"{self.format} file {self.source_digest[:12]} imported for {self.entity_id}"


class Finding(models.Model):
    """The outcome of one control in one check.

    ``tenant``, ``entity``, ``regulation`` and ``observed_at`` are copied from
    the check so that "latest status per control" is one indexed query.
    """

    # Named compliance_check because a field called "check" would hide Model.check().
    compliance_check = models.ForeignKey(Check, on_delete=models.CASCADE, related_name="findings")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="+")
    regulation = models.CharField(max_length=16, choices=Regulation.choices)
    observed_at = models.DateTimeField()
    finding_id = models.CharField(max_length=200)
    control_id = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=FindingStatus.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    title = models.CharField(max_length=500)
    description = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    remediation = models.TextField(blank=True)

    objects = FindingQuerySet.as_manager()

    class Meta:
        ordering = ["control_id", "id"]
        indexes = [
            models.Index(
                fields=["tenant", "entity", "regulation", "control_id", "observed_at"],
                name="finding_latest_per_control_idx",
            ),
            # Serves the report's failure-run lookups: the latest fail or the first
            # pass of one control around an instant is one index seek.
            models.Index(
                fields=["tenant", "entity", "regulation", "control_id", "status", "observed_at"],
                name="finding_control_status_idx",
            ),
        ]

    def __str__(self):
        return f"{self.control_id} {self.status} ({self.finding_id})"


class DailyControlRollup(models.Model):
    """The latest finding of one control on one day, with the day's earliest time and count.

    One row per tenant, entity, regulation, control and local day in the
    tenant's time zone. ``compliance.checks.rollups.record_rollups`` writes
    it in the transaction that stores the findings, so report aggregation
    reads one row per control and day instead of every finding.
    """

    # The unique constraint's first column is the tenant, so it serves as the tenant's index.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="+")
    regulation = models.CharField(max_length=16, choices=Regulation.choices)
    control_id = models.CharField(max_length=64)
    day = models.DateField()
    status = models.CharField(max_length=16, choices=FindingStatus.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    # Position of (status, severity) in the tie-break order for findings
    # observed at the same instant; the lower position wins.
    tie_rank = models.PositiveSmallIntegerField()
    observed_at = models.DateTimeField()
    # No database constraint and no cascade from these two, so that deleting
    # findings stays a bulk delete. The rows are deleted with their entity or tenant.
    latest_finding = models.ForeignKey(
        Finding, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    compliance_check = models.ForeignKey(
        Check, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    first_observed_at = models.DateTimeField()
    observations = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "entity", "regulation", "day", "control_id"],
                name="control_rollup_day_unique",
            )
        ]
        indexes = [
            # Covers the report's aggregate over a period's days, so both databases
            # serve it from the index alone (PostgreSQL once vacuum marked the pages).
            models.Index(
                fields=[
                    "tenant",
                    "entity",
                    "regulation",
                    "day",
                    "control_id",
                    "tie_rank",
                    "first_observed_at",
                    "observations",
                ],
                name="control_rollup_report_idx",
            ),
            # Serves reads of every entity's day rows in a range of days, as the
            # overview's posture and the controls list do. It contains every column
            # they read, so PostgreSQL can answer from the index alone.
            models.Index(
                fields=["tenant", "day", "entity", "regulation", "control_id", "tie_rank"],
                name="control_rollup_tenant_day_idx",
            ),
        ]

    def __str__(self):
        return f"{self.control_id} on {self.day}: {self.status}"


class MonthlyControlRollup(models.Model):
    """The latest finding of one control in one local calendar month, folded from its day rows.

    ``month`` is the first day of the month and ``last_day`` the day of the
    month's latest finding, so the row equals the fold of the month's
    ``DailyControlRollup`` rows. Long reports read one row per control and
    whole month instead of one per day, which keeps a year's report to about
    twelve rows per control.
    """

    # The unique constraint's first column is the tenant, so it serves as the tenant's index.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="+")
    regulation = models.CharField(max_length=16, choices=Regulation.choices)
    control_id = models.CharField(max_length=64)
    month = models.DateField()
    last_day = models.DateField()
    status = models.CharField(max_length=16, choices=FindingStatus.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    tie_rank = models.PositiveSmallIntegerField()
    observed_at = models.DateTimeField()
    # As on the day rows: no constraint and no cascade, so deleting findings stays a bulk delete.
    latest_finding = models.ForeignKey(
        Finding, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    compliance_check = models.ForeignKey(
        Check, on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    first_observed_at = models.DateTimeField()
    observations = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "entity", "regulation", "month", "control_id"],
                name="control_rollup_month_unique",
            )
        ]
        indexes = [
            # Covers the report's aggregate over whole months, as control_rollup_report_idx
            # covers it over days.
            models.Index(
                fields=[
                    "tenant",
                    "entity",
                    "regulation",
                    "month",
                    "control_id",
                    "last_day",
                    "tie_rank",
                    "first_observed_at",
                    "observations",
                ],
                name="control_month_report_idx",
            )
        ]

    def __str__(self):
        return f"{self.control_id} in {self.month:%Y-%m}: {self.status}"


class DailyCheckRollup(models.Model):
    """The number of checks by status of one entity and regulation on one local day."""

    # The unique constraint's first column is the tenant, so it serves as the tenant's index.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="+")
    regulation = models.CharField(max_length=16, choices=Regulation.choices)
    day = models.DateField()
    pending = models.PositiveIntegerField(default=0)
    passed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    partial = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "entity", "regulation", "day"], name="check_rollup_day_unique"
            )
        ]

    def __str__(self):
        return f"{self.regulation} checks of {self.entity_id} on {self.day}"
