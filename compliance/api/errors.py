"""One flat error envelope for every API error: ``{"code", "message", "details"}``.

The hosted API's Python client reads ``message`` and ``code`` from the top level
of the body, so the shape stays flat.
"""

import logging

from django.conf import settings
from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

logger = logging.getLogger(__name__)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


# Codes for DRF's own exceptions; the project's exceptions use their default_code.
CODES = {
    exceptions.ValidationError: "invalid_parameter",
    exceptions.ParseError: "malformed_request",
    exceptions.AuthenticationFailed: "unauthenticated",
    exceptions.NotAuthenticated: "unauthenticated",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
}


def error_body(code, message, details=None):
    return {"code": code, "message": message, "details": details or {}}


def flatten_details(details, prefix=""):
    """Flatten nested validation errors to ``{"findings[2].status": [messages]}``."""
    if isinstance(details, dict):
        flat = {}
        for name, value in details.items():
            if name == "non_field_errors" and prefix:
                key = prefix
            elif isinstance(name, int):
                key = f"{prefix}[{name}]"
            else:
                key = f"{prefix}.{name}" if prefix else str(name)
            flat.update(flatten_details(value, key))
        return flat
    if isinstance(details, list) and any(isinstance(item, dict | list) for item in details):
        flat = {}
        for index, item in enumerate(details):
            if item:
                flat.update(flatten_details(item, f"{prefix}[{index}]"))
        return flat
    messages = details if isinstance(details, list) else [details]
    return {prefix or "non_field_errors": [str(message) for message in messages]}


def _validation_message(details):
    fields = [name for name in details if name != "non_field_errors"]
    if fields:
        return f"Invalid value for: {', '.join(sorted(fields))}."
    messages = details.get("non_field_errors") or ["Invalid request."]
    return str(messages[0])


def exception_handler(exc, context):
    """Render every exception a view raises as the flat error envelope."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(
            f"The request body is larger than the limit of {settings.API_MAX_JSON_BYTES} bytes."
        )
    elif isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        exc = PayloadTooLarge("The request has too many form fields or files.")

    if not isinstance(exc, exceptions.APIException):
        logger.exception("unhandled error in %s", context["view"].__class__.__name__)
        set_rollback()
        body = error_body("server_error", "The server failed to process the request.")
        return Response(body, status=status.HTTP_500_INTERNAL_SERVER_ERROR)

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))

    code = next(
        (value for cls, value in CODES.items() if isinstance(exc, cls)),
        getattr(exc, "default_code", "error"),
    )
    if isinstance(exc, exceptions.ValidationError):
        details = flatten_details(exc.detail)
        body = error_body(code, _validation_message(details), details)
    else:
        body = error_body(code, str(exc.detail))

    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)


def not_found_json(request, exception=None):
    """Return the error envelope for unknown URLs under the API prefix."""
    return JsonResponse(error_body("not_found", "Not found."), status=404)


def server_error_json(request):
    return JsonResponse(
        error_body("server_error", "The server failed to process the request."), status=500
    )
