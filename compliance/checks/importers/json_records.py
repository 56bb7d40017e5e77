"""Read the records of a JSON array one at a time.

A syntax error makes the whole file invalid JSON, so its message names the
file's line and column. Errors in one well-formed record name the record.
"""

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


def _line_and_column(text, position):
    """Return the 1-based line and column of ``position``, counted as Python's decoder does."""
    line = text.count("\n", 0, position) + 1
    column = position - text.rfind("\n", 0, position)
    return line, column


def array_record_label(index, kind="OCSF"):
    return f"{kind} record {index + 1} (array index {index})"


def json_array_items(text, kind="OCSF"):
    """Yield ``(index, item)`` of a top-level JSON array.

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
                f"The file is not valid JSON: line {error.lineno}, column {error.colno}: "
                f"{json_error_reason(error)}."
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
            line, column = _line_and_column(text, position)
            raise ImportFileError(
                f"The file is not valid JSON: line {line}, column {column}: expected ',' or ']' "
                f"after {array_record_label(index, kind)}, found {text[position]!r}."
            )
        position = _skip_whitespace(text, position + 1)
        index += 1

    if _skip_whitespace(text, position + 1) < len(text):
        raise ImportFileError(f"The {kind} file has data after the closing ']' of the array.")
