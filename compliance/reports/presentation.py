"""Colours of statuses, kept in one place so the pages and the PDF badges agree.

The keys are the stored values of ``FindingStatus`` (pass, fail, not_assessed,
not_applicable), ``CheckStatus`` (passed, failed, partial, pending) and
``ReportStatus`` (ready, generating, failed). Each colour is dark enough to
carry white badge text at a WCAG contrast ratio of at least 4.5:1.

The remediation wording at the end is also shared by the pages and the PDF.
"""

import datetime as dt

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


# Time to remediate, worded once for the report page and the PDF.

DURATION_UNITS = [("d", 86400), ("h", 3600), ("min", 60)]


def format_duration(seconds):
    """Format whole seconds as at most two units, e.g. ``3 d 6 h`` or ``12 h 30 min``.

    The smaller units are cut off, not rounded, and durations under a minute
    print in seconds. ``None`` prints as an empty string.
    """
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds} s"
    parts = []
    remaining = seconds
    for unit, size in DURATION_UNITS:
        count, remaining = divmod(remaining, size)
        if count or parts:
            parts.append((count, unit))
    labels = [f"{count} {unit}" for count, unit in parts[:2] if count]
    return " ".join(labels)


def remediation_text(entry, zone):
    """Return one line on a finding entry's remediation, with times in ``zone``.

    Reports generated before the remediation fields existed return an empty
    string, as does a control that did not fail in the period.
    """
    state = entry.get("remediation_state")
    failing_since = _local(entry.get("failing_since"), zone)
    if state == "remediated":
        remediated_at = _local(entry.get("remediated_at"), zone)
        duration = format_duration(entry.get("time_to_remediate_seconds"))
        return f"Remediated {remediated_at}, after {duration}"
    if state == "still_failing":
        return f"Still failing since {failing_since}"
    if state == "not_remediated":
        return f"Failed since {failing_since}, no pass since"
    return ""


def remediation_summary_text(summary):
    """Return the summary line on remediation, or an empty string for older reports."""
    remediation = summary.get("remediation")
    if not remediation:
        return ""
    remediated = remediation["remediated_controls"]
    still_failing = remediation["still_failing_controls"]
    counts = (
        f"{remediated} control{'' if remediated == 1 else 's'} remediated, "
        f"{still_failing} still failing"
    )
    median = remediation["median_time_to_remediate_seconds"]
    if median is None:
        return f"No control was remediated in the period ({counts})."
    return f"Median time to remediate: {format_duration(median)} ({counts})."


def _local(value, zone):
    """Format an ISO 8601 UTC string as ``2026-03-02 14:05`` in ``zone``."""
    if not value:
        return ""
    return dt.datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%d %H:%M")
