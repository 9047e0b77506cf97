"""Periodic tasks: the static beat_schedule() and the django-celery-beat rows of recommender_schedule."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery.schedules import crontab
from django.core.management import call_command
from django.core.management.base import CommandError
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from project.celery import app
from recommender import tasks
from recommender.conf import DEFAULTS
from recommender.schedule import TASKS, beat_schedule
from tests.workers.factories import make_items, seed_sessions

SIX = ("refresh", "train", "trending", "cleanup", "suggest_tags", "publish")


@pytest.fixture
def schedule(settings):
    """Set ``RECOMMENDER["SCHEDULE"]`` (and ``QUEUES``) for one test."""

    def set_schedule(entries: dict, queues: dict | None = None) -> None:
        settings.RECOMMENDER = {**settings.RECOMMENDER, "SCHEDULE": entries, "QUEUES": queues or {}}

    return set_schedule


def rows() -> dict[str, PeriodicTask]:
    return {t.name: t for t in PeriodicTask.objects.filter(name__startswith="recommender-")}


def test_beat_schedule_defaults_and_overrides():
    default = beat_schedule()
    assert default["recommender-refresh"] == {
        "task": "recommender.refresh_model",
        "schedule": 3600,
        "options": {"queue": "train"},
    }
    assert default["recommender-trending"]["schedule"] == 600
    assert (
        set(default)
        == {f"recommender-{k}" for k in DEFAULTS["SCHEDULE"]}
        >= {f"recommender-{k}" for k in SIX}
    )
    assert default["recommender-publish"]["task"] == "recommender.publish_due"
    nightly = crontab(hour=3, minute=0)
    custom = beat_schedule({"train": nightly, "suggest_tags": None}, {"train": "gpu"})
    assert custom["recommender-train"]["schedule"] is nightly
    assert custom["recommender-train"]["options"] == {"queue": "gpu"}
    assert "recommender-suggest_tags" not in custom
    with pytest.raises(ValueError, match="Unknown"):
        beat_schedule({"retrain": 60})


def test_interests_and_tag_graph_are_scheduled_when_they_have_an_interval(monkeypatch):
    monkeypatch.setitem(DEFAULTS, "SCHEDULE", {k: v for k, v in DEFAULTS["SCHEDULE"].items() if k in SIX})
    assert not {"recommender-interests", "recommender-tag_graph"} & set(beat_schedule())  # no interval
    custom = beat_schedule({"interests": 86400, "tag_graph": timedelta(hours=12)})
    assert custom["recommender-interests"] == {
        "task": "recommender.recompute_interests",
        "schedule": 86400,
        "options": {"queue": "default"},
    }
    assert custom["recommender-tag_graph"]["task"] == "recommender.rebuild_tag_graph"
    assert custom["recommender-tag_graph"]["options"] == {"queue": "embed"}


def test_every_scheduled_task_is_a_registered_task_on_its_queue():
    for task_name, queue in TASKS.values():
        assert app.tasks[task_name].queue == DEFAULTS["QUEUES"][queue], task_name


@pytest.mark.django_db
def test_the_new_tasks_run_their_domain_functions():
    seed_sessions(make_items(4), users=3, length=3)
    assert tasks.recompute_interests.delay().get() == 3  # one profile per recent visitor
    assert tasks.rebuild_tag_graph.delay().get() == 0  # no tags, no relations


@pytest.mark.django_db
def test_the_command_creates_the_periodic_tasks(schedule, capsys):
    schedule(
        {"train": crontab(hour=3, minute=15), "interests": 86400, "tag_graph": timedelta(hours=12)},
        {"train": "gpu"},
    )
    call_command("recommender_schedule")
    assert "recommender-refresh: created" in capsys.readouterr().out
    created = rows()
    assert set(created) == {f"recommender-{k}" for k in {*DEFAULTS["SCHEDULE"], "interests", "tag_graph"}}
    refresh = created["recommender-refresh"]
    assert (refresh.task, refresh.queue, refresh.enabled) == ("recommender.refresh_model", "gpu", True)
    assert (refresh.interval.every, refresh.interval.period) == (3600, IntervalSchedule.SECONDS)
    train = created["recommender-train"]
    assert train.interval is None and (train.crontab.hour, train.crontab.minute) == ("3", "15")
    assert (train.task, train.queue) == ("recommender.train_model", "gpu")
    assert created["recommender-interests"].task == "recommender.recompute_interests"
    assert created["recommender-interests"].queue == "default"
    assert created["recommender-tag_graph"].interval.every == 12 * 3600
    assert created["recommender-tag_graph"].queue == "embed"
    assert created["recommender-publish"].interval.every == 300


@pytest.mark.django_db
def test_beat_reads_the_rows_with_their_queues(schedule):
    """What DatabaseScheduler builds from the rows: the same task, interval and queue."""
    schedule({"cleanup": None})
    call_command("recommender_schedule", verbosity=0)
    entries = DatabaseScheduler(app=app, lazy=True).all_as_schedule()
    refresh = entries["recommender-refresh"]
    assert refresh.task == "recommender.refresh_model"
    assert refresh.schedule.run_every == timedelta(hours=1)
    assert refresh.options["queue"] == "train"
    assert "recommender-cleanup" not in entries  # disabled


@pytest.mark.django_db
def test_a_second_run_creates_nothing(capsys):
    call_command("recommender_schedule")
    counts = (PeriodicTask.objects.count(), IntervalSchedule.objects.count(), CrontabSchedule.objects.count())
    capsys.readouterr()
    call_command("recommender_schedule")
    assert "recommender-train: kept" in capsys.readouterr().out
    assert (
        PeriodicTask.objects.count(),
        IntervalSchedule.objects.count(),
        CrontabSchedule.objects.count(),
    ) == (counts)


@pytest.mark.django_db
def test_an_admin_edit_survives_a_rerun_and_reset_restores_settings(capsys):
    call_command("recommender_schedule", verbosity=0)
    edited = PeriodicTask.objects.get(name="recommender-refresh")
    edited.interval = IntervalSchedule.objects.create(every=2, period=IntervalSchedule.HOURS)
    edited.kwargs = '{"config": {"epochs": 1}}'
    edited.save()

    call_command("recommender_schedule")
    kept = PeriodicTask.objects.get(name="recommender-refresh")
    assert (kept.interval.every, kept.interval.period, kept.kwargs) == (
        2,
        "hours",
        '{"config": {"epochs": 1}}',
    )

    capsys.readouterr()
    call_command("recommender_schedule", "--reset")
    assert "recommender-refresh: reset" in capsys.readouterr().out
    reset = PeriodicTask.objects.get(name="recommender-refresh")
    assert (reset.interval.every, reset.interval.period, reset.kwargs) == (3600, "seconds", "{}")
    assert PeriodicTask.objects.filter(name="recommender-refresh").count() == 1


@pytest.mark.django_db
def test_a_none_entry_is_created_disabled_with_its_default_interval(schedule):
    schedule({"suggest_tags": None})
    call_command("recommender_schedule", verbosity=0)
    disabled = PeriodicTask.objects.get(name="recommender-suggest_tags")
    assert disabled.enabled is False
    assert disabled.interval.every == DEFAULTS["SCHEDULE"]["suggest_tags"]
    assert PeriodicTask.objects.get(name="recommender-trending").enabled is True


@pytest.mark.django_db
def test_dry_run_changes_nothing(capsys):
    call_command("recommender_schedule", "--dry-run")
    assert "recommender-refresh: would be created" in capsys.readouterr().out
    assert not PeriodicTask.objects.exists() and not IntervalSchedule.objects.exists()


@pytest.mark.django_db
def test_an_unknown_schedule_key_is_a_command_error(schedule):
    schedule({"retrain": 60})
    with pytest.raises(CommandError, match="Unknown"):
        call_command("recommender_schedule")
    assert not PeriodicTask.objects.exists()


def test_without_django_celery_beat_the_command_says_how_to_install_it(settings):
    settings.INSTALLED_APPS = [app for app in settings.INSTALLED_APPS if app != "django_celery_beat"]
    with pytest.raises(CommandError, match=r"django-recommender\[beat\]"):
        call_command("recommender_schedule")


def test_the_demo_keeps_one_source_of_periodic_tasks(settings):
    """DatabaseScheduler copies CELERY_BEAT_SCHEDULE over its rows at start: it would undo admin edits."""
    assert settings.CELERY_BEAT_SCHEDULER == "django_celery_beat.schedulers:DatabaseScheduler"
    assert not hasattr(settings, "CELERY_BEAT_SCHEDULE")
