"""The trend chart SVG and the status colour map."""

import itertools
import xml.etree.ElementTree as ET

import pytest
from django.utils.safestring import SafeString

from compliance.reports.charts import point_tooltip, trend_chart_svg
from compliance.reports.presentation import STATUS_COLOURS, status_colour

SVG = "{http://www.w3.org/2000/svg}"


def make_point(day, score, failing=0, checks=1):
    return {
        "start": f"2026-03-{day:02d}",
        "end": f"2026-03-{day:02d}",
        "score": score,
        "failing_controls": failing,
        "checks": checks,
    }


def parse(svg):
    return ET.fromstring(str(svg))  # noqa: S314 - parses the chart this suite just rendered.


def polylines(root):
    return root.findall(f".//{SVG}polyline")


def circles(root):
    return root.findall(f".//{SVG}circle")


def texts(root):
    return ["".join(node.itertext()) for node in root.iter(f"{SVG}text")]


def test_chart_is_safe_string_svg():
    trend = {"granularity": "day", "points": [make_point(1, 50.0), make_point(2, 75.0)]}

    svg = trend_chart_svg(trend)

    assert isinstance(svg, SafeString)
    root = parse(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("width") == "640"
    assert root.get("height") == "220"


def test_chart_draws_one_dot_per_scored_point():
    trend = {"granularity": "day", "points": [make_point(day, 60.0 + day) for day in range(1, 11)]}

    root = parse(trend_chart_svg(trend))

    assert len(circles(root)) == 10
    lines = polylines(root)
    assert len(lines) == 1
    assert len(lines[0].get("points").split()) == 10


def test_chart_none_scores_split_polylines():
    scores = [50.0, 60.0, None, None, 70.0, 80.0, 90.0, None, 40.0]
    trend = {
        "granularity": "day",
        "points": [make_point(day, score) for day, score in enumerate(scores, start=1)],
    }

    root = parse(trend_chart_svg(trend))

    lines = polylines(root)
    assert len(lines) == 2
    assert len(lines[0].get("points").split()) == 2
    assert len(lines[1].get("points").split()) == 3
    # The lone last point is a dot without a line, and no dot represents a None score.
    assert len(circles(root)) == 6


def test_chart_none_score_never_drawn_at_zero():
    trend = {"granularity": "day", "points": [make_point(1, None), make_point(2, 100.0)]}

    root = parse(trend_chart_svg(trend))

    dots = circles(root)
    assert len(dots) == 1
    zero_line_y = max(float(line.get("y1")) for line in root.iter(f"{SVG}line"))
    assert float(dots[0].get("cy")) < zero_line_y


def test_chart_higher_score_is_drawn_higher():
    trend = {"granularity": "day", "points": [make_point(1, 20.0), make_point(2, 90.0)]}

    low, high = circles(parse(trend_chart_svg(trend)))

    assert float(high.get("cy")) < float(low.get("cy"))
    assert float(high.get("cx")) > float(low.get("cx"))


def test_chart_dot_tooltip_text():
    point = {
        "start": "2026-03-02",
        "end": "2026-03-08",
        "score": 82.5,
        "failing_controls": 3,
        "checks": 4,
    }
    trend = {"granularity": "week", "points": [point]}

    root = parse(trend_chart_svg(trend))

    tooltip = circles(root)[0].find(f"{SVG}title").text
    assert tooltip == "2026-03-02 \u2013 2026-03-08: 82.5 %, 3 failing controls, 4 checks"


def test_tooltip_singular_and_single_day():
    assert point_tooltip(make_point(5, 100.0, failing=1, checks=1)) == (
        "2026-03-05: 100.0 %, 1 failing control, 1 check"
    )
    assert point_tooltip(make_point(5, None)) == "2026-03-05: no evidence yet"


def test_chart_accessible_name_and_description():
    trend = {"granularity": "day", "points": [make_point(1, 50.0), make_point(2, None)]}

    root = parse(trend_chart_svg(trend, id_prefix="summary-trend"))

    assert root.get("aria-labelledby") == "summary-trend-title summary-trend-desc"
    title = root.find(f"{SVG}title")
    desc = root.find(f"{SVG}desc")
    assert title.get("id") == "summary-trend-title"
    assert title.text == "Compliance score trend"
    assert desc.get("id") == "summary-trend-desc"
    assert "2026-03-01 to 2026-03-02" in desc.text
    assert "Latest 50.0 %" in desc.text
    assert "1 day without evidence" in desc.text


def test_chart_escapes_hostile_title():
    hostile = "</title><script>alert(\"x\")</script><title a='b'>& more"
    trend = {"granularity": "day", "points": [make_point(1, 50.0)]}

    svg = trend_chart_svg(trend, title=hostile, id_prefix='x" onload="alert(1)')

    assert "<script" not in svg
    root = parse(svg)
    assert root.find(f"{SVG}title").text == hostile
    assert root.find(f".//{SVG}script") is None
    assert root.get("onload") is None


def test_chart_escapes_point_dates():
    point = make_point(1, 50.0)
    point["start"] = "<b>2026</b>"
    trend = {"granularity": "day", "points": [point]}

    svg = trend_chart_svg(trend)

    root = parse(svg)
    assert root.find(f".//{SVG}b") is None
    assert "<b>2026</b>" in texts(root)


def test_chart_empty_series_has_label():
    root = parse(trend_chart_svg({"granularity": "day", "points": []}))

    assert "No evidence in this period" in texts(root)
    assert polylines(root) == []
    assert circles(root) == []
    assert root.find(f"{SVG}desc").text == "No evidence in this period."


def test_chart_all_none_series_has_label():
    trend = {"granularity": "week", "points": [make_point(1, None), make_point(8, None)]}

    root = parse(trend_chart_svg(trend))

    assert "No evidence in this period" in texts(root)
    assert circles(root) == []


def test_chart_missing_trend_renders():
    root = parse(trend_chart_svg(None))

    assert "No evidence in this period" in texts(root)


def test_chart_y_axis_labels():
    root = parse(trend_chart_svg({"granularity": "day", "points": [make_point(1, 10.0)]}))

    labels = texts(root)
    for tick in ("0 %", "25 %", "50 %", "75 %", "100 %"):
        assert tick in labels


def test_chart_x_labels_thinned_without_overlap():
    points = [make_point(day, 50.0) for day in range(1, 32)]
    points = [{**point, "start": f"2026-01-{index:02d}"} for index, point in enumerate(points, 1)]

    root = parse(trend_chart_svg({"granularity": "day", "points": points}, width=400))

    x_group = root.find(f"{SVG}g[@class='x-axis']")
    positions = [float(node.get("x")) for node in x_group.iter(f"{SVG}text")]
    assert 1 < len(positions) < 31
    gaps = [right - left for left, right in itertools.pairwise(positions)]
    assert min(gaps) >= len("Jan 31") * 6


def test_chart_month_labels_show_year():
    points = [
        {**make_point(1, 50.0), "start": "2026-01-01", "end": "2026-01-31"},
        {**make_point(1, 60.0), "start": "2026-02-01", "end": "2026-02-28"},
    ]

    root = parse(trend_chart_svg({"granularity": "month", "points": points}))

    assert "Jan 2026" in texts(root)
    assert "Feb 2026" in texts(root)


def test_chart_output_is_deterministic():
    trend = {"granularity": "day", "points": [make_point(day, 50.0) for day in range(1, 8)]}

    assert trend_chart_svg(trend) == trend_chart_svg(trend)


def test_chart_uses_current_colour_for_text():
    root = parse(trend_chart_svg({"granularity": "day", "points": [make_point(1, 10.0)]}))

    for group in root.iter(f"{SVG}g"):
        if group.get("class") in {"x-axis", "y-axis"}:
            assert group.get("fill") == "currentColor"


def test_chart_rejects_non_positive_size():
    with pytest.raises(ValueError, match="width=0"):
        trend_chart_svg({"points": []}, width=0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("pass", STATUS_COLOURS["pass"]),
        ("fail", STATUS_COLOURS["fail"]),
        ("not_assessed", STATUS_COLOURS["not_assessed"]),
        ("not_applicable", STATUS_COLOURS["not_applicable"]),
        ("passed", STATUS_COLOURS["pass"]),
        ("failed", STATUS_COLOURS["fail"]),
        ("partial", STATUS_COLOURS["partial"]),
        ("pending", STATUS_COLOURS["pending"]),
        ("ready", STATUS_COLOURS["pass"]),
        ("generating", STATUS_COLOURS["generating"]),
        ("READY", STATUS_COLOURS["ready"]),
    ],
)
def test_status_colour_known(value, expected):
    assert status_colour(value) == expected


def test_status_colour_accepts_enum_member():
    from compliance.checks.models import FindingStatus

    assert status_colour(FindingStatus.FAIL) == STATUS_COLOURS["fail"]


def test_status_colour_unknown_is_neutral():
    assert status_colour("exploded") == status_colour(None)
    assert status_colour("exploded").startswith("#")


def test_status_colours_distinguish_pass_and_fail():
    assert STATUS_COLOURS["pass"] != STATUS_COLOURS["fail"]
    assert STATUS_COLOURS["not_assessed"] != STATUS_COLOURS["pass"]


def relative_luminance(colour):
    channels = [int(colour[index : index + 2], 16) / 255 for index in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


@pytest.mark.parametrize("status", sorted(STATUS_COLOURS))
def test_status_colour_contrast_with_white(status):
    ratio = 1.05 / (relative_luminance(STATUS_COLOURS[status]) + 0.05)

    assert ratio >= 4.5
