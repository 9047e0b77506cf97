"""Server-rendered SVG charts for the admin: no JavaScript library, nothing loaded from the internet.

Each function takes plain numbers and returns ``SafeString`` markup that a template
drops in as is. Every label goes through ``escape``; numbers are formatted here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#417690", "#e07b39", "#5b9a68", "#b0413e", "#7d5ba6", "#c9a227", "#3f8f8f", "#8c6d46")
WIDTH, HEIGHT = 640, 220
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 52, 12, 14, 40


@dataclass(frozen=True)
class Series:
    """One line of a line chart: a label and one value per x label (``None`` = no data)."""

    label: str
    values: Sequence[float | None]


def _fmt(value: float, percent: bool) -> str:
    if percent:
        return f"{value * 100:.0f}%" if value >= 0.1 or value == 0 else f"{value * 100:.1f}%"
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.3g}"


def _empty(title: str) -> SafeString:
    return mark_safe(
        f'<svg class="rec-chart rec-chart-empty" role="img" viewBox="0 0 {WIDTH} 60" width="100%" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<text x="{WIDTH / 2}" y="34" text-anchor="middle" fill="#888">No data yet</text></svg>'
    )


def line_chart(
    title: str, x_labels: Sequence[str], series: Sequence[Series], *, percent: bool = False
) -> SafeString:
    """A multi-series line chart with a y grid, sparse x labels and a legend."""
    points = [v for s in series for v in s.values if v is not None]
    if not x_labels or not points:
        return _empty(title)
    top = max(max(points), 1e-9)
    if percent:
        top = min(1.0, top * 1.1) if top < 1 else 1.0
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM
    step = plot_w / max(len(x_labels) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return PAD_LEFT + i * step, PAD_TOP + plot_h * (1 - v / top)

    parts = [
        f'<svg class="rec-chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT + 18 * ((len(series) + 3) // 4)}" '
        f'width="100%" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for k in range(5):
        v = top * k / 4
        _, y = xy(0, v)
        parts.append(
            f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>'
            f'<text x="{PAD_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#666">'
            f"{escape(_fmt(v, percent))}</text>"
        )
    every = max(1, len(x_labels) // 8)
    for i, label in enumerate(x_labels):
        if i % every == 0 or i == len(x_labels) - 1:
            x, _ = xy(i, 0)
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - PAD_BOTTOM + 16}" text-anchor="middle" font-size="11" '
                f'fill="#666">{escape(label)}</text>'
            )
    for n, s in enumerate(series):
        color = PALETTE[n % len(PALETTE)]
        segments: list[list[str]] = [[]]
        for i, v in enumerate(s.values):
            if v is None:
                segments.append([])
                continue
            x, y = xy(i, v)
            segments[-1].append(f"{x:.1f},{y:.1f}")
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}">'
                f"<title>{escape(s.label)} · {escape(x_labels[i])}: {escape(_fmt(v, percent))}</title>"
                "</circle>"
            )
        for seg in segments:
            if len(seg) > 1:
                parts.append(
                    f'<polyline class="rec-series" fill="none" stroke="{color}" stroke-width="2" '
                    f'points="{" ".join(seg)}"/>'
                )
        lx, ly = PAD_LEFT + (n % 4) * 150, HEIGHT - 8 + 18 * (n // 4)
        parts.append(
            f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
            f'<text x="{lx + 14}" y="{ly}" font-size="12" fill="#333">{escape(s.label)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))


def bar_chart(title: str, bars: Sequence[tuple[str, float]], *, percent: bool = False) -> SafeString:
    """Horizontal bars, largest first as given: one row per label (exposure by tag)."""
    if not bars:
        return _empty(title)
    row, label_w = 22, 150
    top = max(max(v for _, v in bars), 1e-9)
    height = PAD_TOP + row * len(bars) + 6
    parts = [
        f'<svg class="rec-chart" role="img" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    plot_w = WIDTH - label_w - 70
    for i, (label, v) in enumerate(bars):
        y = PAD_TOP + i * row
        w = max(plot_w * v / top, 1)
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="12" fill="#333">'
            f"{escape(label[:24])}</text>"
            f'<rect class="rec-bar" x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" '
            f'fill="{PALETTE[0]}"><title>{escape(label)}: {escape(_fmt(v, percent))}</title></rect>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 14}" font-size="11" fill="#666">'
            f"{escape(_fmt(v, percent))}</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))
