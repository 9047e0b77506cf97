"""Item embeddings and automatic tags, and how content saves turn into (few) embedding tasks.

Whether an item needs a vector is decided from the database alone (its
``content_hash`` against the ``embedded_hash`` of its vector), so a task may run
late, twice or for more items than asked, and still do only the missing work.
That is what lets :func:`schedule_embedding` coalesce freely:

- inside a transaction, ids are collected per connection and enqueued once, on commit,
  in chunks of ``EMBED_BATCH_SIZE * EMBED_TASK_BATCHES``;
- outside one, with a worker, the first save starts a debounce window of
  ``EMBED_DEBOUNCE_SECONDS`` (a cache key) and one delayed task embeds everything
  that changed meanwhile; later saves in the window enqueue nothing;
- in eager mode (no worker) every item needing a vector is embedded right away,
  so the rest of the burst finds its items done and runs nothing.
Requests for items that already have their vector enqueue nothing at all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from recommender.caching import bump_site_generation
from recommender.conf import recommender_settings
from recommender.models import Item, ItemTag, Tag

logger = logging.getLogger(__name__)

DEBOUNCE_KEY = "recommender:embed:debounce"

_pending = threading.local()


def _embedder() -> Any:
    from recommender.ml.embedder import get_embedder

    return get_embedder(recommender_settings.EMBEDDER, recommender_settings.EMBED_DEVICE)


def _task_chunk() -> int:
    return int(recommender_settings.EMBED_BATCH_SIZE) * int(recommender_settings.EMBED_TASK_BATCHES)


# -- embedding ------------------------------------------------------------------


def embed_items(
    ids: Iterable[int] | None = None, *, progress: Callable[[int, int], None] | None = None
) -> int:
    """Embed the given items (default: all) that have no vector for their current text; return how many."""
    embedder = _embedder()
    items = Item.objects.needing_embedding(embedder.name).order_by("pk")
    if ids is not None:
        items = items.filter(pk__in=list(ids))
    rows = [
        (pk, text or title, content_hash)
        for pk, text, title, content_hash in items.values_list("pk", "text", "title", "content_hash")
        if (text or title).strip()
    ]
    total, done = len(rows), 0
    chunk = _task_chunk()
    for start in range(0, total, chunk):
        done += _embed_rows(embedder, rows[start : start + chunk])
        if progress is not None:
            progress(done, total)
    if total:
        logger.info("embedded %d items with %s", done, embedder.name)
    return done


def _embed_rows(embedder: Any, rows: list[tuple[int, str, str]]) -> int:
    from recommender.ml.embedder import content_hash, vector_to_bytes

    vectors = embedder.encode([text for _, text, _ in rows])
    now = timezone.now()
    updated = []
    for (pk, text, stored_hash), vector in zip(rows, vectors, strict=True):
        digest = stored_hash or content_hash(text)
        updated.append(
            Item(
                pk=pk,
                content_hash=digest,
                embedding=vector_to_bytes(vector),
                embedding_model=embedder.name,
                embedding_dim=len(vector),
                embedded_hash=digest,
                embedded_at=now,
            )
        )
    # content_hash is written back unchanged unless it was blank (then the text's hash).
    fields = ["content_hash", "embedding", "embedding_model", "embedding_dim", "embedded_hash", "embedded_at"]
    Item.objects.bulk_update(updated, fields, batch_size=500)
    if updated:
        bump_site_generation()  # diversity reads the vectors from cached rows
    return len(updated)


# -- coalesced scheduling -------------------------------------------------------


def schedule_embedding(item_ids: Iterable[int]) -> None:
    """Ask for these items to be embedded after the current transaction commits, coalescing requests."""
    ids = {int(i) for i in item_ids}
    if not ids:
        return
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        _enqueue(ids)
        return
    # Our hook is gone when an earlier transaction rolled back: start a fresh collection then.
    if not any(func is _flush_pending for _, func, _ in connection.run_on_commit):
        _pending.ids = set()
        transaction.on_commit(_flush_pending)
    _pending.ids.update(ids)


def _flush_pending() -> None:
    ids = getattr(_pending, "ids", None) or set()
    _pending.ids = None
    _enqueue(ids)


def _enqueue(ids: set[int]) -> None:
    from celery import current_app

    from recommender import tasks
    from recommender.caching import cache

    if not Item.objects.needing_embedding(_embedder().name).filter(pk__in=ids).exists():
        return  # an earlier task of this burst already embedded them
    if current_app.conf.task_always_eager:
        # No worker: embed now, and everything else committed that needs it, so the
        # rest of a burst (one signal per saved object) finds its items done.
        tasks.embed_items.delay(None)
        return
    window = int(recommender_settings.EMBED_DEBOUNCE_SECONDS)
    chunk = _task_chunk()
    if len(ids) >= chunk or window <= 0:
        ordered = sorted(ids)
        for start in range(0, len(ordered), chunk):
            tasks.embed_items.delay(ordered[start : start + chunk])
    elif cache().add(DEBOUNCE_KEY, 1, window):
        # ids=None: the task embeds everything still needing it when it runs, i.e. these
        # items and all others saved during the window (which enqueue nothing themselves).
        tasks.embed_items.apply_async(kwargs={"ids": None, "debounced": True}, countdown=window)


def end_debounce_window() -> None:
    """Called by the delayed task before it reads: saves from now on start a new window."""
    from recommender.caching import cache

    cache().delete(DEBOUNCE_KEY)


def on_item_content_changed(sender: Any, item_ids: Iterable[int] = (), **kwargs: Any) -> None:
    """Receiver of ``item_content_changed``: never lets a broker hiccup break the host's save."""
    try:
        schedule_embedding(item_ids)
    except Exception:
        logger.exception("could not schedule embedding of items %s", list(item_ids)[:20])


def connect_receivers() -> None:
    """Connect to the foundation's content signal (called from ``AppConfig.ready``)."""
    from recommender.signals import item_content_changed

    item_content_changed.connect(on_item_content_changed, dispatch_uid="recommender.embedding")


# -- automatic tags -------------------------------------------------------------


def suggest_tags(ids: Iterable[int] | None = None) -> int:
    """Suggest tags for embedded items that have no automatic suggestion yet; return how many were added.

    Suggestions are ``ItemTag(source=automatic, status=pending, weight=score)`` for an
    editor to accept or reject; an existing tag of the item (any source) is never touched.
    """
    import numpy as np

    from recommender.ml.embedder import vector_from_bytes

    embedder = _embedder()
    tags: dict[str, Tag] = {}
    for tag in Tag.objects.order_by("pk"):
        tags.setdefault(tag.name, tag)
    if not tags:
        return 0
    items = (
        Item.objects.filter(embedding_model=embedder.name, embedding__isnull=False, is_active=True)
        .exclude(item_tags__source=ItemTag.Source.AUTOMATIC)
        .order_by("pk")
    )
    if ids is not None:
        items = items.filter(pk__in=list(ids))
    descriptions = {name: tag.description for name, tag in tags.items() if tag.description}
    created = 0
    rows = list(items.values_list("pk", "embedding", "embedding_dim"))
    chunk = _task_chunk()
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        existing = set(
            ItemTag.objects.filter(item_id__in=[pk for pk, _, _ in part]).values_list("item_id", "tag_id")
        )
        vectors = np.stack([vector_from_bytes(bytes(raw), dim) for _, raw, dim in part])
        suggestions = embedder.suggest_tags(
            vectors,
            list(tags),
            descriptions=descriptions,
            top_k=int(recommender_settings.TAG_SUGGESTIONS_PER_ITEM),
            threshold=float(recommender_settings.TAG_SUGGESTION_THRESHOLD),
        )
        new = [
            ItemTag(
                item_id=pk,
                tag=tags[name],
                source=ItemTag.Source.AUTOMATIC,
                status=ItemTag.Status.PENDING,
                weight=round(score, 4),
            )
            for (pk, _, _), found in zip(part, suggestions, strict=True)
            for name, score in found
            if (pk, tags[name].pk) not in existing
        ]
        ItemTag.objects.bulk_create(new, ignore_conflicts=True)  # a concurrent editor may have added one
        created += len(new)
    return created
