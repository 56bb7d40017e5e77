"""Limit failed logins on the login page, per username and per client address.

Each counter lives in Django's default cache for a fixed window of
``LOGIN_FAILURE_WINDOW_SECONDS`` that starts at its first failure. Once a
counter reaches its limit, the page refuses further attempts for that
username or address until the window ends, without checking the password.
"""

import hashlib
import math
import time

from django.conf import settings
from django.core.cache import cache

# NOTE: two failures at the same instant may both pass the limit check, so
# a burst of parallel attempts can exceed the limit by the number of
# requests in flight.


def _cache_keys(kind, value):
    # Hashed, so the cache never contains a typed username and every key has a
    # fixed length whatever was typed.
    digest = hashlib.sha256(value.encode()).hexdigest()
    return f"login-failures:{kind}:{digest}", f"login-failures-until:{kind}:{digest}"


def _counters(username, address):
    """Return ``(count key, window-end key, limit)`` for each counter of this attempt."""
    counters = []
    if username:
        counters.append(
            (
                *_cache_keys("username", username.casefold()),
                settings.LOGIN_FAILURE_LIMIT_PER_USERNAME,
            )
        )
    if address:
        counters.append(
            (*_cache_keys("address", address), settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS)
        )
    return counters


def seconds_locked(username, address):
    """Return the seconds until this username and address may try again, or 0 if they may now."""
    now = time.time()
    wait = 0
    for count_key, until_key, limit in _counters(username, address):
        if cache.get(count_key, 0) < limit:
            continue
        until = cache.get(until_key) or now + settings.LOGIN_FAILURE_WINDOW_SECONDS
        wait = max(wait, math.ceil(until - now), 1)
    return wait


def record_failure(username, address):
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    for count_key, until_key, _ in _counters(username, address):
        cache.add(until_key, time.time() + window, timeout=window)
        cache.add(count_key, 0, timeout=window)
        try:
            cache.incr(count_key)
        except ValueError:
            # The entry expired between add() and incr().
            cache.set(count_key, 1, timeout=window)


def clear_username(username):
    """Forget a username's failures after a successful login.

    The address counter is kept, so that one valid account cannot be used
    to reset the limit while guessing the passwords of others.
    """
    if username:
        cache.delete_many(_cache_keys("username", username.casefold()))
