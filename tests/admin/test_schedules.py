"""django-celery-beat's schedule pages name what each schedule runs."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from recommender.admin import schedules
from recommender.schedule import install_periodic_tasks
from tests.admin import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss(settings) -> Client:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    install_periodic_tasks()
    client = Client()
    client.force_login(factories.user("boss", superuser=True))
    return client


def test_the_recommender_labels_replace_beats_own_admin() -> None:
    assert isinstance(admin.site.get_model_admin(IntervalSchedule), schedules.IntervalScheduleAdmin)
    assert isinstance(admin.site.get_model_admin(PeriodicTask), schedules.PeriodicTaskAdmin)


def test_interval_list_says_which_tasks_run_on_each_interval(boss: Client) -> None:
    html = boss.get(reverse("admin:django_celery_beat_intervalschedule_changelist")).content.decode()
    row = r'<th class="field-when"><a [^>]*>([^<]+)</a></th><td class="field-runs">([^<]+)</td>'
    rows = dict(re.findall(row, html))
    assert "recommender-train" in rows["every day"] and "recommender-cleanup" in rows["every day"]
    assert rows["every 5 minutes"] == "recommender-publish"


def test_periodic_tasks_say_what_they_run_and_their_menus_name_the_tasks(boss: Client) -> None:
    html = boss.get(reverse("admin:django_celery_beat_periodictask_changelist")).content.decode()
    assert "Train a new model on all interactions" in html
    assert set(re.findall(r'<td class="field-when">([^<]+)</td>', html)) == {
        "every day",
        "every hour",
        "every 10 minutes",
        "every 5 minutes",
    }
    task = PeriodicTask.objects.get(name="recommender-publish")
    form = boss.get(reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])).content.decode()
    options = re.findall(r"<option value=\"\d+\"[^>]*>([^<]+)</option>", form)
    assert "every 5 minutes (runs recommender-publish)" in options
    assert "every day (runs recommender-cleanup, recommender-interests, recommender-tag_graph, " \
        "recommender-train)" in options  # fmt: skip
    assert schedules.describe_task("someone.else") == "someone.else"
