"""A strict JSON parser: bounded size, UTF-8 only, no NaN or Infinity."""

import json

from django.conf import settings
from rest_framework import exceptions, parsers

from compliance.api.errors import PayloadTooLarge


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def read_bounded(stream, limit):
    """Read at most ``limit`` bytes from ``stream`` or raise ``PayloadTooLarge``."""
    body = stream.read(limit + 1) if stream is not None else b""
    if len(body) > limit:
        raise PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes.")
    return body


class StrictJSONParser(parsers.JSONParser):
    """Parse a JSON body of at most ``API_MAX_JSON_BYTES`` bytes, encoded as UTF-8."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = read_bounded(stream, settings.API_MAX_JSON_BYTES)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError(
                f"The request body is not valid UTF-8 (invalid byte at position {exc.start})."
            ) from None
        try:
            return json.loads(text, parse_constant=_reject_constant)
        except ValueError as exc:
            raise exceptions.ParseError(f"The request body is not valid JSON: {exc}.") from None
