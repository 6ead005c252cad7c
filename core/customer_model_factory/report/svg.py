"""Small inline SVG charts for the evidence report: no script, no external asset, no font file.

Every chart is a plain ``<svg>`` element with a title, labelled axes and a data table fallback in
its ``<desc>``, so it renders in any browser (and prints) without JavaScript.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Final

__all__ = ["Series", "heatmap", "line_chart"]

_WIDTH: Final = 360
_HEIGHT: Final = 260
_PAD: Final = 42
_COLOURS: Final = ("#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#57606a")

Series = tuple[str, Sequence[tuple[float, float]]]
"""A named polyline: ``(label, [(x, y), ...])`` in data coordinates."""


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    x_range: tuple[float, float] = (0.0, 1.0),
    y_range: tuple[float, float] = (0.0, 1.0),
    diagonal: bool = False,
) -> str:
    """An SVG line chart of ``series`` over fixed axis ranges (points outside are clipped)."""
    x0, x1 = x_range
    y0, y1 = y_range
    span_x = (x1 - x0) or 1.0
    span_y = (y1 - y0) or 1.0
    inner_w, inner_h = _WIDTH - 2 * _PAD, _HEIGHT - 2 * _PAD

    def px(x: float) -> float:
        return _PAD + (min(max(x, x0), x1) - x0) / span_x * inner_w

    def py(y: float) -> float:
        return _HEIGHT - _PAD - (min(max(y, y0), y1) - y0) / span_y * inner_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {_HEIGHT}" '
        f'width="{_WIDTH}" height="{_HEIGHT}" role="img" class="chart">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{_PAD}" y="{_PAD}" width="{inner_w}" height="{inner_h}" fill="#fff" '
        'stroke="#8c959f"/>',
    ]
    for tick in range(6):
        fraction = tick / 5
        tx, ty = _PAD + fraction * inner_w, _HEIGHT - _PAD - fraction * inner_h
        parts.append(
            f'<text x="{_fmt(tx)}" y="{_HEIGHT - _PAD + 14}" font-size="9" '
            f'text-anchor="middle">{x0 + fraction * span_x:.2g}</text>'
        )
        parts.append(
            f'<text x="{_PAD - 4}" y="{_fmt(ty + 3)}" font-size="9" '
            f'text-anchor="end">{y0 + fraction * span_y:.2g}</text>'
        )
    if diagonal:
        parts.append(
            f'<line x1="{_fmt(px(x0))}" y1="{_fmt(py(y0))}" x2="{_fmt(px(x1))}" '
            f'y2="{_fmt(py(y1))}" stroke="#afb8c1" stroke-dasharray="4 3"/>'
        )
    for index, (label, points) in enumerate(series):
        colour = _COLOURS[index % len(_COLOURS)]
        if points:
            path = " ".join(f"{_fmt(px(x))},{_fmt(py(y))}" for x, y in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        parts.append(
            f'<text x="{_PAD + 6}" y="{_PAD + 14 + 12 * index}" font-size="10" '
            f'fill="{colour}">{escape(label)}</text>'
        )
    parts += [
        f'<text x="{_WIDTH / 2}" y="{_HEIGHT - 8}" font-size="11" text-anchor="middle">'
        f"{escape(x_label)}</text>",
        f'<text x="12" y="{_HEIGHT / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {_HEIGHT / 2})">{escape(y_label)}</text>',
        f'<text x="{_WIDTH / 2}" y="{_PAD - 12}" font-size="12" font-weight="bold" '
        f'text-anchor="middle">{escape(title)}</text>',
        "</svg>",
    ]
    return "".join(parts)


def heatmap(
    title: str, rows: Sequence[str], columns: Sequence[str], values: Sequence[Sequence[int]]
) -> str:
    """An SVG grid of counts (a confusion matrix), shaded by count, each cell labelled."""
    cell_w, cell_h, left, top = 74, 34, 90, 54
    width = left + cell_w * len(columns) + 10
    height = top + cell_h * len(rows) + 10
    peak = max((v for row in values for v in row), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" class="chart">',
        f"<title>{escape(title)}</title>",
        f'<text x="{width / 2}" y="16" font-size="12" font-weight="bold" '
        f'text-anchor="middle">{escape(title)}</text>',
    ]
    for j, column in enumerate(columns):
        parts.append(
            f'<text x="{left + cell_w * j + cell_w / 2}" y="{top - 8}" font-size="10" '
            f'text-anchor="middle">{escape(column)}</text>'
        )
    for i, row in enumerate(rows):
        y = top + cell_h * i
        parts.append(
            f'<text x="{left - 6}" y="{y + cell_h / 2 + 4}" font-size="10" '
            f'text-anchor="end">{escape(row)}</text>'
        )
        for j, value in enumerate(values[i]):
            shade = int(245 - 170 * (value / peak))
            text_colour = "#fff" if shade < 150 else "#24292f"
            x = left + cell_w * j
            parts.append(
                f'<rect x="{x}" y="{y}" width="{cell_w}" height="{cell_h}" '
                f'fill="rgb({shade},{shade + 5 if shade < 250 else 250},255)" stroke="#fff"/>'
                f'<text x="{x + cell_w / 2}" y="{y + cell_h / 2 + 4}" font-size="12" '
                f'text-anchor="middle" fill="{text_colour}">{value}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
