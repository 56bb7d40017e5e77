"""Period reports: the aggregated, immutable view of an entity's checks."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from ulid import ULID

from compliance.catalog.models import Regulation
from compliance.inventory.models import Entity
from compliance.tenancy.models import Tenant
from compliance.tenancy.scope import reports_within_scope

REPORT_ID_PREFIX = "maip-report:"


def new_report_uuid():
    """Return a ULID as a UUID, so ids sort by creation time and fit a UUID column."""
    return ULID().to_uuid()


def report_public_id(report_uuid):
    return f"{REPORT_ID_PREFIX}{ULID.from_uuid(report_uuid)}"


def parse_report_public_id(raw):
    """Return the UUID for ``maip-report:<ULID>``, or ``None`` if ``raw`` is malformed."""
    if not raw.startswith(REPORT_ID_PREFIX):
        return None
    try:
        return ULID.from_str(raw.removeprefix(REPORT_ID_PREFIX)).to_uuid()
    except ValueError:
        return None


class ReportStatus(models.TextChoices):
    GENERATING = "generating", "Generating"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class ReportQuerySet(models.QuerySet):
    def for_tenant(self, tenant):
        """Return the tenant's reports within the caller's access scope."""
        return reports_within_scope(self.filter(tenant=tenant), tenant)


class Report(models.Model):
    """A period report of one entity against one regulation; immutable once ready."""

    id = models.UUIDField(primary_key=True, default=new_report_uuid, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="reports")
    entity = models.ForeignKey(Entity, on_delete=models.CASCADE, related_name="reports")
    regulation = models.CharField(max_length=16, choices=Regulation.choices)
    period_start = models.DateField()
    period_end = models.DateField()
    status = models.CharField(
        max_length=16, choices=ReportStatus.choices, default=ReportStatus.GENERATING
    )
    summary = models.JSONField(null=True, blank=True)
    findings = models.JSONField(null=True, blank=True)
    digest = models.CharField(max_length=71, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="requested_reports",
    )
    requested_by_key = models.ForeignKey(
        "keys.ApiKey",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="requested_reports",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    generated_at = models.DateTimeField(null=True, blank=True)
    pdf = models.FileField(upload_to="reports/", blank=True)
    pdf_sha256 = models.CharField(max_length=64, blank=True)
    # Generation state, which the conditional updates in services.py read and
    # write. enqueued_at is when a generation task was last enqueued,
    # claimed_at is when a worker (or the request itself) last claimed the
    # report, and attempts counts its claims.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    objects = ReportQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-created_at", "-id"], name="report_tenant_idx"),
            models.Index(
                fields=["claimed_at"],
                name="report_generating_idx",
                condition=Q(status=ReportStatus.GENERATING),
            ),
        ]

    def __str__(self):
        return f"{self.public_id} ({self.regulation}, {self.period_start}..{self.period_end})"

    @property
    def public_id(self):
        return report_public_id(self.id)

    @property
    def period_days(self):
        return (self.period_end - self.period_start).days + 1
