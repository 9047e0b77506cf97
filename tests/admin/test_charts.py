"""The SVG renderer's arithmetic: round ticks (whole numbers on counts), labels thinned and kept inside.

The same properties are checked with a real browser's fonts in
``tests/integration/test_admin_browser.py``; these pin the rules themselves.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from itertools import pairwise

import pytest

from recommender.admin.charts import (
    WIDTH,
    Series,
    bar_chart,
    format_tick,
    format_value,
    line_chart,
    nice_ticks,
    text_width,
)


def y_ticks(svg: str) -> list[str]:
    return re.findall(r'class="rec-y-tick"[^>]*>([^<]*)<', svg)


def x_labels(svg: str) -> list[tuple[float, str]]:
    return [
        (float(x), text) for x, text in re.findall(r'class="rec-x-label" x="([\d.]+)"[^>]*>([^<]*)<', svg)
    ]


@pytest.mark.parametrize(
    ("top", "expected"),
    [(4, [0, 1, 2, 3, 4]), (2, [0, 1, 2]), (28.5, [0, 10, 20, 30]), (57, [0, 20, 40, 60]), (0, [0, 1])],
)
def test_count_axes_have_whole_number_ticks(top: float, expected: list[int]) -> None:
    assert nice_ticks(top, integer=True) == expected


@pytest.mark.parametrize(
    ("top", "percent", "expected"),
    [
        (0.55, True, ["0%", "20%", "40%", "60%"]),
        (1.0, True, ["0%", "25%", "50%", "75%", "100%"]),
        (0.003, True, ["0%", "0.1%", "0.2%", "0.3%"]),
        (0.083, False, ["0", "0.025", "0.050", "0.075", "0.100"]),
        (12_345, False, ["0", "5k", "10k", "15k"]),
    ],
)
def test_ticks_are_round_and_written_with_the_decimals_their_step_needs(
    top: float, percent: bool, expected: list[str]
) -> None:
    ticks = nice_ticks(top)
    assert len(ticks) <= 5 and ticks[-1] >= top
    assert [format_tick(v, ticks[1], percent=percent) for v in ticks] == expected


def test_values_are_rounded_to_four_significant_digits() -> None:
    assert format_value(0.0823456789) == "0.08235"
    assert format_value(12_345.0) == "12,345"
    assert format_value(3, integer=True) == "3"
    assert format_value(0.41666, percent=True) == "41.7%"


def test_counts_charts_show_whole_ticks_and_not_halves() -> None:
    svg = line_chart("Clicks", ["a", "b", "c"], [Series("home", [0, 2, 1])], integer=True)
    assert y_ticks(svg) == ["0", "1", "2"]
    assert "home · b: 2" in svg  # the tooltip of a point


def test_ninety_days_of_dates_get_labels_that_do_not_overlap_and_stay_inside() -> None:
    days = [date(2024, 9, 3) + timedelta(days=n) for n in range(90)]
    labels = [f"{d:%b} {d.day}" for d in days]
    svg = line_chart("Impressions", labels, [Series("home", list(range(90)))], integer=True)
    shown = x_labels(svg)
    assert 5 <= len(shown) <= 15
    assert shown[-1][1] == "Dec 1"  # the newest day is always labelled, and in full
    extents = [(x - text_width(t, 11) / 2, x + text_width(t, 11) / 2) for x, t in shown]
    assert extents[0][0] >= 0 and extents[-1][1] <= WIDTH
    assert all(right <= left for (_, right), (left, _) in pairwise(extents))


def test_a_long_single_label_is_centred_and_shortened_with_its_full_text_in_a_tooltip() -> None:
    name = "train-20241201-140501-abc123-with-a-much-longer-suffix-than-fits-anywhere-in-a-chart"
    svg = line_chart("Metrics", [name], [Series("val_ndcg@10", [0.08])])
    [(x, text)] = x_labels(svg)
    assert text.endswith("…") and text_width(text, 11) <= WIDTH
    assert x - text_width(text, 11) / 2 >= 0 and x + text_width(text, 11) / 2 <= WIDTH
    assert f"<title>{name}</title>" in svg


def test_tooltips_can_name_points_more_fully_than_the_axis() -> None:
    svg = line_chart("Metrics", ["Dec 1 14:05"], [Series("ndcg", [0.1])], x_titles=["train-20241201"])
    assert "ndcg · train-20241201: 0.1" in svg


def test_legend_rows_grow_the_chart_instead_of_leaving_it() -> None:
    series = [Series(f"placement-with-a-long-name-{n}", [n, n + 1]) for n in range(8)]
    svg = line_chart("Impressions", ["a", "b"], series, integer=True)
    height = float(re.search(r'viewBox="0 0 \d+ ([\d.]+)"', svg).group(1))
    legend_ys = [float(y) for y in re.findall(r'<g class="rec-legend"><rect x="[\d.]+" y="[\d.]+" [^>]*>'
                                              r'<text x="[\d.]+" y="([\d.]+)"', svg)]  # fmt: skip
    assert len(legend_ys) == 8 and len(set(legend_ys)) > 1
    assert max(legend_ys) < height


def test_bar_labels_are_shortened_to_their_column() -> None:
    svg = bar_chart("Tags", [("A tag with a name far too long for the label column", 0.5)], percent=True)
    label = re.search(r'text-anchor="end"[^>]*>([^<]*)<', svg).group(1)
    assert label.endswith("…") and text_width(label, 12) <= 150
