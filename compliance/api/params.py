"""Strict parsing of query parameters: every malformed value is a 400 naming its field.

All problems of one query string are reported together, so a client can fix
them in one go.
"""

import uuid

from rest_framework.exceptions import ValidationError

MAX_LIMIT = 100
DEFAULT_LIMIT = 25
# The largest offset every supported database accepts in OFFSET (a signed 32-bit int).
MAX_OFFSET = 2**31 - 1
PAGE_PARAMETERS = ("limit", "offset")


def _shape_errors(query_params, accepted):
    """Return errors for parameters outside ``accepted``, repeated or empty."""
    errors = {}
    for name in query_params:
        if name not in accepted:
            errors[name] = [f"Unknown parameter; accepted: {', '.join(sorted(accepted))}."]
        elif len(query_params.getlist(name)) > 1:
            errors[name] = ["Give this parameter at most once."]
        elif query_params[name].strip() == "":
            errors[name] = ["This parameter may not be empty."]
    return errors


def _integer(raw, minimum, maximum):
    """Return ``(value, error)`` for a decimal integer written without signs or spaces."""
    if not (raw.isascii() and raw.isdigit()):
        return None, f"Must be an integer written with digits only, got {raw!r}."
    value = int(raw)
    if not minimum <= value <= maximum:
        return None, f"Must be between {minimum} and {maximum}, got {value}."
    return value, None


def _page_errors(query_params):
    errors = {}
    bounds = {"limit": (1, MAX_LIMIT), "offset": (0, MAX_OFFSET)}
    for name, (minimum, maximum) in bounds.items():
        raw = query_params.get(name)
        if raw is not None:
            _, error = _integer(raw, minimum, maximum)
            if error:
                errors[name] = [error]
    return errors


def _filter_errors(filterset):
    if filterset is None or filterset.is_valid():
        return {}
    return {
        field: [str(message) for message in messages]
        for field, messages in filterset.errors.items()
    }


def validate_query(query_params, accepted, filterset=None):
    """Raise one ValidationError listing every unknown, repeated, empty or invalid parameter."""
    errors = _filter_errors(filterset)
    errors.update(_page_errors(query_params))
    errors.update(_shape_errors(query_params, accepted))
    if errors:
        raise ValidationError(errors)


def limit_offset(query_params):
    """Return ``(limit, offset)`` of a query string that ``validate_query`` accepted."""
    limit = int(query_params.get("limit", DEFAULT_LIMIT))
    offset = int(query_params.get("offset", 0))
    return limit, offset


def parse_uuid(raw, name):
    """Return ``raw`` as a UUID or raise a ValidationError naming the parameter."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ValidationError({name: [f"Must be a UUID, got {raw!r}."]}) from None
