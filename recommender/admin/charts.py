"""Server-rendered SVG charts for the admin: no JavaScript library, nothing loaded from the internet.

Each function takes plain numbers and returns ``SafeString`` markup that a template
drops in as is. Every label goes through ``escape``; numbers are formatted here.

Text is laid out from an estimate of its width (a generous average advance per
character), so the renderer can keep every label inside the ``viewBox``: x labels
are thinned until they no longer touch, long ones are shortened with "…" (the full
text stays in a tooltip), and the y axis gets round ticks (whole numbers on count
axes). ``tests/integration/test_admin_browser.py`` checks the result with the
fonts of a real browser.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#417690", "#e07b39", "#5b9a68", "#b0413e", "#7d5ba6", "#c9a227", "#3f8f8f", "#8c6d46")
WIDTH = 640
PAD_LEFT, PAD_RIGHT, PAD_TOP = 52, 16, 14
PLOT_BOTTOM = 180  # y of the x axis
TICK_FONT, LEGEND_FONT = 11, 12
EM = 0.65  # estimated average advance of a character, in ems: wide enough for DejaVu Sans digits
LABEL_GAP = 10  # least room between two x labels
EDGE = 2  # least room between a label and the edge of the viewBox
LEGEND_ROW = 18


@dataclass(frozen=True)
class Series:
    """One line of a line chart: a label and one value per x label (``None`` = no data)."""

    label: str
    values: Sequence[float | None]


def text_width(text: str, font_size: float) -> float:
    """Estimated rendered width of ``text``, on the generous side so that layouts never overflow."""
    return len(text) * font_size * EM


def shorten(text: str, width: float, font_size: float) -> str:
    """``text`` cut with "…" to fit ``width`` (at least one character is kept)."""
    if text_width(text, font_size) <= width:
        return text
    keep = max(1, int(width / (font_size * EM)) - 1)
    return text[:keep].rstrip() + "…"


def nice_ticks(top: float, *, integer: bool = False, count: int = 5) -> list[float]:
    """Ticks from 0 to a round value at or above ``top``, at most ``count`` of them, in 1-2-2.5-5 steps.

    ``integer`` keeps steps whole (event counts have no halves): 1, 2, 5, 10, 20...
    """
    top = top if top > 0 else 1.0
    raw = top / (count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    multipliers = (1, 2, 5, 10) if integer else (1, 2, 2.5, 5, 10)
    step = next(m * magnitude for m in multipliers if m * magnitude >= raw * (1 - 1e-9))
    if integer:
        step = max(1, round(step))
    n = math.ceil(top / step - 1e-9)
    return [round(k * step, 12) for k in range(n + 1)]


def _decimals(step: float) -> int:
    """Fewest decimals that write every multiple of ``step`` exactly (0.25 -> 2, 20 -> 0)."""
    for d in range(7):
        if abs(round(step, d) - step) < 1e-9 * max(1.0, abs(step)):
            return d
    return 6


def format_tick(value: float, step: float, *, percent: bool = False) -> str:
    """A tick label with just the decimals its step needs: 0.025, 40%, 2.5k, 12."""
    if value == 0:
        return "0%" if percent else "0"
    if percent:
        return f"{value * 100:.{_decimals(step * 100)}f}%"
    if step >= 1000:
        return f"{value / 1000:.{_decimals(step / 1000)}f}k"
    return f"{value:.{_decimals(step)}f}"


def format_value(value: float, *, percent: bool = False, integer: bool = False) -> str:
    """A data value for a tooltip or a bar: 12,345, 41.7%, 0.08235 (four significant digits)."""
    if percent:
        return f"{value * 100:.1f}%"
    if integer or (float(value).is_integer() and abs(value) >= 1):
        return f"{value:,.0f}"
    return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def _empty(title: str) -> SafeString:
    return mark_safe(
        f'<svg class="rec-chart rec-chart-empty" role="img" viewBox="0 0 {WIDTH} 60" width="100%" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<text x="{WIDTH / 2}" y="34" text-anchor="middle" fill="#888">No data yet</text></svg>'
    )


def _x_labels(labels: Sequence[str], xs: Sequence[float], plot_w: float) -> list[tuple[int, str, float]]:
    """(index, shown text, centre x) of the x labels to draw: none overlaps another or leaves the viewBox.

    Labels are shortened to a share of the plot, spaced evenly from the newest (the
    last) backwards, moved inward where they would cross an edge, and dropped where
    that would make them touch a neighbour.
    """
    n = len(labels)
    budget = max(plot_w / min(n, 4) - LABEL_GAP, text_width("MMMMMM", TICK_FONT))
    texts = [shorten(label, budget, TICK_FONT) for label in labels]
    widest = max(text_width(t, TICK_FONT) for t in texts)
    step = xs[1] - xs[0] if n > 1 else plot_w
    every = max(1, math.ceil((widest + LABEL_GAP) / step))
    chosen: list[tuple[int, str, float]] = []
    left_limit = math.inf
    for i in range(n - 1, -1, -every):
        half = text_width(texts[i], TICK_FONT) / 2
        x = min(max(xs[i], half + EDGE), WIDTH - half - EDGE)
        if x + half + LABEL_GAP <= left_limit:
            chosen.append((i, texts[i], x))
            left_limit = x - half
    return chosen[::-1]


def _legend(labels: Sequence[str], top: float) -> tuple[list[str], float]:
    """Legend entries flowed into rows that fit the width; the markup and the y below the last row."""
    parts: list[str] = []
    x, y = PAD_LEFT, top
    for n, label in enumerate(labels):
        text = shorten(label, WIDTH - PAD_LEFT - PAD_RIGHT - 14, LEGEND_FONT)
        width = 14 + text_width(text, LEGEND_FONT) + 16
        if x > PAD_LEFT and x + width > WIDTH - PAD_RIGHT:
            x, y = PAD_LEFT, y + LEGEND_ROW
        parts.append(
            f'<g class="rec-legend"><rect x="{x}" y="{y - 9}" width="10" height="10" '
            f'fill="{PALETTE[n % len(PALETTE)]}"/>'
            f'<text x="{x + 14}" y="{y}" font-size="{LEGEND_FONT}" fill="#333">{escape(text)}'
            f"<title>{escape(label)}</title></text></g>"
        )
        x += width
    return parts, y + 6


def line_chart(
    title: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    percent: bool = False,
    integer: bool = False,
    x_titles: Sequence[str] | None = None,
) -> SafeString:
    """A multi-series line chart with round y ticks, non-overlapping x labels, tooltips and a legend.

    ``integer`` is for counts (whole-number ticks); ``percent`` for rates from 0 to 1.
    ``x_titles`` are longer names of the x positions for the tooltips (a version's
    full name where the axis shows its date).
    """
    points = [v for s in series for v in s.values if v is not None]
    if not x_labels or not points:
        return _empty(title)
    top = max(points)
    ticks = nice_ticks(min(top, 1.0) if percent else top, integer=integer)
    axis_top, step = ticks[-1], ticks[1] - ticks[0]
    tick_texts = [format_tick(v, step, percent=percent) for v in ticks]
    left = max(PAD_LEFT, max(text_width(t, TICK_FONT) for t in tick_texts) + 6 + EDGE)
    plot_w, plot_h = WIDTH - left - PAD_RIGHT, PLOT_BOTTOM - PAD_TOP
    n = len(x_labels)
    xs = [left + plot_w / 2] if n == 1 else [left + i * plot_w / (n - 1) for i in range(n)]
    names = x_titles or x_labels

    def y_of(v: float) -> float:
        return PAD_TOP + plot_h * (1 - min(v, axis_top) / axis_top)

    grid: list[str] = []
    for v, text in zip(ticks, tick_texts, strict=True):
        y = y_of(v)
        grid.append(
            f'<line x1="{left:.1f}" x2="{WIDTH - PAD_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>'
            f'<text class="rec-y-tick" x="{left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end" '
            f'font-size="{TICK_FONT}" fill="#666">{escape(text)}</text>'
        )
    for i, text, x in _x_labels(x_labels, xs, plot_w):
        tooltip = f"<title>{escape(x_labels[i])}</title>" if text != x_labels[i] else ""
        grid.append(
            f'<text class="rec-x-label" x="{x:.1f}" y="{PLOT_BOTTOM + 16}" text-anchor="middle" '
            f'font-size="{TICK_FONT}" fill="#666">{escape(text)}{tooltip}</text>'
        )
    lines: list[str] = []
    dots: list[str] = []  # drawn over the lines; small where many would crowd (the hover area stays)
    radius = 3 if n <= 31 else 1.5
    for k, s in enumerate(series):
        color = PALETTE[k % len(PALETTE)]
        segments: list[list[str]] = [[]]
        for i, v in enumerate(s.values):
            if v is None:
                segments.append([])
                continue
            x, y = xs[i], y_of(v)
            segments[-1].append(f"{x:.1f},{y:.1f}")
            value = format_value(v, percent=percent, integer=integer)
            dots.append(
                f'<circle class="rec-point" cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{color}" '
                f'stroke="transparent" stroke-width="8">'
                f"<title>{escape(s.label)} · {escape(names[i])}: {escape(value)}</title></circle>"
            )
        lines.extend(
            f'<polyline class="rec-series" fill="none" stroke="{color}" stroke-width="2" '
            f'points="{" ".join(seg)}"/>'
            for seg in segments
            if len(seg) > 1
        )
    legend, bottom = _legend([s.label for s in series], PLOT_BOTTOM + 16 + 22)
    head = (
        f'<svg class="rec-chart" role="img" viewBox="0 0 {WIDTH} {bottom:.0f}" width="100%" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    )
    return mark_safe(head + "".join(grid + lines + dots + legend) + "</svg>")


def bar_chart(title: str, bars: Sequence[tuple[str, float]], *, percent: bool = False) -> SafeString:
    """Horizontal bars, largest first as given: one row per label (exposure by tag)."""
    if not bars:
        return _empty(title)
    row, label_w, value_w = 22, 150, 60
    top = max(max(v for _, v in bars), 1e-9)
    height = PAD_TOP + row * len(bars) + 6
    parts = [
        f'<svg class="rec-chart" role="img" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    plot_w = WIDTH - label_w - value_w - PAD_RIGHT
    for i, (label, v) in enumerate(bars):
        y = PAD_TOP + i * row
        w = max(plot_w * v / top, 1)
        value = escape(format_value(v, percent=percent))
        text = shorten(label, label_w - 6 - EDGE, LEGEND_FONT)
        tooltip = f"<title>{escape(label)}</title>" if text != label else ""
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="{LEGEND_FONT}" fill="#333">'
            f"{escape(text)}{tooltip}</text>"
            f'<rect class="rec-bar" x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" '
            f'fill="{PALETTE[0]}"><title>{escape(label)}: {value}</title></rect>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 14}" font-size="{TICK_FONT}" fill="#666">{value}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))
