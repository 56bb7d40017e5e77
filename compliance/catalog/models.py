"""Regulations and their controls, loaded from the data files in ``catalog/data``.

Tenants may add their own controls and automated rules next to the shipped ones.
"""

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
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


# Tenant controls sort after every shipped control of their regulation, by control ID.
TENANT_CONTROL_SORT_KEY = 1_000_000


class ControlQuerySet(models.QuerySet):
    def shipped(self):
        """Return the controls of the bundled catalog, which belong to no tenant."""
        return self.filter(tenant__isnull=True)

    def visible_to(self, tenant):
        """Return the shipped controls plus ``tenant``'s own, and no other tenant's."""
        return self.filter(models.Q(tenant__isnull=True) | models.Q(tenant=tenant))

    def find(self, regulation, raw_control_id):
        """Return the control of ``regulation`` with ID ``raw_control_id`` in any spelling.

        Call it on ``visible_to(tenant)``. Raises ``ValidationError`` keyed by
        ``control_id`` when the ID is malformed or no such control is visible.
        """
        from compliance.catalog.canonical import canonical_form

        try:
            control_id = canonical_form(regulation, raw_control_id)
        except ValueError as error:
            raise ValidationError({"control_id": str(error)}) from error
        control = self.filter(regulation=regulation, control_id=control_id).first()
        if control is None:
            raise ValidationError(
                {
                    "control_id": f"{Regulation(regulation).label} has no control {control_id} "
                    "in the shipped catalog or in your controls."
                }
            )
        return control


class Control(models.Model):
    """One control of a regulation's catalog, identified by its canonical control ID.

    Shipped controls have no tenant and come from ``catalog/data``; a tenant
    may add its own controls to a regulation, visible to that tenant only.
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

    objects = ControlQuerySet.as_manager()

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

    @property
    def is_shipped(self):
        return self.tenant_id is None

    def audit_details(self):
        """Return what the audit trail records about a change of this control."""
        return {"regulation": self.regulation, "control_id": self.control_id}

    def clean(self):
        """Validate a tenant's control: a canonical ID that no visible control has yet.

        Shipped controls come from the catalog file and are not validated here.
        Raises ``ValidationError`` keyed by field name.
        """
        if self.is_shipped:
            return
        if self.regulation not in Regulation.values:
            raise ValidationError({"regulation": f"Unknown regulation {self.regulation!r}."})
        self.title = self.title.strip()
        if not self.title:
            raise ValidationError({"title": "Enter a title."})
        self.control_id = self._canonical_control_id()
        self.sort_key = TENANT_CONTROL_SORT_KEY

        clashes = Control.objects.visible_to(self.tenant_id).filter(
            regulation=self.regulation, control_id=self.control_id
        )
        clash = clashes.exclude(pk=self.pk).first()
        if clash is not None:
            owner = "the shipped catalog" if clash.is_shipped else "your controls"
            raise ValidationError(
                {
                    "control_id": f"{Regulation(self.regulation).label} control "
                    f"{self.control_id} already exists in {owner}; choose another ID."
                }
            )

    def _canonical_control_id(self):
        # Imported here because canonical.py reads the catalog loader, which imports this module.
        from compliance.catalog.canonical import canonical_form

        try:
            return canonical_form(self.regulation, self.control_id)
        except ValueError as error:
            raise ValidationError({"control_id": str(error)}) from error


def all_entity_types():
    """Return every entity type, the default scope of a tenant rule.

    These are the values of ``inventory.models.EntityType``, which the catalog
    cannot import because it sits below the inventory; a test keeps them equal.
    """
    return ["agent", "model", "dataset", "workflow"]


class TenantRule(models.Model):
    """A tenant's own automated rule: a CEL expression over facts, tied to one control.

    The control is a shipped control or one of the tenant's own, of the same
    regulation. ``facts`` lists the fact paths the expression reads; ``clean``
    derives it from the expression, so it is never entered by hand.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="rules")
    regulation = models.CharField(max_length=16, choices=Regulation.choices)
    # Deleting a control, also a shipped one that the catalog file drops, deletes its rules.
    control = models.ForeignKey(Control, on_delete=models.CASCADE, related_name="tenant_rules")
    title = models.CharField(max_length=300)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.MEDIUM)
    entity_types = models.JSONField(default=all_entity_types)
    expression = models.TextField()
    facts = models.JSONField(default=list, editable=False)
    remediation = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["regulation", "created_at", "id"]
        indexes = [models.Index(fields=["tenant", "regulation"], name="tenantrule_tenant_reg")]

    def __str__(self):
        return f"{self.regulation} {self.title}"

    def audit_details(self):
        """Return what the audit trail records about a change of this rule."""
        return {
            "regulation": self.regulation,
            "control_id": self.control.control_id,
            "title": self.title,
            "expression": self.expression,
            "enabled": self.enabled,
        }

    @property
    def rule_id(self):
        """The rule's ID in findings: ``rule:<REGULATION>:<rule_id>``."""
        return f"tenant-{self.pk}"

    def clean(self):
        """Validate the control, the entity types and the CEL expression.

        Sets ``facts`` to the facts the expression reads. Raises
        ``ValidationError`` keyed by field name.
        """
        errors = {}
        if self.regulation not in Regulation.values:
            errors["regulation"] = f"Unknown regulation {self.regulation!r}."
        self.title = self.title.strip()
        if not self.title:
            errors["title"] = "Enter a title."
        control_error = self._control_error()
        if control_error:
            errors["control"] = control_error
        types_error = self._entity_types_error()
        if types_error:
            errors["entity_types"] = types_error
        try:
            self.facts = self._expression_facts()
        except ValueError as error:
            errors["expression"] = str(error)
        if errors:
            raise ValidationError(errors)

    def _control_error(self):
        if self.control_id is None:
            return "Choose a control."
        control = self.control
        if control.tenant_id is not None and control.tenant_id != self.tenant_id:
            return "Choose a shipped control or one of your own."
        if control.regulation != self.regulation:
            return (
                f"Control {control.control_id} belongs to {control.regulation}, "
                f"not to {self.regulation}."
            )
        return ""

    def _entity_types_error(self):
        allowed = all_entity_types()
        values = self.entity_types
        if not isinstance(values, list) or not values:
            return f"Choose at least one entity type of {', '.join(allowed)}."
        unknown = [value for value in values if value not in allowed]
        if unknown:
            return f"Unknown entity types {unknown!r}; choose from {', '.join(allowed)}."
        if len(set(values)) != len(values):
            return "An entity type is listed twice."
        return ""

    def _expression_facts(self):
        # The CEL environment and the fact vocabulary live in the rule engine,
        # which sits above the catalog, so the import waits until a rule is validated.
        from compliance.checks.rules.tenant import expression_facts

        return list(expression_facts(self.expression))
