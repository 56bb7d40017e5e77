"""Strict parsing of query parameters: every malformed value is a 400 naming its field."""

from rest_framework.exceptions import ValidationError

MAX_LIMIT = 100
DEFAULT_LIMIT = 25
# The largest offset every supported database accepts in OFFSET (a signed 32-bit int).
MAX_OFFSET = 2**31 - 1


def reject_unknown_and_repeated(query_params, accepted):
    """Raise a ValidationError for parameters outside ``accepted`` or given more than once."""
    errors = {}
    for name in query_params:
        if name not in accepted:
            errors[name] = [f"Unknown parameter; accepted: {', '.join(sorted(accepted))}."]
        elif len(query_params.getlist(name)) > 1:
            errors[name] = ["Give this parameter at most once."]
        elif query_params[name].strip() == "":
            errors[name] = ["This parameter may not be empty."]
    if errors:
        raise ValidationError(errors)


def _integer(query_params, name, default, minimum, maximum=None):
    raw = query_params.get(name)
    if raw is None:
        return default
    text = raw.strip()
    if not (text.isascii() and text.lstrip("-").isdigit()):
        raise ValidationError({name: [f"Must be an integer, got {raw!r}."]})
    value = int(text)
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ValidationError({name: [f"Must be {bounds}, got {value}."]})
    return value


def limit_offset(query_params):
    """Return ``(limit, offset)``: limit 1..100 (default 25), offset 0..MAX_OFFSET (default 0)."""
    limit = _integer(query_params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _integer(query_params, "offset", 0, 0, MAX_OFFSET)
    return limit, offset


def apply_filterset(filterset_class, query_params, queryset):
    """Filter ``queryset`` or raise a ValidationError with the FilterSet's field errors."""
    filterset = filterset_class(query_params, queryset=queryset)
    if not filterset.is_valid():
        raise ValidationError(
            {
                field: [str(message) for message in messages]
                for field, messages in filterset.errors.items()
            }
        )
    return filterset.qs
