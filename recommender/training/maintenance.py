"""Periodic upkeep: trending scores, and removing what retention settings say is no longer needed."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from datetime import timedelta

from django.utils import timezone

from recommender.caching import bump_site_generation
from recommender.conf import recommender_settings
from recommender.models import Interaction, Item, ModelVersion, RecommendationLog
from recommender.tracking import partitions
from recommender.training import artifacts
from recommender.training.locks import TrainingBusy, training_lock
from recommender.training.runs import fail_stale_runs
from recommender.tuning import get_tuning

logger = logging.getLogger(__name__)
# How long the cleanup task waits for the events table's lock to add or drop a partition
# before leaving it for its next run: a waiting DDL lock would queue every reader behind it.
PARTITION_LOCK_TIMEOUT = "5s"


def compute_trending() -> int:
    """Set ``Item.trending_score`` from distinct readers' decayed engagement; return how many items have one.

    Each reader (user or visitor) who engaged with an item in the last
    ``TRENDING_WINDOW_HOURS`` adds their strongest event on it: its event weight,
    halved every ``TRENDING_HALF_LIFE_HOURS``. One reader's 500 views of an item weigh
    like one view, so nobody can post an item into Trending alone.
    """
    now = timezone.now()
    tuning = get_tuning()
    weights = {t: w for t, w in tuning.event_types.items() if w > 0}
    half_life = float(recommender_settings.TRENDING_HALF_LIFE_HOURS) * 3600.0
    since = now - timedelta(hours=float(tuning.trending_window_hours))
    strongest: dict[tuple[int, int | None, str], float] = defaultdict(float)
    rows = Interaction.objects.filter(timestamp__gte=since, event_type__in=list(weights))
    fields = ("item_id", "user_id", "visitor_id", "event_type", "timestamp")
    for item_id, user_id, visitor_id, event_type, ts in rows.values_list(*fields).iterator(chunk_size=5000):
        age = max(0.0, (now - ts).total_seconds())
        signal = weights[event_type] * math.exp(-math.log(2) * age / half_life)
        key = (item_id, user_id, "" if user_id is not None else visitor_id)
        strongest[key] = max(strongest[key], signal)
    scores: dict[int, float] = defaultdict(float)
    for (item_id, _, _), signal in strongest.items():
        scores[item_id] += signal
    Item.objects.exclude(pk__in=list(scores)).exclude(trending_score=0).update(trending_score=0.0)
    Item.objects.bulk_update(
        [Item(pk=pk, trending_score=round(score, 6)) for pk, score in scores.items()],
        ["trending_score"],
        batch_size=1000,
    )
    bump_site_generation()  # popularity blends into every list, and served rows cache the score
    return len(scores)


def cleanup() -> dict[str, int]:
    """Delete old logs, old events (when a retention is set) and surplus artifacts; close dead runs.

    Retention: ``LOG_RETENTION_DAYS`` for logs, ``INTERACTION_RETENTION_DAYS`` (when set)
    for events. A partitioned events table (``tracking.partitions``) drops whole expired
    months first (``event_partitions`` counts them; ``events`` counts rows deleted one by one,
    from the month astride the cutoff), forgets their event ids, and gets next month's
    partition. ``KEEP_INACTIVE_VERSIONS`` newest inactive
    versions keep their artifact (plus the latest previously active one, for rollback).
    A version's artifact reference is cleared *before* its files go, so no version
    ever points at a half-deleted artifact.
    """
    now = timezone.now()
    cutoff = now - timedelta(days=int(recommender_settings.LOG_RETENTION_DAYS))
    logs, _ = RecommendationLog.objects.filter(created_at__lt=cutoff).delete()
    events, partitioned = 0, partitions.is_partitioned()
    dropped: list[str] | None = []
    if partitioned:  # next month's partition, should nobody have run recommender_partitions --create-next
        partitions.create_partitions(lock_timeout=PARTITION_LOCK_TIMEOUT)
    if days := int(recommender_settings.INTERACTION_RETENTION_DAYS):
        expired = now - timedelta(days=days)
        if partitioned:
            dropped = partitions.drop_partitions_before(expired, lock_timeout=PARTITION_LOCK_TIMEOUT)
        if dropped is not None:  # None: a partition was busy, so no row-by-row delete of its rows either
            events, _ = Interaction.objects.filter(timestamp__lt=expired).delete()
            if partitioned:
                partitions.forget_event_ids_before(expired)

    try:
        with training_lock():
            stale = fail_stale_runs()
    except TrainingBusy:
        stale = 0

    inactive = ModelVersion.objects.filter(is_active=False).exclude(artifact_name="").order_by("-created_at")
    keep = set(inactive.values_list("pk", flat=True)[: int(recommender_settings.KEEP_INACTIVE_VERSIONS)])
    rollback_target = inactive.filter(activated_at__isnull=False).order_by("-activated_at").first()
    if rollback_target is not None:
        keep.add(rollback_target.pk)
    removed = 0
    for version in inactive.exclude(pk__in=keep):
        name = version.artifact_name
        if ModelVersion.objects.filter(pk=version.pk, is_active=False).update(artifact_name="", checksum=""):
            artifacts.delete_stored_artifact(name)
            removed += 1
    summary = {
        "logs": logs,
        "events": events,
        "event_partitions": len(dropped or []),
        "artifacts": removed,
        "stale_runs": stale,
    }
    logger.info("recommender cleanup: %s", summary)
    return summary
