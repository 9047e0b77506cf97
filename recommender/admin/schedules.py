"""django-celery-beat's schedule pages, labelled with what each schedule runs.

``manage.py recommender_schedule`` stores the recommender's periodic tasks as beat
rows, and tasks with the same interval share one ``IntervalSchedule`` ("every
day"). Beat's admin names a schedule only by its timing, so an editor changing
"every day" for the nightly training cannot see that the cleanup runs on it too.
Here the schedule lists get a "runs" column, the schedule menus of a periodic task
name the tasks on each schedule, and the task list says what each task does.

Only beat's own admin classes are replaced (by subclasses), and only when beat is
installed: a host that registered its own keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.apps import apps
from django.contrib import admin
from django.db.models import Model, Prefetch, QuerySet
from django.http import HttpRequest

# What the recommender's periodic tasks do, for editors (task names as in recommender.schedule.TASKS).
TASK_DESCRIPTIONS = {
    "recommender.refresh_model": "Refresh the model with the newest interactions",
    "recommender.train_model": "Train a new model on all interactions",
    "recommender.compute_trending": "Recompute trending scores",
    "recommender.cleanup": "Delete old served-list logs, surplus model files and dead runs",
    "recommender.publish_due": "Activate items whose publication time has come",
    "recommender.suggest_tags": "Suggest tags for new items",
    "recommender.recompute_interests": "Rebuild readers' interest profiles",
    "recommender.rebuild_tag_graph": "Rebuild the related-tag graph",
}


def describe_task(task: str) -> str:
    """What a task does, in words; the task's own name where it is not one of the recommender's."""
    return TASK_DESCRIPTIONS.get(task, task)


def runs(tasks: Iterable[Any]) -> str:
    """The periodic tasks on one schedule, by name: ``recommender-train, recommender-cleanup``."""
    names = sorted(task.name for task in tasks)
    return ", ".join(names) if names else "nothing"


UNITS = ((86_400, "day"), (3_600, "hour"), (60, "minute"), (1, "second"))


def timing(schedule: Any) -> str:
    """When a schedule fires, in words: "every day" where beat writes "every 86400 seconds"."""
    run_every = getattr(schedule.schedule, "run_every", None)
    if run_every is not None:
        seconds = run_every.total_seconds()
        for size, unit in UNITS:
            if seconds >= size and seconds % size == 0:
                count = int(seconds // size)
                return f"every {unit}" if count == 1 else f"every {count} {unit}s"
    return str(getattr(schedule, "human_readable", None) or schedule)


def schedule_label(schedule: Model) -> str:
    """A schedule named by its timing and by the tasks that run on it, for menus."""
    return f"{timing(schedule)} (runs {runs(schedule.periodictask_set.all())})"


if apps.is_installed("django_celery_beat"):
    from django_celery_beat import admin as beat_admin
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    def _replace(
        model: type[Model], beat_class: type[admin.ModelAdmin], ours: type[admin.ModelAdmin]
    ) -> None:
        """Swap beat's admin of ``model`` for ``ours``, unless the host registered another one."""
        if admin.site.is_registered(model) and type(admin.site.get_model_admin(model)) is beat_class:
            admin.site.unregister(model)
            admin.site.register(model, ours)

    class _RunsColumn:
        """A "runs" column on a schedule list, read with one prefetch for the page."""

        def get_queryset(self, request: HttpRequest) -> QuerySet:
            tasks = Prefetch(
                "periodictask_set", queryset=PeriodicTask.objects.only("name", "interval", "crontab")
            )
            return super().get_queryset(request).prefetch_related(tasks)  # type: ignore[misc]

        @admin.display(description="when")
        def when(self, obj: Model) -> str:
            return timing(obj)

        @admin.display(description="runs")
        def runs(self, obj: Model) -> str:
            return runs(obj.periodictask_set.all())

    class IntervalScheduleAdmin(_RunsColumn, beat_admin.IntervalScheduleAdmin):
        """Beat's intervals, each with the tasks that run on it."""

        list_display = ("when", "runs")

    class CrontabScheduleAdmin(_RunsColumn, beat_admin.CrontabScheduleAdmin):
        """Beat's crontabs, each with the tasks that run on it."""

        list_display = ("__str__", "when", "runs")

    class PeriodicTaskAdmin(beat_admin.PeriodicTaskAdmin):
        """Beat's periodic tasks, with what each runs in words and schedule menus that name their tasks."""

        list_display = ("name", "what", "enabled", "when", "start_time", "last_run_at", "one_off")
        list_select_related = ("interval", "crontab", "solar", "clocked")

        @admin.display(description="what it runs", ordering="task")
        def what(self, obj: PeriodicTask) -> str:
            return describe_task(obj.task)

        @admin.display(description="when")
        def when(self, obj: PeriodicTask) -> str:
            return timing(obj.scheduler) if obj.scheduler else "-"

        def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
            field = super().formfield_for_foreignkey(db_field, request, **kwargs)
            if db_field.name in ("interval", "crontab") and field is not None:
                field.queryset = field.queryset.prefetch_related("periodictask_set")
                field.label_from_instance = schedule_label
            return field

    _replace(IntervalSchedule, beat_admin.IntervalScheduleAdmin, IntervalScheduleAdmin)
    _replace(CrontabSchedule, beat_admin.CrontabScheduleAdmin, CrontabScheduleAdmin)
    _replace(PeriodicTask, beat_admin.PeriodicTaskAdmin, PeriodicTaskAdmin)
