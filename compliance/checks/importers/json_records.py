"""Read the records of a JSON array one at a time, so an error names the record."""

import json

from compliance.checks.importers.base import ImportFileError

# Python's decoder ends these messages in "at" and keeps the position in separate attributes.
JSON_ERROR_REASONS = {
    "Unterminated string starting at": "a string starts here and is never closed",
    "Invalid control character at": "a string contains an unescaped control character here",
}


def json_error_reason(error):
    """Return the reason of a ``json.JSONDecodeError`` as a clause that reads on its own."""
    return JSON_ERROR_REASONS.get(error.msg, error.msg.removesuffix(" at"))


def describe_json_error(error):
    """Return where ``error`` happened and why, such as ``at line 3, column 9: Expecting value``."""
    return f"at line {error.lineno}, column {error.colno}: {json_error_reason(error)}"


def _skip_whitespace(text, position):
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def array_record_label(index, kind="OCSF"):
    return f"{kind} record {index + 1} (array index {index})"


def json_array_items(text, kind="OCSF"):
    """Yield ``(index, item)`` of a top-level JSON array, naming the record that fails to parse.

    A syntax error rejects the file even when records are skipped, because
    the decoder cannot tell where the next record starts.
    """
    decoder = json.JSONDecoder()
    position = _skip_whitespace(text, 0)
    if not text.startswith("[", position):
        raise ImportFileError(
            f"The {kind} file is not a JSON array of findings (it does not start with '[')."
        )
    position = _skip_whitespace(text, position + 1)
    if text.startswith("]", position):
        return

    index = 0
    while True:
        try:
            item, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise ImportFileError(
                f"{array_record_label(index, kind)}: invalid JSON {describe_json_error(error)}."
            ) from error
        yield index, item

        position = _skip_whitespace(text, position)
        if position >= len(text):
            raise ImportFileError(
                f"The JSON array ends after {array_record_label(index, kind)} without a "
                "closing ']', so the file is truncated."
            )
        if text[position] == "]":
            break
        if text[position] != ",":
            raise ImportFileError(
                f"{array_record_label(index, kind)}: expected ',' or ']' after the record, "
                f"found {text[position]!r}."
            )
        position = _skip_whitespace(text, position + 1)
        index += 1

    if _skip_whitespace(text, position + 1) < len(text):
        raise ImportFileError(f"The {kind} file has data after the closing ']' of the array.")
