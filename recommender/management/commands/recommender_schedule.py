"""``manage.py recommender_schedule``: store the recommender's periodic tasks in django-celery-beat.

Creates one ``PeriodicTask`` per ``RECOMMENDER["SCHEDULE"]`` entry (``recommender-refresh``,
``-train``, ...) for beat's ``DatabaseScheduler``. Safe to re-run: existing rows, edited in
the admin or not, are kept unless ``--reset``. A ``None`` entry is created disabled, with
its default interval, so it can be switched on in the admin.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser

from recommender.schedule import install_periodic_tasks


class Command(BaseCommand):
    help = "Create the recommender's periodic tasks as django-celery-beat PeriodicTask rows."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset", action="store_true", help="Rewrite existing rows from settings (undoes admin edits)"
        )
        parser.add_argument("--dry-run", action="store_true", help="Print what would be done, change nothing")

    def handle(self, *args: Any, reset: bool, dry_run: bool, **options: Any) -> None:
        if not apps.is_installed("django_celery_beat"):
            raise CommandError(
                "django-celery-beat is not installed: pip install 'django-recommender[beat]', add "
                "'django_celery_beat' to INSTALLED_APPS and migrate (or set CELERY_BEAT_SCHEDULE "
                "from recommender.schedule.beat_schedule instead)."
            )
        try:
            actions = install_periodic_tasks(reset=reset, dry_run=dry_run)
        except ValueError as exc:  # an unknown SCHEDULE key
            raise CommandError(str(exc)) from exc
        prefix = "would be " if dry_run else ""
        for name, action in actions:
            self.stdout.write(f"{name}: {prefix}{action}")
        if not dry_run:
            self.stdout.write(self.style.SUCCESS("Periodic tasks are in django-celery-beat."))
