"""Run-time tunables: the one place the serving code reads its knobs from.

Values come from ``RECOMMENDER`` settings, overridden key by key by the single
``TuningSettings`` row the admin edits. Each process keeps the merged values for
``TUNING_CACHE_SECONDS`` so a request never pays a query for them, and an admin
change reaches every process within that time (at once in the process that saved
it, through :func:`invalidate_tuning`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.core.signals import setting_changed
from django.db.models.signals import post_save

from recommender.conf import recommender_settings
from recommender.models import TuningSettings
from recommender.settings_schema import SETTINGS, Setting

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tuning:
    """A consistent snapshot of every tunable, read once per request.

    Field names are the lower-case ``RECOMMENDER`` keys; ``TuningSettings.values``
    uses the upper-case keys (``{"DIVERSITY_LAMBDA": 0.6}``). The admin's page edits
    the settings declared ``tunable`` (``recommender.settings_schema``); the others
    here (list lengths, candidates, history, cache timeout) only a row written directly
    overrides. An override that breaks its declared type or bounds is ignored.
    """

    default_limit: int
    max_limit: int
    candidates: int
    history_length: int
    exclude_seen: bool
    model_weight: float
    freshness_weight: float
    freshness_half_life_hours: float
    popularity_weight: float
    dislike_push: float
    like_pull: float
    diversity_lambda: float
    max_per_tag: int
    fallback_order: tuple[str, ...]
    trending_window_hours: float
    cache_timeout: int
    event_types: dict[str, float]  # every event type's weight (built-in and host-defined)
    gate_tolerance: float

    @classmethod
    def keys(cls) -> list[str]:
        """The setting names an admin may override (upper case, as in ``RECOMMENDER``)."""
        return [f.name.upper() for f in dataclasses.fields(cls)]


def _coerce(setting: Setting, value: Any) -> Any:
    """Give an override its setting's declared type (JSON from the admin is loosely typed)."""
    if setting.type is bool:
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)
    if setting.type in (int, float):
        return setting.type(value)
    if setting.type is list and not isinstance(value, list | tuple):
        raise TypeError(f"{setting.name} must be a list")
    return value


def _overridden(setting: Setting, override: Any, default: Any) -> Any:
    """The override, checked against the declaration; a mapping is overridden entry by entry.

    An admin who re-weights "like" keeps the other event types' weights.
    """
    if isinstance(default, dict):
        if not isinstance(override, dict):
            raise TypeError(f"{setting.name} must be a mapping")
        cast = setting.entries or (lambda v: v)
        value = {**default, **{k: cast(v) for k, v in override.items()}}
    else:
        value = _coerce(setting, override)
    if problem := setting.problem(value):
        raise ValueError(problem)
    return value


def _build(overrides: dict[str, Any]) -> Tuning:
    values: dict[str, Any] = {}
    for field in dataclasses.fields(Tuning):
        key = field.name.upper()
        if key == "EVENT_TYPES":
            default = recommender_settings.event_weights()
        else:
            default = getattr(recommender_settings, key)
        value = default
        if key in overrides:
            try:
                value = _overridden(SETTINGS[key], overrides[key], default)
            except (TypeError, ValueError):
                logger.warning("ignoring invalid tuning value %s=%r", key, overrides[key])
        values[field.name] = tuple(value) if isinstance(value, list) else value
    return Tuning(**values)


def _read_overrides() -> dict[str, Any]:
    row = TuningSettings.objects.order_by("pk").values_list("values", flat=True).first()
    return row if isinstance(row, dict) else {}


_lock = threading.Lock()
_cached: tuple[float, Tuning] | None = None


def get_tuning() -> Tuning:
    """Settings overridden by the admin's tuning row; re-read at most every TUNING_CACHE_SECONDS."""
    if (override := _override.get()) is not None:  # inside override_tuning(): the admin's preview
        return override
    global _cached
    snapshot = _cached
    if snapshot is not None and time.monotonic() < snapshot[0]:
        return snapshot[1]
    try:
        overrides = _read_overrides()
    except Exception:  # no table yet (migrations), database down: settings still serve
        logger.exception("could not read recommender tuning; using settings")
        overrides = {}
    tuning = _build(overrides)
    with _lock:
        _cached = (time.monotonic() + float(recommender_settings.TUNING_CACHE_SECONDS), tuning)
    return tuning


def invalidate_tuning() -> None:
    """Drop this process's snapshot (call after saving ``TuningSettings``)."""
    global _cached
    with _lock:
        _cached = None


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "RECOMMENDER":
        invalidate_tuning()


def _on_tuning_saved(**kwargs: Any) -> None:
    invalidate_tuning()


setting_changed.connect(_on_setting_changed)
# The process that saved the row sees the change at once; others within TUNING_CACHE_SECONDS.
post_save.connect(
    _on_tuning_saved, sender="recommender.TuningSettings", dispatch_uid="recommender_tuning_saved"
)


_override: ContextVar[Tuning | None] = ContextVar("recommender_tuning_override", default=None)


@contextmanager
def override_tuning(values: dict[str, Any]) -> Iterator[Tuning]:
    """Serve ``values`` (upper-case keys over settings) from get_tuning() in this context only.

    The admin's live preview runs ``recommend()`` under values not saved yet; a
    context variable keeps them to this thread or task, never other requests.
    """
    token = _override.set(_build(values))
    try:
        yield _override.get()
    finally:
        _override.reset(token)
