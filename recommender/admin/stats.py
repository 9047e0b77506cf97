"""Aggregations behind the admin dashboard: what was served, what was clicked, how models evolved.

Each function answers one chart with a bounded number of queries over a time
window, so the dashboard stays fast on a busy site: events are counted by the
database (grouped by day, placement and type), served lists are scanned once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from recommender.models import Interaction, Item, ItemTag, ModelVersion, RecommendationLog

# Reasons that mean "the model did not pick this": the share of these is the fallback share.
FALLBACK_REASONS = frozenset({"trending", "fresh", "fallback"})
MAX_LOGS_SCANNED = 20_000  # newest lists read for coverage/exposure; keeps the page bounded on big sites


@dataclass
class PlacementSeries:
    """Daily impressions, clicks and click-through rate of one placement."""

    placement: str
    impressions: list[int]
    clicks: list[int]

    @property
    def ctr(self) -> list[float | None]:
        return [c / i if i else None for i, c in zip(self.impressions, self.clicks, strict=True)]


@dataclass
class ServedSummary:
    """What the served lists (``RecommendationLog``) contained, per day and overall."""

    days: list[date]
    lists: list[int]
    coverage: list[float | None]  # distinct items served that day / active items
    fallback_share: list[float | None]  # served slots with a fallback reason / all slots
    total_coverage: float
    catalogue: int = 0  # active items when the summary was made
    reasons: Counter = field(default_factory=Counter)
    exposure: Counter = field(default_factory=Counter)  # item id -> slots served
    scanned: int = 0


def window(days: int, *, now: datetime | None = None) -> tuple[datetime, list[date]]:
    """Start of a window of ``days`` whole days ending today, and the list of its dates."""
    today = timezone.localdate(now or timezone.now())
    first = today - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(first, datetime.min.time()))
    return start, [first + timedelta(days=n) for n in range(days)]


def placement_stats(
    days: int = 14, *, now: datetime | None = None
) -> tuple[list[date], list[PlacementSeries]]:
    """Impressions and clicks per placement per day, counted in one grouped query."""
    start, dates = window(days, now=now)
    rows = (
        Interaction.objects.filter(timestamp__gte=start, event_type__in=("impression", "click"))
        .exclude(placement="")
        .annotate(day=TruncDate("timestamp"))
        .values_list("placement", "day", "event_type")
        .annotate(n=Count("id"))
        .order_by()
    )
    index = {d: i for i, d in enumerate(dates)}
    by_placement: dict[str, PlacementSeries] = {}
    for placement, day, event_type, n in rows:
        if day not in index:
            continue
        series = by_placement.setdefault(placement, PlacementSeries(placement, [0] * days, [0] * days))
        target = series.impressions if event_type == "impression" else series.clicks
        target[index[day]] += n
    return dates, sorted(by_placement.values(), key=lambda s: s.placement)


def served_summary(days: int = 14, *, now: datetime | None = None) -> ServedSummary:
    """Coverage, fallback share, reasons and item exposure from the lists served in the window."""
    start, dates = window(days, now=now)
    index = {d: i for i, d in enumerate(dates)}
    items_per_day: list[set[int]] = [set() for _ in dates]
    slots = [0] * days
    fallback_slots = [0] * days
    lists = [0] * days
    summary = ServedSummary(dates, lists, [], [], 0.0)
    logs = (
        RecommendationLog.objects.filter(created_at__gte=start)
        .order_by("-created_at")
        .values_list("created_at", "items")[:MAX_LOGS_SCANNED]
    )
    for created_at, served in logs:
        i = index.get(timezone.localdate(created_at))
        if i is None:
            continue
        summary.scanned += 1
        lists[i] += 1
        for entry in served or ():
            item_id, reason = entry.get("item"), entry.get("reason", "")
            if item_id is None:
                continue
            items_per_day[i].add(item_id)
            slots[i] += 1
            summary.exposure[item_id] += 1
            summary.reasons[reason] += 1
            if reason in FALLBACK_REASONS:
                fallback_slots[i] += 1
    catalogue = summary.catalogue = Item.objects.active().count()
    summary.coverage = [
        len(s) / catalogue if catalogue and lists[i] else None for i, s in enumerate(items_per_day)
    ]
    summary.fallback_share = [f / n if n else None for f, n in zip(fallback_slots, slots, strict=True)]
    summary.total_coverage = len(summary.exposure) / catalogue if catalogue else 0.0
    return summary


def exposure_by_tag(exposure: Counter, *, limit: int = 15) -> list[tuple[str, float]]:
    """Share of served slots per tag (an item's slots count once for each of its accepted tags)."""
    total = sum(exposure.values())
    if not total:
        return []
    per_tag: Counter = Counter()
    pairs = ItemTag.objects.filter(status=ItemTag.Status.ACCEPTED, item_id__in=list(exposure)).values_list(
        "item_id", "tag__name"
    )
    for item_id, tag_name in pairs:
        per_tag[tag_name] += exposure[item_id]
    return [(name, n / total) for name, n in per_tag.most_common(limit)]


@dataclass
class MetricHistory:
    """Validation metrics of trained versions, oldest first: one value per version and metric."""

    names: list[str]
    created: list[datetime]
    values: dict[str, list[float | None]]


def model_metric_history(
    *, limit: int = 30, metrics: tuple[str, ...] = ("val_ndcg@10", "val_hr@10")
) -> MetricHistory:
    """Validation metrics of the latest succeeded versions, oldest first, for the metric-history chart."""
    versions = list(
        ModelVersion.objects.filter(status=ModelVersion.Status.SUCCEEDED)
        .order_by("-created_at")
        .values_list("name", "created_at", "metrics")[:limit]
    )[::-1]
    values: dict[str, list[float | None]] = defaultdict(list)
    for _, _, version_metrics in versions:
        for key in metrics:
            value = (version_metrics or {}).get(key)
            values[key].append(float(value) if value is not None else None)
    return MetricHistory([v[0] for v in versions], [v[1] for v in versions], dict(values))
