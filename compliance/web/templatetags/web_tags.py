"""Template helpers of the pages: status badges, scores and score changes."""

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from compliance.checks.models import CheckStatus, FindingStatus
from compliance.reports.models import ReportStatus
from compliance.reports.presentation import STATUS_COLOURS, status_colour

register = template.Library()

STATUS_LABELS = {
    **dict(FindingStatus.choices),
    **dict(CheckStatus.choices),
    **dict(ReportStatus.choices),
}
MINUS_SIGN = "\u2212"


def status_label(value):
    """Return the display label of a finding, check or report status value."""
    key = str(getattr(value, "value", value))
    return STATUS_LABELS.get(key, key.replace("_", " ").capitalize())


def badge_modifier(value):
    """Return the CSS class suffix of a status, ``unknown`` for a value without a colour."""
    key = str(getattr(value, "value", value)).strip().lower()
    return key if key in STATUS_COLOURS else "unknown"


@register.simple_tag
def status_badge(value):
    """Render a status as a coloured badge whose text also names the status."""
    return format_html(
        '<span class="badge badge--{}">{}</span>', badge_modifier(value), status_label(value)
    )


@register.simple_tag
def status_badge_styles():
    """Return the CSS rules that colour each badge class, from the one status colour map.

    The base template puts them in a ``<style>`` element with the response's
    CSP nonce, so the pages need no inline ``style`` attributes.
    """
    rules = [
        f".badge--{key}{{background-color:{colour}}}" for key, colour in STATUS_COLOURS.items()
    ]
    rules.append(f".badge--unknown{{background-color:{status_colour(None)}}}")
    return mark_safe("\n".join(rules))  # noqa: S308 - built from constant hex colours


@register.filter
def percent(score):
    """Format a compliance score as ``82.5 %`` with a no-break space, so ``%`` never wraps alone.

    Templates handle a ``None`` score themselves.
    """
    return f"{float(score):.1f}\N{NO-BREAK SPACE}%"


@register.filter
def signed_points(change):
    """Format a score change as ``+2.5 points`` or ``-1.0 points``, the minus being U+2212."""
    change = float(change)
    if change == 0:
        return "no change"
    sign = "+" if change > 0 else MINUS_SIGN
    return f"{sign}{abs(change):.1f} points"
