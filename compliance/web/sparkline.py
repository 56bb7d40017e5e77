"""A compact SVG sparkline of compliance scores, for the overview's regulation cards.

It draws the same points as ``compliance.reports.charts.trend_chart_svg``
without axes or labels, so it fits beside a score. Colours are presentation
attributes and no ``style`` attribute is used, so the strict
Content-Security-Policy of the pages allows it inline.
"""

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from compliance.reports.charts import LINE_COLOUR, describe_series

PADDING = 3
DOT_RADIUS = 2.5


def sparkline_svg(trend, *, width=160, height=40) -> SafeString:
    """Render ``trend`` (``{"granularity", "points"}``) as a small line of scores from 0 to 100 %.

    Points without a score break the line, as in the full chart. The text
    alternative is the full chart's one-sentence summary of the series.
    """
    if width <= 2 * PADDING or height <= 2 * PADDING:
        raise ValueError(
            f"Invalid sparkline size {width}x{height}: width and height must exceed {2 * PADDING}."
        )

    points = list((trend or {}).get("points") or [])
    summary = describe_series(points, (trend or {}).get("granularity") or "day")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sparkline" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(summary)}">',
        f"<title>{escape(summary)}</title>",
        _baseline(width, height),
        *_lines(points, width, height),
        _last_dot(points, width, height),
        "</svg>",
    ]
    return mark_safe("".join(parts))  # noqa: S308 - numbers and escaped text only.


def _x(index, count, width):
    if count == 1:
        return width / 2
    return PADDING + index * (width - 2 * PADDING) / (count - 1)


def _y(score, height):
    clamped = min(max(float(score), 0.0), 100.0)
    return height - PADDING - clamped / 100.0 * (height - 2 * PADDING)


def _baseline(width, height):
    """Draw the 0 % line faintly, so a score of 0 still reads as a line on something."""
    y = _fmt(height - PADDING)
    return (
        f'<line x1="{PADDING}" y1="{y}" x2="{_fmt(width - PADDING)}" y2="{y}" '
        'stroke="currentColor" stroke-opacity="0.35" stroke-width="1"/>'
    )


def _runs(points):
    """Yield lists of consecutive ``(index, score)`` pairs, split where the score is ``None``."""
    run = []
    for index, point in enumerate(points):
        if point.get("score") is None:
            if run:
                yield run
            run = []
            continue
        run.append((index, point["score"]))
    if run:
        yield run


def _lines(points, width, height):
    parts = []
    for run in _runs(points):
        if len(run) < 2:
            continue
        coordinates = " ".join(
            f"{_fmt(_x(index, len(points), width))},{_fmt(_y(score, height))}"
            for index, score in run
        )
        parts.append(
            f'<polyline class="score-line" points="{coordinates}" fill="none" '
            f'stroke="{LINE_COLOUR}" '
            'stroke-width="2" stroke-linejoin="round" stroke-linecap="round"/>'
        )
    return parts


def _last_dot(points, width, height):
    """Mark the latest scored point, which is the score shown beside the sparkline."""
    scored = [
        (index, point["score"])
        for index, point in enumerate(points)
        if point.get("score") is not None
    ]
    if not scored:
        return ""
    index, score = scored[-1]
    return (
        f'<circle cx="{_fmt(_x(index, len(points), width))}" cy="{_fmt(_y(score, height))}" '
        f'r="{DOT_RADIUS}" class="score-dot" fill="{LINE_COLOUR}"/>'
    )


def _fmt(value):
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text
