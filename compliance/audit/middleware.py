"""Request ids and client addresses for the audit trail.

``RequestIdMiddleware`` gives every request an id: the client's
``X-Request-ID`` when it is a safe token, else a new UUID4. It stores the id
and the client address on the request and in a context variable, so service
functions that have no request object still record them, and it echoes the
id in the response's ``X-Request-ID`` header.
"""

import contextvars
import ipaddress
import re
import uuid
from dataclasses import dataclass

from django.conf import settings

REQUEST_ID_HEADER = "X-Request-ID"
# Letters, digits and . _ : - only, so an id can go into a header or a log
# line without escaping, and at most 128 characters, the column's length.
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass(frozen=True)
class RequestContext:
    request_id: str
    client_address: str | None


_current = contextvars.ContextVar("audit_request_context", default=None)


def current_request_context():
    """Return the ``RequestContext`` of the request being served, or ``None`` outside one."""
    return _current.get()


def accepted_request_id(raw):
    """Return ``raw`` if it is a safe request id, else a new UUID4 as text."""
    if raw is not None and REQUEST_ID_PATTERN.match(raw):
        return raw
    return str(uuid.uuid4())


def _valid_address(text):
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def client_address(request):
    """Return the client's IP address, or ``None`` when it is not a valid address.

    Without trusted proxies this is ``REMOTE_ADDR``. With ``TRUSTED_PROXY_COUNT``
    set to N, each of the N proxies in front of the app appends the address it
    received the request from to ``X-Forwarded-For``, so the client is the Nth
    entry from the right. Entries left of it were written by the client and are
    ignored. A header with fewer entries than N comes from a shorter proxy chain,
    and then its first entry is the client.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    hops = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if hops <= 0:
        return _valid_address(remote)

    header = request.META.get("HTTP_X_FORWARDED_FOR", "")
    forwarded = [part.strip() for part in header.split(",") if part.strip()]
    if not forwarded:
        return _valid_address(remote)
    if len(forwarded) >= hops:
        return _valid_address(forwarded[-hops])
    return _valid_address(forwarded[0])


class RequestIdMiddleware:
    """Set ``request.request_id`` and ``request.client_address`` and echo the id."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.request_id = accepted_request_id(request.headers.get(REQUEST_ID_HEADER))
        request.client_address = client_address(request)

        token = _current.set(RequestContext(request.request_id, request.client_address))
        try:
            response = self.get_response(request)
        finally:
            _current.reset(token)

        response[REQUEST_ID_HEADER] = request.request_id
        return response
