"""Tenants, and the users' memberships in them with a role."""

import uuid
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from compliance.catalog.models import Regulation


def validate_time_zone(value):
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone name such as 'Europe/Berlin'.")


class Role(models.TextChoices):
    """The rights of a member or an API key; each role includes the ones below it."""

    ADMIN = "admin", "Admin"
    OFFICER = "officer", "Compliance officer"
    AUDITOR = "auditor", "Auditor"

    @classmethod
    def rank(cls, role):
        return {cls.AUDITOR: 1, cls.OFFICER: 2, cls.ADMIN: 3}[cls(role)]

    @classmethod
    def allows(cls, role, required):
        """Return whether ``role`` grants at least the rights of ``required``."""
        return cls.rank(role) >= cls.rank(required)


class TenantQuerySet(models.QuerySet):
    def for_user(self, user):
        return self.filter(memberships__user=user).order_by("name")


class Tenant(models.Model):
    """An organisation whose entities, checks and reports are kept apart from all others."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def zone(self):
        return zoneinfo.ZoneInfo(self.time_zone)

    def today(self):
        """Return the current date in the tenant's time zone."""
        return timezone.now().astimezone(self.zone).date()


def validate_regulation_list(value):
    """Reject anything but a list of distinct regulation values such as ``["SOC2", "GDPR"]``."""
    if not isinstance(value, list):
        raise ValidationError("Regulations must be a list of regulation codes.")
    unknown = [item for item in value if item not in Regulation.values]
    if unknown:
        raise ValidationError(
            f"Unknown regulation {unknown[0]!r}; use one of {', '.join(Regulation.values)}."
        )
    if len(set(value)) != len(value):
        raise ValidationError("Each regulation may appear once.")


class Membership(models.Model):
    """A user's role in one tenant, and for an auditor the part of the tenant they may see.

    The scope fields (``scope_entities``, ``scope_regulations``, ``scope_start``
    and ``scope_end``) limit an auditor, and each one left empty limits nothing.
    They apply to the auditor role alone, and changing the role clears them
    (see ``compliance.tenancy.scope``).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    scope_entities = models.ManyToManyField(
        "inventory.Entity",
        blank=True,
        related_name="scoped_memberships",
        help_text="The only entities an auditor sees; none selected means every entity.",
    )
    scope_regulations = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_regulation_list],
        help_text="The only regulations an auditor sees; empty means every regulation.",
    )
    scope_start = models.DateField(
        null=True, blank=True, help_text="The first day an auditor sees, in the tenant's time zone."
    )
    scope_end = models.DateField(
        null=True, blank=True, help_text="The last day an auditor sees, in the tenant's time zone."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "tenant"], name="membership_user_tenant_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(scope_start__isnull=True)
                | models.Q(scope_end__isnull=True)
                | models.Q(scope_end__gte=models.F("scope_start")),
                name="membership_scope_period_ordered",
            ),
        ]

    def __str__(self):
        return f"{self.user} in {self.tenant} as {self.role}"
