"""``manage.py recommender_refresh``: continue the active model on recent interactions (``refresh_model``)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from recommender.management.commands._output import epoch_bar, report
from recommender.training import runs


class Command(BaseCommand):
    help = "Continue the active model on the interactions since it was trained (none active: full training)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--epochs", type=int, help="Maximum epochs (default: REFRESH_CONFIG)")

    def handle(self, *args: Any, epochs: int | None, **options: Any) -> None:
        config = {"epochs": epochs} if epochs else None
        started = time.monotonic()
        with epoch_bar(enabled=options["verbosity"] > 0) as bar:
            try:
                version = runs.refresh_model(config=config, progress=bar or True)
            except (runs.TrainingBusy, runs.NotEnoughData) as exc:
                raise CommandError(str(exc)) from exc
        report(self, version, wall_seconds=time.monotonic() - started)
