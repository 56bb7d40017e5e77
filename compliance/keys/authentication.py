"""DRF authentication by ``X-API-Key`` header, scoped to the key's tenant."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from rest_framework import authentication, exceptions

from compliance.audit.models import AuditAction, AuditOutcome
from compliance.audit.services import record_event, unauthenticated_event_allowed
from compliance.keys.models import KEY_PREFIX, ApiKey, hash_secret, parse_key
from compliance.tenancy.scope import UNLIMITED

logger = logging.getLogger(__name__)

# last_used_at is written at most once per interval, so a busy key does not
# turn every read into a write. The same write records the key_used audit
# event, so a key has at most one such event per interval.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyPrincipal:
    """The authenticated caller of an API request made with a key."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, api_key):
        self.api_key = api_key
        self.tenant = api_key.tenant
        self.role = api_key.role
        # Only admins issue keys, so a key is never limited to part of the tenant.
        self.scope = UNLIMITED
        self.user = api_key.created_by

    def __str__(self):
        return f"API key {self.api_key.name}"


def www_authenticate(request):
    """Return the ``WWW-Authenticate`` challenge of a 401 response.

    DRF takes the challenge from the first authentication class alone, so
    both classes return this one. A rejected bearer token gets the RFC 6750
    ``invalid_token`` error. Any other 401 names the API key header.
    """
    bearer_error = getattr(request, "bearer_error", None)
    if bearer_error:
        return f'Bearer realm="api", error="{bearer_error}"'
    return 'X-API-Key realm="api"'


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticate ``X-API-Key: cmp_<lookup>_<secret>``, where a revoked or expired key is a 401.

    Each failure is recorded as an ``auth_failed`` audit event with the
    key's lookup prefix at most, never the secret.
    """

    header = "X-API-Key"

    def authenticate(self, request):
        raw = request.headers.get(self.header)
        if raw is None:
            return None

        parsed = parse_key(raw)
        api_key = None
        if parsed:
            lookup, secret = parsed
            api_key = ApiKey.objects.select_related("tenant").filter(lookup=lookup).first()
        if api_key is None:
            # Hash anyway so that an unknown prefix costs the same as a wrong secret.
            hash_secret(parsed[1] if parsed else raw, max(settings.API_KEY_PEPPERS))
            reason = "unknown_key" if parsed else "malformed_key"
            self.fail(reason, lookup=parsed[0] if parsed else None)
        if not api_key.matches(secret):
            self.fail("wrong_secret", lookup=api_key.lookup, api_key=api_key)
        if not api_key.is_active:
            self.fail("inactive_key", lookup=api_key.lookup, api_key=api_key)

        self._touch(api_key)
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request):
        return www_authenticate(request)

    def fail(self, reason, lookup=None, api_key=None):
        """Record and log the failure, then raise a 401 that does not say which check failed."""
        prefix = f"{KEY_PREFIX}_{lookup}" if lookup else None
        logger.info("API key authentication failed: %s, key prefix %s", reason, prefix)
        if unauthenticated_event_allowed():
            # The caller is not the key's holder, so the key is the target, not the actor.
            record_event(
                AuditAction.AUTH_FAILED,
                tenant=api_key.tenant if api_key else None,
                actor_name=prefix or "",
                target=api_key,
                outcome=AuditOutcome.FAILURE,
                details={"method": "api_key", "reason": reason, "key_prefix": prefix},
            )
        raise exceptions.AuthenticationFailed("Invalid API key.")

    def _touch(self, api_key):
        """Update ``last_used_at`` and record ``key_used`` at most once per interval.

        The conditional UPDATE lets one request per interval win even when
        several processes serve the same key at once.
        """
        now = timezone.now()
        threshold = now - LAST_USED_RESOLUTION
        if api_key.last_used_at is not None and api_key.last_used_at > threshold:
            return

        stale = Q(last_used_at__isnull=True) | Q(last_used_at__lte=threshold)
        updated = ApiKey.objects.filter(stale, pk=api_key.pk).update(last_used_at=now)
        if updated:
            api_key.last_used_at = now
            record_event(
                AuditAction.KEY_USED, tenant=api_key.tenant, api_key=api_key, target=api_key
            )
