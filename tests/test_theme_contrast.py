"""WCAG contrast of the pages' colours, in the light theme and the dark theme.

The colours come from the custom properties of static/css/app.css: the
``:root`` block is the light theme, and the block inside
``@media screen and (prefers-color-scheme: dark)`` overrides it. Text needs
4.5:1 (WCAG 2.2, 1.4.3) and the chart's score line 3:1 as a graphical object
(1.4.11) against every background it is drawn on. The chart's text and axes
use ``currentColor``, so they have the contrast of ``--text``.
"""

import re
from pathlib import Path

import pytest

from compliance.reports.charts import LINE_COLOUR

STYLESHEET = Path(__file__).resolve().parent.parent / "static" / "css" / "app.css"
DARK_MEDIA = "@media screen and (prefers-color-scheme: dark)"
TEXT_MINIMUM = 4.5
GRAPHICS_MINIMUM = 3.0


def custom_properties(block):
    return dict(re.findall(r"(--[\w-]+):\s*(#[0-9a-fA-F]{6})\s*;", block))


def themes():
    """Return ``{"light": {...}, "dark": {...}}`` with the colour properties of each theme."""
    css = STYLESHEET.read_text(encoding="utf-8")
    light = custom_properties(re.search(r"^:root\s*\{(.*?)\}", css, re.S | re.M).group(1))
    dark_start = css.index(DARK_MEDIA)
    dark_root = re.search(r":root\s*\{(.*?)\}", css[dark_start:], re.S).group(1)
    return {"light": light, "dark": {**light, **custom_properties(dark_root)}}


def relative_luminance(hex_colour):
    channels = [int(hex_colour[index : index + 2], 16) / 255 for index in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first, second):
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_contrast_formula_matches_wcag_examples():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


def test_dark_theme_overrides_colours():
    colours = themes()

    assert colours["dark"]["--background"] != colours["light"]["--background"]
    assert colours["dark"]["--chart-line"] != colours["light"]["--chart-line"]


def test_chart_attribute_colour_is_light_theme_line():
    """The PDF uses the SVG attribute, so it must be the light theme's line colour."""
    assert themes()["light"]["--chart-line"].lower() == LINE_COLOUR.lower()


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("background", ["--background", "--surface", "--row-hover"])
@pytest.mark.parametrize("foreground", ["--text", "--muted", "--link"])
def test_text_contrast(theme, background, foreground):
    colours = themes()[theme]

    ratio = contrast(colours[foreground], colours[background])

    assert ratio >= TEXT_MINIMUM, f"{theme}: {foreground} on {background} is {ratio:.2f}:1"


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("background", ["--background", "--surface"])
def test_chart_line_contrast(theme, background):
    colours = themes()[theme]

    ratio = contrast(colours["--chart-line"], colours[background])

    assert ratio >= GRAPHICS_MINIMUM, f"{theme}: chart line on {background} is {ratio:.2f}:1"


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize(
    ("foreground", "background"),
    [
        ("--text", "--info-surface"),
        ("--text", "--success-surface"),
        ("--text", "--error-surface"),
        ("--link", "--info-surface"),
        ("--error-border", "--background"),
    ],
)
def test_notice_contrast(theme, foreground, background):
    colours = themes()[theme]

    ratio = contrast(colours[foreground], colours[background])

    assert ratio >= TEXT_MINIMUM, f"{theme}: {foreground} on {background} is {ratio:.2f}:1"


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_button_text_contrast(theme):
    colours = themes()[theme]

    ratio = contrast("#ffffff", colours["--accent"])

    assert ratio >= TEXT_MINIMUM, f"{theme}: button text on --accent is {ratio:.2f}:1"
