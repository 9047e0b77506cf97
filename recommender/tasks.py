"""Celery tasks: thin wrappers over the domain packages; the logic lives there, once.

Every task acknowledges late (a worker that dies mid-task does not lose it),
retries transient failures (database or broker connection) with exponential
back-off and jitter, and has soft and hard time limits from settings. Queues come
from ``QUEUES``: ``embed`` and ``train`` can be served by dedicated (GPU) workers.

This is the only layer that imports Celery: content saves reach the embed task
through the ``item_content_changed`` receiver connected here, and stored events
reach the interest-profile task through the ``events_ingested`` one.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterable
from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError

from recommender.conf import DEFAULTS, recommender_settings
from recommender.identity import Identity
from recommender.models import Interaction
from recommender.signals import events_ingested, item_content_changed
from recommender.tracking import interests, sync
from recommender.training import embedding, maintenance, runs
from recommender.training import processes as training_processes

logger = logging.getLogger(__name__)


def _transient_errors() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, BrokerError)
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # redis is optional (RabbitMQ brokers, other caches)
        return errors
    return (*errors, RedisConnectionError, RedisTimeoutError)


TRANSIENT_ERRORS = _transient_errors()


def _options(queue: str, hard_limit_setting: str) -> dict[str, Any]:
    """Task options from settings; a bad value falls back to its default (manage.py check reports it)."""
    try:
        hard = int(getattr(recommender_settings, hard_limit_setting))
    except (TypeError, ValueError):
        hard = int(DEFAULTS[hard_limit_setting])
    queues = {**DEFAULTS["QUEUES"], **recommender_settings.QUEUES}  # a partial QUEUES keeps the rest
    return {
        "queue": queues[queue],
        "acks_late": True,
        "autoretry_for": TRANSIENT_ERRORS,
        "retry_backoff": 5,
        "retry_backoff_max": 600,
        "retry_jitter": True,
        "max_retries": 5,
        "time_limit": hard,
        "soft_time_limit": max(1, hard - 60),
    }


@shared_task(name="recommender.embed_items", **_options("embed", "EMBED_TIME_LIMIT"))
def embed_items(ids: list[int] | None = None, debounced: bool = False) -> int:
    """Embed new and changed items (``ids`` None: all of them); return how many."""
    if debounced:
        embedding.end_debounce_window()
    return embedding.embed_items(ids)


@shared_task(name="recommender.suggest_tags", **_options("embed", "TASK_TIME_LIMIT"))
def suggest_tags(ids: list[int] | None = None) -> int:
    """Add pending automatic tag suggestions for items that have none yet."""
    return embedding.suggest_tags(ids)


@shared_task(bind=True, name="recommender.train_model", **_options("train", "TRAIN_TIME_LIMIT"))
def train_model(self: Any, config: dict[str, Any] | None = None, version_id: int | None = None) -> int | None:
    """Full training from all interactions; returns the new version's pk (None when skipped).

    With ``TRAIN_PROCESSES`` above 1 the run goes to ``torchrun`` in that many processes.
    """
    processes = int(recommender_settings.TRAIN_PROCESSES)
    if processes > 1:
        version = runs.queue_version(version_id, task_id=self.request.id or "")
        try:
            training_processes.launch(processes, version.pk, config)
        except subprocess.CalledProcessError:
            logger.exception("the %d training processes of %s failed", processes, version.name)
        version.refresh_from_db()
        return version.pk if version.status == version.Status.SUCCEEDED else None
    try:
        version = runs.train_model(config=config, version=version_id, task_id=self.request.id or "")
    except (runs.TrainingBusy, runs.NotEnoughData) as exc:
        logger.info("training skipped: %s", exc)
        return None
    return version.pk


@shared_task(bind=True, name="recommender.refresh_model", **_options("train", "TRAIN_TIME_LIMIT"))
def refresh_model(self: Any, config: dict[str, Any] | None = None) -> int | None:
    """Continue the active model on recent interactions; returns the new version's pk or None."""
    try:
        version = runs.refresh_model(config=config, task_id=self.request.id or "")
    except (runs.TrainingBusy, runs.NotEnoughData) as exc:
        logger.info("refresh skipped: %s", exc)
        return None
    return version.pk if version else None


@shared_task(name="recommender.compute_trending", **_options("default", "TASK_TIME_LIMIT"))
def compute_trending() -> int:
    """Recompute ``Item.trending_score``."""
    return maintenance.compute_trending()


@shared_task(name="recommender.publish_due", **_options("default", "TASK_TIME_LIMIT"))
def publish_due() -> int:
    """Activate Items whose scheduled publication time has passed (nothing saves them then)."""
    return sync.publish_due()


@shared_task(name="recommender.cleanup", **_options("default", "TASK_TIME_LIMIT"))
def cleanup() -> dict[str, int]:
    """Retention: old logs, surplus artifacts, dead training runs."""
    return maintenance.cleanup()


@shared_task(name="recommender.recompute_interests", **_options("default", "TASK_TIME_LIMIT"))
def recompute_interests() -> int:
    """Rebuild recent identities' interest profiles: incremental updates only add events, never drop any."""
    return interests.recompute_interests()


@shared_task(name="recommender.rebuild_tag_graph", **_options("embed", "TASK_TIME_LIMIT"))
def rebuild_tag_graph() -> int:
    """Recompute the related-tag graph the diversity step reads; it embeds tag names (the embed queue)."""
    return interests.rebuild_tag_graph()


@shared_task(name="recommender.update_interests", **_options("default", "TASK_TIME_LIMIT"))
def update_interests(user_ids: list[int], visitor_ids: list[str]) -> int:
    """Add newly stored events to these readers' interest profiles; return how many were updated."""
    identities = [Identity(user_id=u) for u in user_ids]
    identities += [Identity(user_id=None, visitor_id=v) for v in visitor_ids if v]
    return interests.update_interests_many(identities)


def runs_eagerly() -> bool:
    """Whether tasks run in this process (``CELERY_TASK_ALWAYS_EAGER``, the demo) rather than on a worker."""
    return bool(embed_items.app.conf.task_always_eager)


def enqueue_embedding(ids: set[int]) -> None:
    """Send the embedding of these items to the workers: at once (eager), in chunks, or once per window."""
    if not embedding.any_needing_embedding(ids):
        return  # an earlier task of this burst already embedded them
    if runs_eagerly():
        # No worker: embed now, and everything else committed that needs it, so the
        # rest of a burst (one signal per saved object) finds its items done.
        embed_items.delay(None)
        return
    window = int(recommender_settings.EMBED_DEBOUNCE_SECONDS)
    chunk = embedding.task_chunk()
    if len(ids) >= chunk or window <= 0:
        ordered = sorted(ids)
        for start in range(0, len(ordered), chunk):
            embed_items.delay(ordered[start : start + chunk])
    elif embedding.start_debounce_window(window):
        # ids=None: the task embeds everything still needing it when it runs, i.e. these
        # items and all others saved during the window (which enqueue nothing themselves).
        embed_items.apply_async(kwargs={"ids": None, "debounced": True}, countdown=window)


def on_item_content_changed(sender: Any, item_ids: Iterable[int] = (), **kwargs: Any) -> None:
    """Receiver of ``item_content_changed``: never lets a broker hiccup break the host's save."""
    try:
        embedding.schedule_embedding(item_ids, enqueue_embedding)
    except Exception:
        logger.exception("could not schedule embedding of items %s", list(item_ids)[:20])


def on_events_ingested(
    sender: Any, user_ids: Iterable[int] = (), visitor_ids: Iterable[str] = (), **kwargs: Any
) -> None:
    """Receiver of ``events_ingested``: profiles update on a worker, off the tracking request's path.

    Ingest then only writes the events (on PostgreSQL, bench.reliability measures both
    parts). Without a worker (eager, the demo) the update runs here. A failure is
    logged and never breaks tracking; the periodic ``recompute_interests`` repairs it.
    """
    users, visitors = sorted(user_ids or ()), sorted(v for v in visitor_ids or () if v)
    try:
        if runs_eagerly():
            # Directly, not through an eager task: eager tasks in the threads of a threaded
            # server race on Celery's process-wide "join would block" flag and can leave it set.
            update_interests.run(users, visitors)
        else:
            update_interests.delay(users, visitors)
    except Exception:
        logger.exception("could not update the interest profiles of the readers of a tracked batch")


def connect() -> None:
    """Embed content when it changes, update profiles when events arrive (called from ``AppConfig.ready``)."""
    item_content_changed.connect(on_item_content_changed, dispatch_uid="recommender.embedding")
    events_ingested.connect(on_events_ingested, sender=Interaction, dispatch_uid="recommender.interests")
