"""The default periodic tasks, as a Celery ``beat_schedule``.

In the host's settings::

    from recommender.schedule import beat_schedule
    CELERY_BEAT_SCHEDULE = beat_schedule(RECOMMENDER.get("SCHEDULE"))

then run ``celery -A project beat`` (with ``TunedScheduler`` below, so that the
intervals edited in the admin apply when beat starts). Defaults (``SCHEDULE`` in ``recommender.conf``):
refresh hourly, full retrain daily, trending every 10 minutes, cleanup daily, tag
suggestions hourly, scheduled articles published every 5 minutes. Each value is
seconds, a ``timedelta`` or any Celery schedule (``crontab(hour=3, minute=0)`` for
a nightly retrain); ``None`` disables the entry.
The argument is needed inside settings.py, where Django settings cannot be read
yet; called later without it (e.g. in ``celery.py``, after ``django.setup()``), it
reads ``RECOMMENDER`` with the admin's tuning over it, so a schedule edited in the
admin applies when beat restarts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery.beat import PersistentScheduler

from recommender.conf import DEFAULTS

# schedule key -> (task name, queue key)
TASKS = {
    "refresh": ("recommender.refresh_model", "train"),
    "train": ("recommender.train_model", "train"),
    "trending": ("recommender.compute_trending", "default"),
    "cleanup": ("recommender.cleanup", "default"),
    "publish": ("recommender.publish_due", "default"),
    "suggest_tags": ("recommender.suggest_tags", "embed"),
}


def _configured(key: str) -> Any:
    """The setting, with the admin's tuning over it once the database can be read (beat start-up)."""
    from django.apps import apps
    from django.conf import settings

    if not settings.configured:
        return DEFAULTS[key]
    from recommender.conf import recommender_settings

    if key == "SCHEDULE" and apps.ready:
        from recommender.tuning import get_tuning

        return get_tuning().schedule
    return getattr(recommender_settings, key)


def beat_schedule(
    schedule: Mapping[str, Any] | None = None, queues: Mapping[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """Beat entries named ``recommender-<key>``; ``schedule`` overrides the defaults key by key."""
    merged = {**DEFAULTS["SCHEDULE"], **(schedule if schedule is not None else _configured("SCHEDULE"))}
    queue_names = {**DEFAULTS["QUEUES"], **(queues if queues is not None else _configured("QUEUES"))}
    unknown = sorted(set(merged) - set(TASKS))
    if unknown:
        raise ValueError(
            f"Unknown RECOMMENDER['SCHEDULE'] entries: {', '.join(unknown)} (known: {', '.join(TASKS)})"
        )
    return {
        f"recommender-{key}": {
            "task": TASKS[key][0],
            "schedule": every,
            "options": {"queue": queue_names[TASKS[key][1]]},
        }
        for key, every in merged.items()
        if every is not None
    }


class TunedScheduler(PersistentScheduler):
    """Celery's default beat scheduler, with the recommender's entries read when beat starts.

    ``CELERY_BEAT_SCHEDULE`` is computed while settings.py is imported, before the
    database can be read, so the intervals edited in the admin's tuning page would
    never reach beat. Set ``CELERY_BEAT_SCHEDULER = "recommender.schedule:TunedScheduler"``
    (or ``celery beat -S recommender.schedule:TunedScheduler``): the ``recommender-*``
    entries are then rebuilt from settings and tuning at start-up; other entries stay.
    """

    def merge_inplace(self, b: Mapping[str, Any]) -> None:
        """Celery merges the configured entries at start-up; ours are swapped for fresh ones here."""
        others = {k: v for k, v in b.items() if not k.startswith("recommender-")}
        super().merge_inplace({**others, **beat_schedule()})
