"""Map the many spellings of a control ID to the one form the catalog uses.

Scanners, libraries and people spell the same control differently (``cc_6_1``
and ``CC6.1``, ``8.28`` and ``A.8.28``, ``164_312_a_1`` and ``164.312(a)``).
Findings are deduplicated by control ID, so every ID is canonicalised on
ingest. The canonical forms are:

* SOC 2: ``CC6.1``, ``A1.1``, ``C1.2``, ``PI1.3``, ``P4.2``. ``PP1.1`` is read
  as ``PI1.1`` because one public control library spells Processing
  Integrity that way.
* ISO/IEC 27001:2022: ``A.8.28``. A bare ``8.28`` is read as Annex A, never
  as a clause of the standard's main body.
* HIPAA: the 45 CFR paragraph, e.g. ``164.308(a)(1)(ii)(A)``. A standard
  takes the citation of the Security Standards Matrix (Appendix A to
  Subpart C of Part 164), so ``164.312(a)`` and ``164.308(a)(3)(i)`` become
  ``164.312(a)(1)`` and ``164.308(a)(3)``.
* GDPR and the EU AI Act: ``Art. 25``, and ``Annex IV`` for AI Act annexes.

Every canonical ID must name a control in the bundled catalog, so a
well-formed ID of a control that does not exist (``CC9.9``, ``A.9.1`` from
ISO 27001:2013) is rejected as well.
"""

import functools
import re

from compliance.catalog.loader import read_catalog
from compliance.catalog.models import Regulation

SEPARATOR = r"[\s._-]*"

# "cc_a_1_1" carries a "cc_" prefix before the series letter, which is dropped.
SOC2_PATTERN = re.compile(rf"^(?:CC[\s_-])?(CC|PI|PP|A|C|P){SEPARATOR}(\d+)[\s._-]+(\d+)$")
ISO27001_PATTERN = re.compile(rf"^(?:A{SEPARATOR})?(\d+)[\s._-]+(\d+)$")
ARTICLE_PATTERN = re.compile(rf"^(?:ART(?:ICLE)?{SEPARATOR})?(\d+)$")
ANNEX_PATTERN = re.compile(rf"^ANNEX{SEPARATOR}([IVXLC]+|\d+)$")
HIPAA_SECTION_PATTERN = re.compile(r"^(?:45\s*CFR\s*)?(?:§\s*)?164[._](\d{3})(.*)$", re.IGNORECASE)
HIPAA_TOKEN_PATTERN = re.compile(r"\(([0-9A-Za-z]+)\)|[\s_]*([0-9A-Za-z]+)")

# Each level of a CFR paragraph designation has its own kind of label:
# (a) lower-case letter, (1) number, (ii) lower-case roman numeral, (A) capital.
HIPAA_LEVEL_PATTERNS = [
    re.compile(r"^[a-z]$"),
    re.compile(r"^\d{1,2}$"),
    re.compile(r"^(?:i|ii|iii|iv|v|vi|vii|viii|ix|x)$"),
    re.compile(r"^[A-Z]$"),
]

# Standards cited in another form than the matrix: the standard's own
# paragraph "(i)" in 164.308, and a bare letter where the CFR numbers the
# standard "(1)".
HIPAA_STANDARD_ALIASES = {
    **{f"164.308(a)({number})(i)": f"164.308(a)({number})" for number in (1, 3, 4, 5, 6, 7)},
    "164.308(b)": "164.308(b)(1)",
    "164.310(a)": "164.310(a)(1)",
    "164.310(d)": "164.310(d)(1)",
    "164.312(a)": "164.312(a)(1)",
    "164.312(c)": "164.312(c)(1)",
    "164.312(e)": "164.312(e)(1)",
    "164.314(a)": "164.314(a)(1)",
    "164.314(b)": "164.314(b)(1)",
    "164.316(b)": "164.316(b)(1)",
}

EXAMPLES = {
    Regulation.SOC2: "'CC6.1', 'cc_6_1', 'A1.1', 'cc_a_1_1', 'PI1.3' or 'p_4_2'",
    Regulation.ISO27001: "'A.8.28', 'a.8.28' or '8.28'",
    Regulation.HIPAA: "'164.308(a)(1)(ii)(A)' or '164_308_a_1_ii_a'",
    Regulation.GDPR: "'Art. 25', 'article_25' or 'art25'",
    Regulation.EU_AI_ACT: "'Art. 9', 'article_9' or 'Annex IV'",
}

ROMAN_NUMERALS = [
    (100, "C"),
    (90, "XC"),
    (50, "L"),
    (40, "XL"),
    (10, "X"),
    (9, "IX"),
    (5, "V"),
    (4, "IV"),
    (1, "I"),
]


def to_roman(number):
    """Return ``number`` (1-399) as an upper-case roman numeral."""
    parts = []
    for value, numeral in ROMAN_NUMERALS:
        count, number = divmod(number, value)
        parts.append(numeral * count)
    return "".join(parts)


@functools.cache
def catalog_ids():
    """Return ``{regulation: frozenset of control IDs}`` from the bundled catalog file."""
    ids = {regulation: set() for regulation in Regulation}
    for regulation, control_id, _, _ in read_catalog():
        ids[regulation].add(control_id)
    return {regulation: frozenset(values) for regulation, values in ids.items()}


def _soc2(text):
    match = SOC2_PATTERN.match(text)
    if not match:
        return None
    series, major, minor = match.groups()
    if series == "PP":
        series = "PI"
    return f"{series}{int(major)}.{int(minor)}"


def _iso27001(text):
    match = ISO27001_PATTERN.match(text)
    if not match:
        return None
    theme, number = match.groups()
    return f"A.{int(theme)}.{int(number)}"


def _article(text):
    match = ARTICLE_PATTERN.match(text)
    if not match:
        return None
    return f"Art. {int(match.group(1))}"


def _annex(text):
    match = ANNEX_PATTERN.match(text)
    if not match:
        return None
    label = match.group(1)
    if label.isdigit():
        return f"Annex {to_roman(int(label))}" if 0 < int(label) < 400 else None
    # Reject non-standard numerals such as "IIII" by writing the value back.
    value = _roman_value(label)
    return f"Annex {label}" if value and to_roman(value) == label else None


def _roman_value(label):
    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}
    total = 0
    for index, char in enumerate(label):
        value = values[char]
        following = values[label[index + 1]] if index + 1 < len(label) else 0
        total += -value if value < following else value
    return total


def _eu_ai_act(text):
    return _article(text) or _annex(text)


def _hipaa(raw):
    """Parse a 45 CFR 164 citation in parenthesised or underscore form, or return ``None``."""
    match = HIPAA_SECTION_PATTERN.match(raw.strip())
    if not match:
        return None
    section, rest = match.groups()

    tokens = []
    position = 0
    rest = rest.strip()
    while position < len(rest):
        token_match = HIPAA_TOKEN_PATTERN.match(rest, position)
        if not token_match or token_match.end() == position:
            return None
        tokens.append(token_match.group(1) or token_match.group(2))
        position = token_match.end()
    if len(tokens) > len(HIPAA_LEVEL_PATTERNS):
        return None

    labels = []
    for level, token in enumerate(tokens):
        # The underscore form is all lower case, so the case comes from the level.
        label = token.upper() if level == 3 else token.lower()
        if not HIPAA_LEVEL_PATTERNS[level].match(label):
            return None
        labels.append(label)

    citation = f"164.{section}" + "".join(f"({label})" for label in labels)
    return HIPAA_STANDARD_ALIASES.get(citation, citation)


PARSERS = {
    Regulation.SOC2: _soc2,
    Regulation.ISO27001: _iso27001,
    Regulation.GDPR: _article,
    Regulation.EU_AI_ACT: _eu_ai_act,
}


def canonical_form(regulation, raw):
    """Return ``raw`` written in the canonical form of ``regulation``'s control IDs.

    Unlike ``canonical_control_id`` this does not require the control to be
    in the bundled catalog, so it also accepts the IDs of a tenant's own
    controls. Raises ``ValueError`` when ``raw`` is no known spelling.
    """
    regulation = Regulation.parse(regulation)
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"Missing {regulation.label} control ID: got {raw!r}.")

    if regulation == Regulation.HIPAA:
        canonical = _hipaa(raw)
    else:
        canonical = PARSERS[regulation](raw.strip().upper())
    if canonical is None:
        raise ValueError(
            f"Unknown {regulation.label} control ID {raw!r}. "
            f"Use a form such as {EXAMPLES[regulation]}."
        )
    return canonical


def canonical_control_id(regulation, raw):
    """Return the catalog's spelling of control ``raw`` of ``regulation``.

    ``regulation`` is a ``Regulation`` or its name in any case. Raises
    ``ValueError`` when ``raw`` is no known spelling of a control, or when
    the control it names is not in the bundled catalog.
    """
    regulation = Regulation.parse(regulation)
    canonical = canonical_form(regulation, raw)
    if canonical not in catalog_ids()[regulation]:
        spelled = "" if canonical == raw.strip() else f" (read as {canonical!r})"
        raise ValueError(
            f"{regulation.label} control ID {raw!r}{spelled} is not in the bundled catalog."
        )
    return canonical
