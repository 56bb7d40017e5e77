"""API keys: a visible lookup prefix plus a peppered HMAC of the secret part."""

import hashlib
import hmac
import secrets
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from compliance.tenancy.models import Role, Tenant

KEY_PREFIX = "cmp"
LOOKUP_LENGTH = 12


def hash_secret(secret, pepper_id):
    pepper = settings.API_KEY_PEPPERS[pepper_id].encode()
    return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


class ApiKeyQuerySet(models.QuerySet):
    def active(self):
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class ApiKey(models.Model):
    """A tenant's machine credential with one role; only an HMAC of its secret is stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    lookup = models.CharField(max_length=LOOKUP_LENGTH, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    pepper_id = models.PositiveSmallIntegerField(editable=False)
    role = models.CharField(max_length=16, choices=Role.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="created_api_keys",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "id"]

    def __str__(self):
        return f"{self.name} ({KEY_PREFIX}_{self.lookup}_…)"

    @classmethod
    def issue(cls, *, tenant, name, role, created_by=None, expires_at=None):
        """Create a key and return ``(api_key, plaintext)``; the plaintext is never stored."""
        lookup = secrets.token_hex(LOOKUP_LENGTH // 2)
        secret = secrets.token_urlsafe(32)
        pepper_id = max(settings.API_KEY_PEPPERS)
        api_key = cls.objects.create(
            tenant=tenant,
            name=name,
            role=Role(role),
            lookup=lookup,
            secret_hash=hash_secret(secret, pepper_id),
            pepper_id=pepper_id,
            created_by=created_by,
            expires_at=expires_at,
        )
        return api_key, f"{KEY_PREFIX}_{lookup}_{secret}"

    @property
    def display_prefix(self):
        return f"{KEY_PREFIX}_{self.lookup}"

    @property
    def is_active(self):
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()

    def matches(self, secret):
        """Compare ``secret`` with the stored HMAC in constant time."""
        if self.pepper_id not in settings.API_KEY_PEPPERS:
            return False
        return hmac.compare_digest(self.secret_hash, hash_secret(secret, self.pepper_id))

    def revoke(self):
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])


def parse_key(raw):
    """Split ``cmp_<lookup>_<secret>`` into ``(lookup, secret)``, or return ``None``."""
    parts = raw.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != LOOKUP_LENGTH or not parts[2]:
        return None
    return parts[1], parts[2]
