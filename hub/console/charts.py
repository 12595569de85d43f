"""Charts drawn on the server as SVG: stacked columns over time or buckets, horizontal bars
for ranked things, each with axes, a legend, a ``<title>`` per bar for the pointer, and a
label for screen readers (the page puts the same numbers in a table beside it).

Everything is drawn here, in the page itself, so the console needs no charting script and
nothing from another server; colours are SVG presentation attributes (``fill=``), not
inline styles, which the console's content security policy forbids. The size is a
``viewBox`` the stylesheet scales to the width of the page.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#b07aa1",
    "#76b7b2",
    "#edc948",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
    "#e15759",
)
"""Colours of series in order (Tableau 10, told apart by most colour-blind readers)."""
GOOD = "#3d8c40"
BAD = "#d1453b"

WIDTH = 600
FONT = 12
_INK = "#333"
_RULE = "#d8d8d8"
_LEGEND_ROW = 18
_MAX_LABEL = 170


@dataclass(frozen=True, slots=True)
class Series:
    """One stacked layer: a channel, a kind, met or breached."""

    label: str
    values: tuple[int, ...]
    colour: str


@dataclass(frozen=True, slots=True)
class Chart:
    """What a chart shows: counts of each series in each category (a period, an age, a
    team), with the words a reader sees."""

    title: str
    categories: tuple[str, ...]
    """Full names, shown on hover and, for bars, beside each bar."""
    series: tuple[Series, ...]
    ticks: tuple[str, ...] | None = None
    """Shorter names for the axis under columns (``09-01`` for ``2026-09-01``)."""
    notes: tuple[str, ...] | None = None
    """Text after each column or bar; by default its total."""

    def totals(self) -> list[int]:
        return [sum(s.values[i] for s in self.series) for i in range(len(self.categories))]

    def note(self, index: int) -> str:
        return self.notes[index] if self.notes is not None else str(self.totals()[index])

    def summary(self) -> str:
        """The chart in one sentence, for a screen reader's ``aria-label``."""
        names = ", ".join(s.label for s in self.series)
        return f"{self.title}: {len(self.categories)} × ({names}), {sum(self.totals())}"


def palette(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def text_width(text: str, size: float = FONT) -> float:
    """An estimate good enough for layout: CJK characters are twice as wide as Latin."""
    return sum(size if unicodedata.east_asian_width(c) in "WF" else size * 0.6 for c in text)


def _clip(text: str, width: float) -> str:
    if text_width(text) <= width:
        return text
    while text and text_width(text + "…") > width:
        text = text[:-1]
    return text + "…"


def _scale(peak: int) -> tuple[int, int]:
    """The axis's top and tick step: round whole numbers, at most about five intervals."""
    target = max(peak, 1) / 4
    magnitude = 10 ** math.floor(math.log10(target)) if target >= 1 else 1
    step = magnitude
    for multiple in (1, 2, 2.5, 5, 10):
        step = max(1, int(multiple * magnitude))
        if step >= target:
            break
    return max(step, math.ceil(peak / step) * step), step


def _text(x: float, y: float, text: str, *, anchor: str = "start", css: str = "") -> str:
    kind = f' class="{css}"' if css else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{FONT}" '
        f'fill="{_INK}"{kind}>{escape(text)}</text>'
    )


def _rect(x: float, y: float, w: float, h: float, fill: str, title: str) -> str:
    return (
        f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
        f'fill="{fill}"><title>{escape(title)}</title></rect>'
    )


def _legend(series: Sequence[Series], top: float) -> tuple[list[str], float]:
    """Swatches and names left to right, wrapping; returns the parts and the height used.
    A single series needs no legend: the title names it."""
    if len(series) < 2:
        return [], 0
    parts, x, y = ['<g class="legend">'], 0.0, top
    for s in series:
        width = 16 + text_width(s.label) + 14
        if x and x + width > WIDTH:
            x, y = 0.0, y + _LEGEND_ROW
        parts.append(
            f'<rect x="{x:.1f}" y="{y + 1:.1f}" width="11" height="11" fill="{s.colour}"/>'
        )
        parts.append(_text(x + 16, y + 11, s.label))
        x += width
    parts.append("</g>")
    return parts, y - top + _LEGEND_ROW + 6


def _svg(chart: Chart, height: float, body: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height:.0f}" role="img" '
        f'aria-label="{escape(chart.summary())}" xmlns="http://www.w3.org/2000/svg" '
        f'font-family="inherit">' + "".join(body) + "</svg>"
    )


def _every(labels: Sequence[str], band: float) -> int:
    """Label every n-th column so that the labels under the axis do not overlap."""
    widest = max((text_width(label) for label in labels), default=0) + 6
    return max(1, math.ceil(widest / band)) if band > 0 else 1


def columns(chart: Chart, plot_height: int = 200) -> Markup:
    """Stacked columns, one per category (left to right), the series stacked bottom up."""
    legend, legend_height = _legend(chart.series, 0)
    left, right, top = 44.0, 8.0, legend_height + 16
    bottom = top + plot_height
    count = max(len(chart.categories), 1)
    band = (WIDTH - left - right) / count
    totals = chart.totals()
    axis_top, step = _scale(max(totals, default=0))
    unit = plot_height / axis_top
    body = [*legend, *_value_axis_rows(left, right, bottom, axis_top, step, unit)]
    ticks = chart.ticks or chart.categories
    every = _every(ticks, band)
    show_notes = text_width(max((chart.note(i) for i in range(count)), key=len, default="")) < band
    for i, name in enumerate(chart.categories):
        x = left + i * band + band * 0.15
        width = band * 0.7
        y = bottom
        body.append("<g>")
        for s in chart.series:
            value = s.values[i]
            if value:
                h = value * unit
                y -= h
                body.append(_rect(x, y, width, h, s.colour, f"{name} · {s.label}: {value}"))
        body.append("</g>")
        if show_notes and totals[i]:
            body.append(_text(x + width / 2, y - 4, chart.note(i), anchor="middle", css="note"))
        if i % every == 0:
            body.append(_text(x + width / 2, bottom + 16, ticks[i], anchor="middle"))
    body.append(
        f'<line x1="{left}" y1="{bottom}" x2="{WIDTH - right}" y2="{bottom}" stroke="{_INK}"/>'
    )
    return _svg(chart, bottom + 24, body)


def _value_axis_rows(
    left: float, right: float, bottom: float, axis_top: int, step: int, unit: float
) -> list[str]:
    """Horizontal rules with their values, for columns."""
    parts = []
    for value in range(0, axis_top + 1, step):
        y = bottom - value * unit
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{WIDTH - right}" y2="{y:.1f}" stroke="{_RULE}"/>'
        )
        parts.append(_text(left - 6, y + 4, str(value), anchor="end"))
    return parts


def bars(chart: Chart, row_height: int = 26) -> Markup:
    """Horizontal stacked bars, one per category (top to bottom), named on the left and
    with their note (a total, a share) on the right."""
    legend, legend_height = _legend(chart.series, 0)
    label_width = min(_MAX_LABEL, max((text_width(c) for c in chart.categories), default=0))
    left, right, top = label_width + 12, 72.0, legend_height + 8
    plot_width = WIDTH - left - right
    totals = chart.totals()
    axis_top, step = _scale(max(totals, default=0))
    unit = plot_width / axis_top
    bottom = top + row_height * len(chart.categories)
    body = [*legend, *_category_axis_columns(left, top, bottom, axis_top, step, unit)]
    for i, name in enumerate(chart.categories):
        y = top + i * row_height + row_height * 0.2
        height = row_height * 0.6
        x = left
        body.append(f"<g><title>{escape(name)}</title>")
        body.append(_text(left - 6, y + height - 3, _clip(name, label_width), anchor="end"))
        for s in chart.series:
            value = s.values[i]
            if value:
                w = value * unit
                body.append(_rect(x, y, w, height, s.colour, f"{name} · {s.label}: {value}"))
                x += w
        body.append(_text(x + 6, y + height - 3, chart.note(i), css="note"))
        body.append("</g>")
    body.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="{_INK}"/>')
    return _svg(chart, bottom + 22, body)


def _category_axis_columns(
    left: float, top: float, bottom: float, axis_top: int, step: int, unit: float
) -> list[str]:
    """Vertical rules with their values under the plot, for bars."""
    parts = []
    for value in range(0, axis_top + 1, step):
        x = left + value * unit
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="{_RULE}"/>')
        parts.append(_text(x, bottom + 15, str(value), anchor="middle"))
    return parts
