"""The recommender's periodic tasks, for Celery beat, from ``RECOMMENDER["SCHEDULE"]``.

Two ways to run them (README, "Running a worker"):

* With django-celery-beat (``pip install django-recommender[beat]``, the documented way):
  ``manage.py recommender_schedule`` stores them as ``PeriodicTask`` rows
  (``install_periodic_tasks``), and beat runs with
  ``-S django_celery_beat.schedulers:DatabaseScheduler``, which picks up edits made in
  its admin without a restart.
* Without it, a static schedule in the host's settings::

      from recommender.schedule import beat_schedule
      CELERY_BEAT_SCHEDULE = beat_schedule(RECOMMENDER.get("SCHEDULE"))

  Changing an interval then means changing settings and restarting beat. Do not set
  both: DatabaseScheduler copies ``CELERY_BEAT_SCHEDULE`` over its rows at every start,
  which would undo the edits made in the admin.

Each ``SCHEDULE`` value is seconds, a ``timedelta`` or any Celery schedule
(``crontab(hour=3, minute=0)`` for a nightly retrain); ``None`` disables the entry.
Defaults: ``SCHEDULE`` in ``recommender.settings_schema`` (docs/settings.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from recommender.conf import DEFAULTS, recommender_settings

# schedule key -> (task name, queue key)
TASKS = {
    "refresh": ("recommender.refresh_model", "train"),
    "train": ("recommender.train_model", "train"),
    "trending": ("recommender.compute_trending", "default"),
    "cleanup": ("recommender.cleanup", "default"),
    "publish": ("recommender.publish_due", "default"),
    "suggest_tags": ("recommender.suggest_tags", "embed"),
    "interests": ("recommender.recompute_interests", "default"),
    "tag_graph": ("recommender.rebuild_tag_graph", "embed"),
}


@dataclass(frozen=True)
class PeriodicEntry:
    """One periodic task as settings define it; ``enabled`` False: ``None`` in ``SCHEDULE``."""

    name: str
    task: str
    schedule: Any  # seconds, a timedelta or a Celery schedule
    queue: str
    enabled: bool


def _configured(key: str) -> Any:
    """The setting; the defaults while settings.py itself is being imported (no settings to read yet)."""
    if not settings.configured:
        return DEFAULTS[key]
    return getattr(recommender_settings, key)


def periodic_entries(
    schedule: Mapping[str, Any] | None = None, queues: Mapping[str, str] | None = None
) -> list[PeriodicEntry]:
    """Entries named ``recommender-<key>``; ``schedule`` and ``queues`` override the defaults key by key.

    A ``None`` entry keeps its default interval but is disabled, so the database way can
    list it for an admin to switch on. Keys of ``TASKS`` in neither the defaults nor
    ``schedule`` have no interval and are left out.
    """
    merged = {**DEFAULTS["SCHEDULE"], **(schedule if schedule is not None else _configured("SCHEDULE"))}
    queue_names = {**DEFAULTS["QUEUES"], **(queues if queues is not None else _configured("QUEUES"))}
    unknown = sorted(set(merged) - set(TASKS))
    if unknown:
        raise ValueError(
            f"Unknown RECOMMENDER['SCHEDULE'] entries: {', '.join(unknown)} (known: {', '.join(TASKS)})"
        )
    entries = []
    for key, every in merged.items():
        interval = every if every is not None else DEFAULTS["SCHEDULE"].get(key)
        if interval is None:
            continue
        task, queue = TASKS[key]
        entries.append(
            PeriodicEntry(f"recommender-{key}", task, interval, queue_names[queue], every is not None)
        )
    return entries


def beat_schedule(
    schedule: Mapping[str, Any] | None = None, queues: Mapping[str, str] | None = None
) -> dict[str, dict[str, Any]]:
    """The enabled entries as a static ``CELERY_BEAT_SCHEDULE``, for sites without django-celery-beat."""
    return {
        entry.name: {"task": entry.task, "schedule": entry.schedule, "options": {"queue": entry.queue}}
        for entry in periodic_entries(schedule, queues)
        if entry.enabled
    }


def install_periodic_tasks(*, reset: bool = False, dry_run: bool = False) -> list[tuple[str, str]]:
    """Store the entries as django-celery-beat ``PeriodicTask`` rows; ``(name, action)`` for each.

    Only missing rows are created, so a schedule edited in the admin survives a re-run;
    ``reset`` rewrites existing rows from settings. Actions: created, reset, kept.
    """
    # Optional dependency (the "beat" extra), and models cannot load while settings.py imports us.
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import ModelEntry

    entries = periodic_entries()
    existing = set(
        PeriodicTask.objects.filter(name__in=[e.name for e in entries]).values_list("name", flat=True)
    )
    actions = []
    with transaction.atomic():
        for entry in entries:
            if entry.name in existing and not reset:
                actions.append((entry.name, "kept"))
                continue
            actions.append((entry.name, "reset" if entry.name in existing else "created"))
            if dry_run:
                continue
            # Beat's own conversion: seconds and timedelta -> IntervalSchedule, crontab -> CrontabSchedule.
            model_schedule, field = ModelEntry.to_model_schedule(entry.schedule)
            PeriodicTask.objects.update_or_create(
                name=entry.name,
                defaults={
                    "task": entry.task,
                    **dict.fromkeys(("interval", "crontab", "solar", "clocked")),
                    field: model_schedule,
                    "args": "[]",
                    "kwargs": "{}",
                    "queue": entry.queue,
                    "enabled": entry.enabled,
                    "description": "From RECOMMENDER['SCHEDULE'] (manage.py recommender_schedule).",
                },
            )
    return actions
