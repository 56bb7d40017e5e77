"""DRF authentication by ``X-API-Key`` header, scoped to the key's tenant."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions

from compliance.keys.models import ApiKey, hash_secret, parse_key

# last_used_at is written at most once per interval, so a busy key does not
# turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyPrincipal:
    """The authenticated caller of an API request made with a key."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, api_key):
        self.api_key = api_key
        self.tenant = api_key.tenant
        self.role = api_key.role
        self.user = api_key.created_by

    def __str__(self):
        return f"API key {self.api_key.name}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
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
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if not api_key.matches(secret) or not api_key.is_active:
            raise exceptions.AuthenticationFailed("Invalid API key.")

        self._touch(api_key)
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request):
        return f'{self.header} realm="api"'

    def _touch(self, api_key):
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
