"""Server-side SVG charts for the report pages and the PDF.

The SVG is self-contained: colours are presentation attributes, text and axes
use ``currentColor`` so they follow the surrounding text colour (dark mode),
and nothing refers to external CSS, scripts or images, so WeasyPrint renders
the same markup as a browser. The score line and dots also carry the classes
``score-line`` and ``score-dots``, so the pages' stylesheet can give them the
dark theme's colour, because a CSS rule overrides a presentation attribute.
Output is deterministic for a given input.
This module imports nothing from the project, so any layer may use it.
"""

import math
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

LINE_COLOUR = "#0969da"
FONT_FAMILY = "DejaVu Sans, Verdana, sans-serif"
FONT_SIZE = 11
# Average advance of one character at FONT_SIZE in DejaVu Sans, in user units.
# NOTE: an estimate used to thin the x labels, so a wider fallback font may still crowd them.
CHAR_WIDTH = 6.6
LABEL_GAP = 10
Y_TICKS = (0, 25, 50, 75, 100)
EMPTY_LABEL = "No evidence in this period"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
GRANULARITY_NOUNS = {"day": "day", "week": "week", "month": "month"}
# Typographic range separator between the first and last day of a bucket.
EN_DASH = "\u2013"


@dataclass(frozen=True)
class Plot:
    """The drawing area inside the axes, in SVG user units."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self):
        return self.right - self.left

    @property
    def height(self):
        return self.bottom - self.top

    def y_for(self, score):
        clamped = min(max(float(score), 0.0), 100.0)
        return self.bottom - clamped / 100.0 * self.height

    def x_for(self, index, count):
        """Return the centre of band ``index`` of ``count`` equal bands."""
        return self.left + (index + 0.5) * self.width / count


def trend_chart_svg(
    trend, *, width=640, height=220, title="Compliance score trend", id_prefix="trend-chart"
) -> SafeString:
    """Render ``summary["trend"]`` of a report as an inline, accessible SVG line chart.

    Points whose score is ``None`` (no evidence yet) break the line instead
    of being drawn at 0 %. Pass a distinct ``id_prefix`` when one page contains
    several charts, because the ``<title>`` and ``<desc>`` ids must be unique.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"Chart size must be positive, got width={width} height={height}")

    points = list((trend or {}).get("points") or [])
    granularity = (trend or {}).get("granularity") or "day"
    plot = Plot(left=46, top=12, right=width - 12, bottom=height - 30)
    title_id = f"{id_prefix}-title"
    desc_id = f"{id_prefix}-desc"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{escape(title_id)} {escape(desc_id)}" '
        f'font-family="{FONT_FAMILY}" font-size="{FONT_SIZE}">',
        f'<title id="{escape(title_id)}">{escape(title)}</title>',
        f'<desc id="{escape(desc_id)}">{escape(describe_series(points, granularity))}</desc>',
        *_y_axis(plot),
        *_x_axis(plot, points, granularity),
        *_score_lines(plot, points),
        *_score_dots(plot, points),
    ]
    if not any(point.get("score") is not None for point in points):
        parts.append(_empty_label(plot))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated value is escaped above.


def describe_series(points, granularity):
    """Return a one-sentence text summary of the series for screen readers."""
    scored = [point for point in points if point.get("score") is not None]
    if not scored:
        return f"{EMPTY_LABEL}."

    noun = GRANULARITY_NOUNS.get(granularity, "period")
    scores = [float(point["score"]) for point in scored]
    missing = len(points) - len(scored)
    text = (
        f"Compliance score per {noun} from {points[0]['start']} to {points[-1]['end']}. "
        f"Latest {_percent(scores[-1])}, lowest {_percent(min(scores))}, "
        f"highest {_percent(max(scores))}."
    )
    if missing:
        plural = "" if missing == 1 else "s"
        text += f" {missing} {noun}{plural} without evidence."
    return text


def point_tooltip(point):
    """Return a point's tooltip: ``<start> <en dash> <end>: 82.5 %, 3 failing controls, 4 checks``.

    A one-day bucket shows only its date, and a point without a score reads "no evidence yet".
    """
    start, end = point.get("start", ""), point.get("end", "")
    span = start if start == end else f"{start} {EN_DASH} {end}"
    score = point.get("score")
    if score is None:
        return f"{span}: no evidence yet"

    failing = int(point.get("failing_controls") or 0)
    checks = int(point.get("checks") or 0)
    return (
        f"{span}: {_percent(score)}, "
        f"{failing} failing control{'' if failing == 1 else 's'}, "
        f"{checks} check{'' if checks == 1 else 's'}"
    )


def _percent(score):
    return f"{float(score):.1f} %"


def _y_axis(plot):
    """Draw the horizontal gridlines at 0, 25, 50, 75 and 100 % and their labels."""
    parts = ['<g class="y-axis" fill="currentColor" stroke="currentColor">']
    for tick in Y_TICKS:
        y = _fmt(plot.y_for(tick))
        opacity = "0.6" if tick == 0 else "0.18"
        parts.append(
            f'<line x1="{_fmt(plot.left)}" y1="{y}" x2="{_fmt(plot.right)}" y2="{y}" '
            f'stroke-width="1" stroke-opacity="{opacity}"/>'
        )
        parts.append(
            f'<text x="{_fmt(plot.left - 6)}" y="{y}" text-anchor="end" '
            f'dominant-baseline="middle" stroke="none">{tick} %</text>'
        )
    parts.append("</g>")
    return parts


def _x_axis(plot, points, granularity):
    """Draw the x labels, keeping only every n-th one so that neighbours never overlap."""
    if not points:
        return []

    labels = [_x_label(point.get("start", ""), granularity) for point in points]
    band = plot.width / len(points)
    widest = max(len(label) for label in labels) * CHAR_WIDTH + LABEL_GAP
    step = max(1, math.ceil(widest / band))

    parts = ['<g class="x-axis" fill="currentColor" text-anchor="middle">']
    y = _fmt(plot.bottom + 18)
    for index in range(0, len(points), step):
        x = _fmt(plot.x_for(index, len(points)))
        parts.append(f'<text x="{x}" y="{y}">{escape(labels[index])}</text>')
    parts.append("</g>")
    return parts


def _x_label(iso_date, granularity):
    """Return ``Mar 2`` for days and weeks or ``Mar 2026`` for months, from ``YYYY-MM-DD``."""
    try:
        year, month, day = (int(part) for part in str(iso_date).split("-"))
        name = MONTHS[month - 1]
    except (ValueError, IndexError):
        return str(iso_date)
    if granularity == "month":
        return f"{name} {year}"
    return f"{name} {day}"


def _runs(points):
    """Yield lists of consecutive ``(index, score)`` pairs, split wherever the score is None."""
    run = []
    for index, point in enumerate(points):
        score = point.get("score")
        if score is None:
            if run:
                yield run
            run = []
            continue
        run.append((index, score))
    if run:
        yield run


def _score_lines(plot, points):
    """Draw one polyline per run of two or more scored points. A lone point gets only a dot."""
    parts = []
    for run in _runs(points):
        if len(run) < 2:
            continue
        coordinates = " ".join(
            f"{_fmt(plot.x_for(index, len(points)))},{_fmt(plot.y_for(score))}"
            for index, score in run
        )
        parts.append(
            f'<polyline class="score-line" points="{coordinates}" fill="none" '
            f'stroke="{LINE_COLOUR}" '
            'stroke-width="2" stroke-linejoin="round" stroke-linecap="round"/>'
        )
    return parts


def _score_dots(plot, points):
    parts = [f'<g class="points score-dots" fill="{LINE_COLOUR}">']
    for index, point in enumerate(points):
        score = point.get("score")
        if score is None:
            continue
        parts.append(
            f'<circle cx="{_fmt(plot.x_for(index, len(points)))}" cy="{_fmt(plot.y_for(score))}" '
            f'r="3.5"><title>{escape(point_tooltip(point))}</title></circle>'
        )
    parts.append("</g>")
    return parts


def _empty_label(plot):
    """Draw the empty-series label midway between the 50 % and 75 % gridlines, clear of both."""
    x = _fmt(plot.left + plot.width / 2)
    y = _fmt(plot.y_for(62.5))
    return (
        f'<text class="empty" x="{x}" y="{y}" text-anchor="middle" dominant-baseline="middle" '
        f'fill="currentColor" font-size="{FONT_SIZE + 2}">{escape(EMPTY_LABEL)}</text>'
    )


def _fmt(value):
    """Format a coordinate with at most two decimals and no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
