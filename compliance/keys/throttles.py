"""Rate limits of the API, per API key or per bearer-token subject.

The counters live in Django's default cache: a shared Redis cache when
``CACHE_URL`` is set, else each server process's local memory.
"""

import math

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

# NOTE: without CACHE_URL, a client of several server processes gets the rate
# once per process.
DEFAULT_API_RATE_LIMIT = "600/minute"


class ApiClientRateThrottle(SimpleRateThrottle):
    """Allow ``API_RATE_LIMIT`` requests (such as ``"600/minute"``) per credential.

    Requests with an API key count against the key, and requests with a
    bearer token against the token's user, so all tokens of one subject
    share the limit. An empty ``API_RATE_LIMIT``
    disables the limit. A rejected request is a 429 whose ``Retry-After`` is a
    whole number of seconds, rounded up.
    """

    scope = "api_client"

    def get_rate(self):
        # Read at request time, unlike DRF's DEFAULT_THROTTLE_RATES, which a
        # throttle class copies when it is imported.
        return getattr(settings, "API_RATE_LIMIT", DEFAULT_API_RATE_LIMIT) or None

    def get_cache_key(self, request, view):
        principal = request.user
        if principal is None or not getattr(principal, "is_authenticated", False):
            return None

        api_key = getattr(principal, "api_key", None)
        if api_key is not None:
            ident = f"key:{api_key.pk}"
        elif getattr(principal, "user", None) is not None:
            ident = f"user:{principal.user.pk}"
        else:
            return None
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def wait(self):
        seconds = super().wait()
        return None if seconds is None else max(1, math.ceil(seconds))
