"""Colours of statuses, kept in one place so the pages and the PDF badges agree.

The keys are the stored values of ``FindingStatus`` (pass, fail, not_assessed,
not_applicable), ``CheckStatus`` (passed, failed, partial, pending) and
``ReportStatus`` (ready, generating, failed). Each colour is dark enough to
carry white badge text at a WCAG contrast ratio of at least 4.5:1.
"""

GREEN = "#1a7f37"
RED = "#cf222e"
ORANGE = "#bc4c00"
AMBER = "#9a6700"
BLUE = "#0969da"
SLATE = "#57606a"
GREY = "#6e7781"

STATUS_COLOURS = {
    # Finding statuses, one per control.
    "pass": GREEN,
    "fail": RED,
    "not_assessed": AMBER,
    "not_applicable": GREY,
    # Check statuses.
    "passed": GREEN,
    "failed": RED,
    "partial": ORANGE,
    "pending": SLATE,
    # Report statuses ("failed" is shared with checks and means the same colour).
    "ready": GREEN,
    "generating": BLUE,
}

DEFAULT_STATUS_COLOUR = SLATE


def status_colour(value):
    """Return the hex colour for a status value or enum member, or a neutral grey if unknown.

    Unknown values get a colour instead of an error so that a status added
    later still renders as a badge.
    """
    if value is None:
        return DEFAULT_STATUS_COLOUR
    key = str(getattr(value, "value", value)).strip().lower()
    return STATUS_COLOURS.get(key, DEFAULT_STATUS_COLOUR)
