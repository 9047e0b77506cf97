"""``manage.py recommender_sync``: rebuild the mirrored Items of registered content.

For content that existed before the app was installed, was bulk-loaded without
signals, or after the registration options changed. Safe to run any time: an
unchanged object is left alone, and Items whose object vanished are deactivated.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser

from recommender.management.commands._output import counting_bar
from recommender.registry import registry
from recommender.tracking.sync import SyncStats, sync_model


class Command(BaseCommand):
    help = "Create, update or deactivate the recommender Items of registered content models."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--model", action="append", help="app_label.Model to sync (repeatable); default: all"
        )
        parser.add_argument(
            "--batch-size", type=int, default=500, help="Objects per transaction (default 500)"
        )

    def handle(self, *args: Any, model: list[str] | None, batch_size: int, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        models = [self._model(label) for label in model] if model else registry.registered_models()
        if not models:
            self.stdout.write(
                "No content model is registered; call recommender.register(...) in AppConfig.ready()."
            )
            return
        total = SyncStats()
        for content_model in models:
            stats = self._sync(content_model, batch_size, show_progress=options["verbosity"] > 0)
            total.add(stats)
            self.stdout.write(f"{content_model._meta.label}: {self._summary(stats)}")
        if len(models) > 1:
            self.stdout.write(f"Total: {self._summary(total)}")
        self.stdout.write(self.style.SUCCESS("Items are in sync."))

    def _model(self, label: str) -> Any:
        try:
            content_model = apps.get_model(label)
        except (LookupError, ValueError) as exc:
            raise CommandError(f"Unknown model {label!r}; use app_label.ModelName.") from exc
        if not registry.is_registered(content_model):
            raise CommandError(f"{label} is not registered with the recommender.")
        return content_model

    def _sync(self, content_model: Any, batch_size: int, *, show_progress: bool) -> SyncStats:
        total = content_model._default_manager.count()
        done = 0
        with counting_bar(content_model._meta.label, unit="obj", enabled=show_progress) as bar:

            def advance(count: int) -> None:
                nonlocal done
                done += count
                bar(done, total)

            return sync_model(content_model, batch_size=batch_size, progress=advance if bar else None)

    @staticmethod
    def _summary(stats: SyncStats) -> str:
        return (
            f"{stats.created} created, {stats.updated} updated, {stats.unchanged} unchanged, "
            f"{stats.deactivated} deactivated"
        )
