"""The fact vocabulary: the attribute paths rules may read, their types, and reading them.

A fact is a dotted path into ``Entity.attributes`` (``credentials.rotation_days``
reads ``attributes["credentials"]["rotation_days"]``). ``facts.json`` in the
rules folder declares every path with its type. Rules declare the facts they
read, and a value of another type is never passed to a rule.
"""

import math
import re
from dataclasses import dataclass

from cel_expr_python import cel

FACTS_FILE_NAME = "facts.json"

# Evaluation stays bounded because CEL has no loops or recursion: a macro
# such as ``all`` visits each element of a list fact once. These caps bound
# the inputs.
MAX_LIST_ITEMS = 1000
MAX_STRING_LENGTH = 10_000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

SEGMENT_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
# Words the CEL grammar reserves, which cannot name a variable.
CEL_RESERVED_WORDS = frozenset(
    [
        "as",
        "break",
        "const",
        "continue",
        "else",
        "false",
        "for",
        "function",
        "if",
        "import",
        "in",
        "let",
        "loop",
        "package",
        "namespace",
        "null",
        "return",
        "true",
        "var",
        "void",
        "while",
    ]
)

CEL_TYPES = {
    "string": cel.Type.STRING,
    "int": cel.Type.INT,
    "double": cel.Type.DOUBLE,
    "bool": cel.Type.BOOL,
    "list<string>": cel.Type.List(cel.Type.STRING),
}


class FactValueError(ValueError):
    """A fact is present in the attributes but has a value of the wrong type or size."""


@dataclass(frozen=True)
class Fact:
    """One entry of the fact vocabulary."""

    path: str
    type: str
    description: str

    @property
    def cel_type(self):
        return CEL_TYPES[self.type]


class _Missing:
    def __repr__(self):
        return "MISSING"


MISSING = _Missing()


def parse_vocabulary(document):
    """Return ``{path: Fact}`` from the parsed ``facts.json``, or a list of problems.

    Returns ``(vocabulary, problems)``. A path must be lower-case dotted
    identifiers, and no path may be a prefix of another, because CEL would
    then resolve ``a.b`` either as the fact ``a.b`` or as field ``b`` of ``a``.
    """
    entries = document.get("facts") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        return {}, ['the file must be a JSON object with a "facts" list']

    vocabulary, problems = {}, []
    for index, entry in enumerate(entries):
        fact, problem = _parse_fact(index, entry)
        if problem:
            problems.append(problem)
        elif fact.path in vocabulary:
            problems.append(f"fact {fact.path!r} is declared twice")
        else:
            vocabulary[fact.path] = fact

    problems.extend(_prefix_problems(vocabulary))
    return vocabulary, problems


def _parse_fact(index, entry):
    if not isinstance(entry, dict) or set(entry) != {"path", "type", "description"}:
        return None, f"entry {index} must have exactly the keys path, type and description"
    path, fact_type, description = entry["path"], entry["type"], entry["description"]
    if not isinstance(path, str) or not _valid_path(path):
        return None, (
            f"entry {index}: invalid path {path!r}; use dotted lower-case identifiers "
            "that are not CEL reserved words"
        )
    if fact_type not in CEL_TYPES:
        return None, (
            f"fact {path!r}: unknown type {fact_type!r}; expected one of {', '.join(CEL_TYPES)}"
        )
    if not isinstance(description, str) or not description.strip():
        return None, f"fact {path!r}: missing description"
    return Fact(path=path, type=fact_type, description=description), None


def _valid_path(path):
    segments = path.split(".")
    return all(
        SEGMENT_PATTERN.match(segment) and segment not in CEL_RESERVED_WORDS for segment in segments
    )


def _prefix_problems(vocabulary):
    problems = []
    for path in vocabulary:
        segments = path.split(".")
        for length in range(1, len(segments)):
            prefix = ".".join(segments[:length])
            if prefix in vocabulary:
                problems.append(f"fact {prefix!r} is a prefix of fact {path!r}")
    return problems


def lookup(attributes, path):
    """Return the value at dotted ``path`` in ``attributes``, or ``MISSING``.

    JSON ``null`` counts as missing. Raises ``FactValueError`` when a value
    on the path, such as ``credentials`` in ``credentials.rotation_days``, is
    not an object, because then the attributes contradict the vocabulary
    rather than leave the fact out.
    """
    current = attributes
    walked = []
    for segment in path.split("."):
        if not isinstance(current, dict):
            raise FactValueError(
                f"{'.'.join(walked)} is {_json_type(current)}, expected an object "
                f"containing {segment!r}"
            )
        if segment not in current or current[segment] is None:
            return MISSING
        current = current[segment]
        walked.append(segment)
    return current


def coerce(fact, value):
    """Return ``value`` as the CEL input for ``fact``, or raise ``FactValueError``.

    Python's ``bool`` is a subclass of ``int``, so booleans are rejected
    explicitly where a number is expected. An ``int`` is accepted for a
    ``double`` fact because JSON does not tell ``1`` from ``1.0``.
    """
    checker = _CHECKERS[fact.type]
    return checker(fact, value)


def _check_string(fact, value):
    if not isinstance(value, str):
        raise _type_error(fact, value)
    if len(value) > MAX_STRING_LENGTH:
        raise FactValueError(
            f"{fact.path} has {len(value)} characters; the maximum is {MAX_STRING_LENGTH}"
        )
    return value


def _check_int(fact, value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(fact, value)
    if not INT64_MIN <= value <= INT64_MAX:
        raise FactValueError(f"{fact.path} is {value}, outside the 64-bit integer range")
    return value


def _check_double(fact, value):
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _type_error(fact, value)
    number = float(value)
    if not math.isfinite(number):
        raise FactValueError(f"{fact.path} is {value}, expected a finite number")
    return number


def _check_bool(fact, value):
    if not isinstance(value, bool):
        raise _type_error(fact, value)
    return value


def _check_string_list(fact, value):
    if not isinstance(value, list):
        raise _type_error(fact, value)
    if len(value) > MAX_LIST_ITEMS:
        raise FactValueError(f"{fact.path} has {len(value)} items; the maximum is {MAX_LIST_ITEMS}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise FactValueError(f"{fact.path}[{index}] is {_json_type(item)}, expected a string")
    return list(value)


_CHECKERS = {
    "string": _check_string,
    "int": _check_int,
    "double": _check_double,
    "bool": _check_bool,
    "list<string>": _check_string_list,
}


def _type_error(fact, value):
    return FactValueError(f"{fact.path} is {_json_type(value)}, expected {fact.type}")


def _json_type(value):
    """Name the JSON type of ``value`` for error messages."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def entity_facts(entity):
    """Return the facts of ``entity``: its attributes, plus ``owner`` from its owner field.

    ``owner`` comes from the attributes when they set it, and otherwise from
    ``Entity.owner``, which is the empty string when no owner is recorded.
    Attributes that are not a JSON object hold no facts.
    """
    attributes = entity.attributes if isinstance(entity.attributes, dict) else {}
    facts = dict(attributes)
    if facts.get("owner") is None:
        facts["owner"] = entity.owner
    return facts
