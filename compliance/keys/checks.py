"""System checks of the bearer-token and rate-limit settings, run by ``manage.py check``."""

import re

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.core.exceptions import ImproperlyConfigured

from compliance.keys.jwt import jwt_settings, verification_keys

# DRF's rate syntax: a count, a slash and a period starting with s, m, h or d.
RATE_PATTERN = re.compile(r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)$")


@register(Tags.security)
def check_jwt_settings(app_configs, **kwargs):
    """Load the JWT settings and verification keys, so a mistake stops the deploy."""
    try:
        config = jwt_settings()
        if config is not None:
            verification_keys(config)
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="keys.E001")]
    return []


@register(Tags.security)
def check_rate_limit(app_configs, **kwargs):
    rate = getattr(settings, "API_RATE_LIMIT", "")
    if rate and not RATE_PATTERN.match(rate):
        message = f"API_RATE_LIMIT {rate!r} is not a rate such as '600/minute' or '10/second'."
        return [Error(message, id="keys.E002")]
    return []
