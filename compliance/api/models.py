"""Stored responses to requests sent with an ``Idempotency-Key`` header."""

from django.db import models

from compliance.tenancy.models import Tenant


class IdempotentRequest(models.Model):
    """The first response to a tenant's request with a given key, replayed for repeats.

    ``response_status`` is null while the first request is still running.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    endpoint = models.CharField(max_length=200)
    # SHA-256 of the method, path and body, so a key reused for another request is caught.
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    response_location = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "endpoint", "key"], name="idempotent_request_unique"
            )
        ]

    def __str__(self):
        return f"{self.endpoint} {self.key}"
