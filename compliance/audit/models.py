"""The append-only audit trail: who did what, to which object, from where, with what outcome.

Rows are written once through ``compliance.audit.services`` and never changed
or deleted through the ORM: ``save()`` of an existing row, ``delete()`` and the
queryset's ``update()``, ``bulk_update()`` and ``delete()`` raise
``AuditEventImmutableError``. Deleting a user or an API key still sets the
actor foreign key to NULL, which Django does with a direct SQL update. The
copied ``actor_name`` keeps the trail readable after that.
"""

import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from compliance.tenancy.models import Tenant

# NOTE: append-only is enforced by the ORM only. Raw SQL or a database user
# with UPDATE or DELETE grants on audit_auditevent can still change rows.


class AuditEventImmutableError(Exception):
    """Raised on any attempt to change or delete a recorded audit event."""


class AuditAction(models.TextChoices):
    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    DELETE = "delete", "Delete"
    LOGIN = "login", "Login"
    LOGIN_FAILED = "login_failed", "Login failed"
    LOGOUT = "logout", "Logout"
    AUTH_FAILED = "auth_failed", "API authentication failed"
    KEY_USED = "key_used", "API key used"
    KEY_CREATED = "key_created", "API key created"
    KEY_REVOKED = "key_revoked", "API key revoked"
    REPORT_REQUESTED = "report_requested", "Report requested"
    REPORT_GENERATED = "report_generated", "Report generated"
    PDF_DOWNLOADED = "pdf_downloaded", "PDF downloaded"
    EXPORT_DOWNLOADED = "export_downloaded", "Export downloaded"
    PDF_VERIFIED = "pdf_verified", "PDF verified"
    PDF_RENDERED = "pdf_rendered", "PDF rendered"
    PAGE_VIEWED = "page_viewed", "Page viewed"
    MEMBER_ADDED = "member_added", "Member added"
    MEMBER_ROLE_CHANGED = "member_role_changed", "Member role changed"
    MEMBER_REMOVED = "member_removed", "Member removed"
    MEMBER_LINK_ISSUED = "member_link_issued", "Set-password link issued"


class AuditOutcome(models.TextChoices):
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"


class AuditEventQuerySet(models.QuerySet):
    """A queryset that reads and inserts audit events but never changes or deletes them."""

    def update(self, **kwargs):
        raise AuditEventImmutableError("Audit events cannot be updated.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AuditEventImmutableError("Audit events cannot be updated.")

    def delete(self):
        raise AuditEventImmutableError("Audit events cannot be deleted.")

    def for_tenant(self, tenant):
        return self.filter(tenant=tenant)


class AuditEvent(models.Model):
    """One recorded action. The tenant is NULL only when no tenant could be determined."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # PROTECT: a tenant with an audit trail cannot be deleted by accident,
    # because deleting it would cascade into the trail.
    tenant = models.ForeignKey(
        Tenant, on_delete=models.PROTECT, null=True, blank=True, related_name="audit_events"
    )
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
    )
    actor_key = models.ForeignKey(
        "keys.ApiKey",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_events",
    )
    actor_name = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=32, choices=AuditAction.choices)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now, editable=False)
    request_id = models.CharField(max_length=128, blank=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    outcome = models.CharField(
        max_length=16, choices=AuditOutcome.choices, default=AuditOutcome.SUCCESS
    )
    details = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "-occurred_at"], name="audit_tenant_time_idx"),
            models.Index(fields=["action", "-occurred_at"], name="audit_action_time_idx"),
        ]

    def __str__(self):
        return f"{self.action} by {self.actor_name or 'unknown actor'} at {self.occurred_at}"

    def save(self, **kwargs):
        """Insert a new event and raise for an existing one, so a row is written only once."""
        if not self._state.adding:
            raise AuditEventImmutableError("Audit events cannot be updated.")
        kwargs["force_insert"] = True
        super().save(**kwargs)

    def delete(self, **kwargs):
        raise AuditEventImmutableError("Audit events cannot be deleted.")
