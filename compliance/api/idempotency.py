"""``Idempotency-Key`` handling: the same key and body return the first response again.

A key is scoped to the tenant and the endpoint and kept for
``IDEMPOTENCY_KEY_TTL``. A repeat with another body is a 422, and a repeat
while the first request still runs is a 409. Only successful answers are
stored, so a request that failed can be retried with the same key.
"""

import hashlib
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import exceptions, status
from rest_framework.response import Response

from compliance.api.errors import Conflict
from compliance.api.models import IdempotentRequest
from compliance.lib.canonical_json import canonical_json

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
IDEMPOTENCY_KEY_TTL = timedelta(hours=24)


class KeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was already used with a different request."
    default_code = "idempotency_key_reused"


def _fingerprint(request):
    """Hash the method, path and parsed body, so formatting differences do not count."""
    data = request.data
    if hasattr(data, "lists"):
        fields = {name: values for name, values in data.lists() if name not in request.FILES}
        files = {
            name: [_file_digest(upload) for upload in request.FILES.getlist(name)]
            for name in request.FILES
        }
        data = {"fields": fields, "files": files}
    document = [request.method, request.path, data]
    return hashlib.sha256(canonical_json(document)).hexdigest()


def _file_digest(upload):
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def _header_key(request):
    key = request.headers.get(HEADER)
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise exceptions.ValidationError(
            {HEADER: [f"Must be 1 to {MAX_KEY_LENGTH} printable characters."]}
        )
    return key


def _replay(record):
    headers = {"Idempotent-Replayed": "true"}
    if record.response_location:
        headers["Location"] = record.response_location
    return Response(record.response_body, status=record.response_status, headers=headers)


def _claim(request, endpoint, key, fingerprint):
    """Insert the record for a first request, or return the existing one for a repeat."""
    expired = timezone.now() - IDEMPOTENCY_KEY_TTL
    IdempotentRequest.objects.filter(
        tenant=request.tenant, endpoint=endpoint, key=key, created_at__lt=expired
    ).delete()
    try:
        with transaction.atomic():
            IdempotentRequest.objects.create(
                tenant=request.tenant, endpoint=endpoint, key=key, fingerprint=fingerprint
            )
        return None
    except IntegrityError:
        return IdempotentRequest.objects.get(tenant=request.tenant, endpoint=endpoint, key=key)


def idempotent(endpoint, handler, request, *args, **kwargs):
    """Run ``handler`` once per Idempotency-Key and replay the stored response to repeats."""
    key = _header_key(request)
    if key is None:
        return handler(request, *args, **kwargs)

    fingerprint = _fingerprint(request)
    existing = _claim(request, endpoint, key, fingerprint)
    if existing is not None:
        if existing.fingerprint != fingerprint:
            raise KeyReused()
        if existing.response_status is None:
            raise Conflict("A request with this Idempotency-Key is still being processed.")
        return _replay(existing)

    records = IdempotentRequest.objects.filter(tenant=request.tenant, endpoint=endpoint, key=key)
    try:
        response = handler(request, *args, **kwargs)
    except Exception:
        records.delete()
        raise
    if response.status_code >= 400:
        records.delete()
        return response

    records.update(
        response_status=response.status_code,
        response_body=response.data,
        response_location=response.headers.get("Location", ""),
    )
    return response
