"""``manage.py recommender_evaluate``: test metrics of a model version next to the popularity baseline."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from recommender.training import runs
from recommender.training.model_registry import ModelRegistryError


class Command(BaseCommand):
    help = "Evaluate the active (or a named) model version on today's interactions, leave-one-out."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", dest="name", help="Version name or id (default: the active one)")

    def handle(self, *args: Any, name: str | None, **options: Any) -> None:
        try:
            result = runs.evaluate_version(name)
        except ModelRegistryError as exc:
            raise CommandError(str(exc)) from exc
        model, baseline = result["model"], result["popularity"]
        keys = [k for k in model if k != "users"]
        self.stdout.write(f"{result['version']} on {int(model.get('users', 0))} users (last event held out)")
        self.stdout.write(f"{'metric':<14}{'model':>10}{'popularity':>12}")
        for key in keys:
            self.stdout.write(f"{key:<14}{model[key]:>10.4f}{baseline.get(key, float('nan')):>12.4f}")
