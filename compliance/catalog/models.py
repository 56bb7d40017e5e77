"""Regulations and their controls, loaded from the data files in ``catalog/data``."""

from django.db import models


class Regulation(models.TextChoices):
    SOC2 = "SOC2", "SOC 2"
    ISO27001 = "ISO27001", "ISO/IEC 27001:2022"
    GDPR = "GDPR", "GDPR"
    HIPAA = "HIPAA", "HIPAA Security Rule"
    EU_AI_ACT = "EU_AI_ACT", "EU AI Act"

    @classmethod
    def parse(cls, raw):
        """Return the member for ``raw`` in any letter case, or raise ``ValueError``."""
        value = str(raw).strip().upper()
        if value not in cls.values:
            raise ValueError(
                f"Unknown regulation {raw!r}; expected one of {', '.join(cls.values)}."
            )
        return cls(value)

    @property
    def framework(self):
        """The lower-case spelling used by the check endpoints (``soc2``, ``eu_ai_act``)."""
        return self.value.lower()


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"

    @classmethod
    def rank(cls, value):
        return {cls.LOW: 1, cls.MEDIUM: 2, cls.HIGH: 3, cls.CRITICAL: 4}[cls(value)]


class Requirement(models.TextChoices):
    """Whether a HIPAA implementation specification is required or addressable."""

    REQUIRED = "required", "Required"
    ADDRESSABLE = "addressable", "Addressable"


class Control(models.Model):
    """One control of a regulation's catalog, identified by its canonical control ID.

    Shipped controls have no tenant and come from ``catalog/data``; a tenant
    may add its own controls to a regulation, which only that tenant sees.
    """

    tenant = models.ForeignKey(
        "tenancy.Tenant",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="controls",
    )
    regulation = models.CharField(max_length=16, choices=Regulation.choices)
    control_id = models.CharField(max_length=64)
    title = models.CharField(max_length=300)
    group = models.CharField(max_length=200, blank=True)
    guidance = models.TextField(blank=True)
    requirement = models.CharField(max_length=16, choices=Requirement.choices, blank=True)
    sort_key = models.PositiveIntegerField(default=0)
    catalog_version = models.CharField(max_length=32)

    class Meta:
        ordering = ["regulation", "sort_key"]
        constraints = [
            models.UniqueConstraint(
                fields=["regulation", "control_id"],
                condition=models.Q(tenant__isnull=True),
                name="control_regulation_id_unique",
            ),
            models.UniqueConstraint(
                fields=["tenant", "regulation", "control_id"],
                condition=models.Q(tenant__isnull=False),
                name="control_tenant_regulation_id_unique",
            ),
        ]

    def __str__(self):
        return f"{self.regulation} {self.control_id} {self.title}"
