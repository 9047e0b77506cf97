"""The active model, loaded once per process and swapped atomically.

Serving reads one module-level reference. A new version is built completely (read
from storage, verified, new items added) *before* that reference is replaced under
a lock, so a request sees either the old model or the new one, never half of one.
Whether another version became active is checked at most every
``MODEL_CHECK_INTERVAL`` seconds, through a cache key that
``model_registry.activate`` changes, so the database is asked only when it did.

Items published after training are scored from their content embedding
(``Recommender.add_items``): all of them when a model loads, then the ones
embedded (or re-embedded) since, at the same interval, never per request.
Past ``ANN_MIN_ITEMS`` items the loaded model builds an approximate index over its
item matrix (``recommender.ml.ann``), so each newly activated version (a retrain or
a refresh) is indexed when this process loads it.

The model is memory-mapped from a local copy of its files (``ARTIFACT_CACHE_DIR``), and
so are its item matrix and index, written there by the first process of the host that
loads the version: the web processes of a host share one copy of them.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import Max

from recommender.caching import cache
from recommender.conf import recommender_settings
from recommender.ml.embedder import vector_from_bytes
from recommender.models import Item, ItemTag, ModelVersion
from recommender.signals import model_activated
from recommender.training import artifacts

if TYPE_CHECKING:
    import numpy as np

    from recommender.ml.inference import Recommender

logger = logging.getLogger(__name__)

ACTIVE_MODEL_KEY = "recommender:active_model"
ACTIVE_MODEL_KEY_TIMEOUT = 60 * 60 * 24


@dataclass
class LoadedModel:
    """A served model version and its ready ``Recommender`` (with every embedded active item)."""

    version: ModelVersion
    recommender: Recommender
    embedded_until: datetime | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.version.name


_lock = threading.Lock()
_current: LoadedModel | None = None
_checked_at: float = float("-inf")
_seen_token: object = None
_failed_version: int | None = None


def get_active() -> LoadedModel | None:
    """The model to serve now, or None when no version is active (callers fall back).

    Cheap: between checks this is one attribute read. A failed load keeps serving
    the previous model and is retried at the next check.
    """
    if time.monotonic() - _checked_at < float(recommender_settings.MODEL_CHECK_INTERVAL):
        return _current
    # One thread refreshes; the others keep serving what is loaded (unless nothing is yet).
    if not _lock.acquire(blocking=_current is None):
        return _current
    try:
        _refresh()
    except Exception:
        logger.exception("could not refresh the active recommender model")
    finally:
        _lock.release()
    return _current


def invalidate() -> None:
    """Make the next ``get_active`` look again (here, and in other processes via the cache key)."""
    global _checked_at, _failed_version
    cache().delete(ACTIVE_MODEL_KEY)
    with _lock:
        _checked_at = float("-inf")
        _failed_version = None


def announce_active(version: ModelVersion | None) -> None:
    """Record the active version in the cache key every process checks."""
    cache().set(ACTIVE_MODEL_KEY, version.pk if version else 0, ACTIVE_MODEL_KEY_TIMEOUT)


def _on_model_activated(sender: type, version: ModelVersion | None, **kwargs: Any) -> None:
    """Receiver of ``model_activated``: this process looks again at once, the others at their next check."""
    invalidate()
    announce_active(version)


def connect() -> None:
    """Follow activations and rollbacks (called from ``AppConfig.ready``)."""
    model_activated.connect(_on_model_activated, dispatch_uid="recommender.model_store")


def _refresh() -> None:
    """Under the lock: swap to the active version if it changed, then add newly embedded items."""
    global _current, _checked_at, _seen_token, _failed_version

    token = cache().get(ACTIVE_MODEL_KEY)
    if token is None or token != _seen_token or _current is None:
        active = ModelVersion.objects.filter(is_active=True).first()
        token = active.pk if active else 0
        cache().add(ACTIVE_MODEL_KEY, token, ACTIVE_MODEL_KEY_TIMEOUT)
        _seen_token = token
        if active is None:
            _current = None
        elif (_current is None or not _same(_current.version, active)) and active.pk != _failed_version:
            try:
                loaded = _load(active)
            except Exception:
                _failed_version = active.pk
                raise
            _current = loaded  # the atomic swap: one reference, fully built before
            logger.info("serving recommender model %s", active.name)
    if _current is not None:
        _add_new_items(_current)
    _checked_at = time.monotonic()


def _same(loaded: ModelVersion, active: ModelVersion) -> bool:
    """Whether the loaded version is the active one (a reused id with other files is not)."""
    return (loaded.pk, loaded.artifact_name, loaded.checksum) == (
        active.pk,
        active.artifact_name,
        active.checksum,
    )


def _load(version: ModelVersion) -> LoadedModel:
    if threads := recommender_settings.SERVING_THREADS:
        import torch  # here, not at the top: processes that never load a model skip torch

        torch.set_num_threads(int(threads))

    recommender = artifacts.load_stored_artifact(version)
    recommender.new_item_boost = float(recommender_settings.NEW_ITEM_BOOST)
    loaded = LoadedModel(version=version, recommender=recommender)
    # Before the new items, so the index covers the artifact's own matrix and is the one every
    # process of the host maps; the items added next are scored exactly beside it (past
    # MAX_FRESH of them it is rebuilt). A new version is indexed before it is swapped in.
    threshold = recommender_settings.ANN_MIN_ITEMS
    recommender.ann_min_items = None if threshold is None else int(threshold)
    _add_new_items(loaded)
    return loaded


def content_dimension(recommender: Recommender) -> int | None:
    """The content-vector length the model was trained with (None: it uses no content)."""
    return int(recommender.config.content_dim or 0) or None


def _add_new_items(loaded: LoadedModel) -> None:
    """Give the model the content vectors of items embedded since it last looked."""
    dimension = content_dimension(loaded.recommender)
    if dimension is None:
        return
    # Every embedded item, active or not: serving filters by state, and an item
    # re-published later keeps its embedding time, so it must already be known.
    # Read first, so nothing slips between; on the embedded_at index, so the check every
    # MODEL_CHECK_INTERVAL is not a scan of the catalogue (it stalled requests for a second).
    until = Item.objects.aggregate(last=Max("embedded_at"))["last"]
    if loaded.embedded_until is not None and until == loaded.embedded_until:
        return
    items = Item.objects.filter(embedding__isnull=False, embedding_dim=dimension)
    embedder_name = (loaded.recommender.metadata.get("embedder") or {}).get("name")
    if embedder_name:  # vectors from another embedder would mean something else to the model
        items = items.filter(embedding_model=embedder_name)
    items = items.values_list("pk", "embedding", "published_at")
    if loaded.embedded_until is None:  # first load: trained items already carry their vectors
        rows = [row for row in items if str(row[0]) not in loaded.recommender]
    else:  # later: new items, and re-embedded ones whose text changed
        rows = list(items.filter(embedded_at__gt=loaded.embedded_until))
    loaded.embedded_until = until or loaded.embedded_until
    if not rows:
        return
    content = {str(pk): _vector(vector, dimension) for pk, vector, _ in rows}
    # for a model that scores item age; an undated item's age is unknown
    published = {str(pk): at.timestamp() for pk, _, at in rows if at is not None}
    tags: dict[str, list[str]] = {item_id: [] for item_id in content}
    for item_id, name in ItemTag.objects.filter(
        item_id__in=[pk for pk, _, _ in rows], status=ItemTag.Status.ACCEPTED
    ).values_list("item_id", "tag__name"):
        tags[str(item_id)].append(name)
    loaded.recommender.add_items(content, tags, published)
    logger.info("added %d items to model %s from their content embeddings", len(content), loaded.name)


def _vector(raw: bytes | memoryview, dimension: int) -> np.ndarray:
    return vector_from_bytes(bytes(raw), dimension)
