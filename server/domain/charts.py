"""Charts drawn as SVG text on the server (the pages' CSP allows no scripts): horizontal bars
and columns, each with a title for screen readers and an empty state instead of a division by
zero. Pure: values in, well-formed markup out; the colours are app.css classes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.etree import ElementTree as ET

SVG_NS = "http://www.w3.org/2000/svg"
WIDTH = 640
ROW = 26  # height of one horizontal bar's row
LABEL_WIDTH = 170  # the horizontal bars' label column
VALUE_WIDTH = 64  # room for the value written after a bar
COLUMNS_HEIGHT = 220
TOP, BOTTOM = 16, 40  # margins of a column chart: value labels above, category labels below
EMPTY_HEIGHT = 72
MAX_LABEL = 12  # characters of a label shown in full; longer ones are cut with "…"


@dataclass(frozen=True)
class Bar:
    """One bar: its label, its value, and how the value is written next to it."""

    label: str
    value: float
    text: str


def _svg(title: str, height: int, css: str) -> ET.Element:
    svg = ET.Element(
        "svg",
        {
            "xmlns": SVG_NS,
            "class": f"chart {css}",
            "viewBox": f"0 0 {WIDTH} {height}",
            "role": "img",
            "aria-label": title,
            "preserveAspectRatio": "xMinYMin meet",
        },
    )
    ET.SubElement(svg, "title").text = title
    return svg


def _text(parent: ET.Element, x: float, y: float, text: str, css: str, anchor: str) -> None:
    node = ET.SubElement(
        parent,
        "text",
        {"x": _n(x), "y": _n(y), "class": css, "text-anchor": anchor},
    )
    node.text = text


def _n(value: float) -> str:
    """A coordinate written briefly (12, 12.5)."""
    return f"{value:.1f}".removesuffix(".0")


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…"


def _empty(title: str, empty: str, css: str) -> str:
    svg = _svg(title, EMPTY_HEIGHT, f"{css} chart-empty")
    _text(svg, WIDTH / 2, EMPTY_HEIGHT / 2 + 5, empty, "chart-empty-text", "middle")
    return _markup(svg)


def _markup(svg: ET.Element) -> str:
    return ET.tostring(svg, encoding="unicode")


def horizontal_bars(
    bars: Sequence[Bar], *, title: str, empty: str, maximum: float | None = None
) -> str:
    """One bar per row, scaled to `maximum` (100 for percentages) or to the largest value;
    with no bars, the `empty` text."""
    if not bars:
        return _empty(title, empty, "chart-hbars")
    top = maximum if maximum is not None else max(bar.value for bar in bars)
    height = len(bars) * ROW + 8
    svg = _svg(title, height, "chart-hbars")
    area = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    for index, bar in enumerate(bars):
        y = 4 + index * ROW
        share = min(max(bar.value / top, 0.0), 1.0) if top > 0 else 0.0
        _text(svg, LABEL_WIDTH - 8, y + ROW / 2 + 4, _short(bar.label), "chart-label", "end")
        ET.SubElement(
            svg,
            "rect",
            {
                "class": "chart-track",
                "x": _n(LABEL_WIDTH),
                "y": _n(y + 4),
                "width": _n(area),
                "height": _n(ROW - 8),
            },
        )
        ET.SubElement(
            svg,
            "rect",
            {
                "class": "chart-bar",
                "x": _n(LABEL_WIDTH),
                "y": _n(y + 4),
                "width": _n(area * share),
                "height": _n(ROW - 8),
            },
        ).append(_tooltip(f"{bar.label}: {bar.text}"))
        _text(svg, LABEL_WIDTH + area + 6, y + ROW / 2 + 4, bar.text, "chart-value", "start")
    return _markup(svg)


def columns(bars: Sequence[Bar], *, title: str, empty: str) -> str:
    """Columns side by side, scaled to the largest value; when every value is zero (or there
    are none), the baseline with the `empty` text above it."""
    if not bars:
        return _empty(title, empty, "chart-columns")
    top = max(bar.value for bar in bars)
    svg = _svg(title, COLUMNS_HEIGHT, "chart-columns")
    base = COLUMNS_HEIGHT - BOTTOM
    plot = base - TOP - 14  # room for the value written above the tallest column
    slot = WIDTH / len(bars)
    width = max(min(slot * 0.6, 56.0), 2.0)
    ET.SubElement(
        svg,
        "line",
        {"class": "chart-axis", "x1": "0", "y1": _n(base), "x2": _n(WIDTH), "y2": _n(base)},
    )
    for index, bar in enumerate(bars):
        middle = slot * index + slot / 2
        share = bar.value / top if top > 0 else 0.0
        tall = plot * min(max(share, 0.0), 1.0)
        ET.SubElement(
            svg,
            "rect",
            {
                "class": "chart-bar",
                "x": _n(middle - width / 2),
                "y": _n(base - tall),
                "width": _n(width),
                "height": _n(tall),
            },
        ).append(_tooltip(f"{bar.label}: {bar.text}"))
        if top > 0:
            _text(svg, middle, base - tall - 4, bar.text, "chart-value", "middle")
        _text(svg, middle, base + 16, _short(bar.label), "chart-label", "middle")
    if top <= 0 or math.isnan(top):
        _text(svg, WIDTH / 2, (TOP + base) / 2, empty, "chart-empty-text", "middle")
    return _markup(svg)


def _tooltip(text: str) -> ET.Element:
    node = ET.Element("title")
    node.text = text
    return node
