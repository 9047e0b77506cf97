"""``manage.py recommender_embed``: embed new and changed items now, without a worker (``embed_items``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from recommender.management.commands._output import counting_bar
from recommender.training import embedding


class Command(BaseCommand):
    help = "Embed items whose text has no vector from the configured embedder yet."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--ids", type=int, nargs="+", help="Only these Item ids (default: every item)")
        parser.add_argument("--suggest-tags", action="store_true", help="Then suggest automatic tags")

    def handle(self, *args: Any, ids: list[int] | None, suggest_tags: bool, **options: Any) -> None:
        with counting_bar("embedding", unit="item", enabled=options["verbosity"] > 0) as progress:
            count = embedding.embed_items(ids, progress=progress)
        self.stdout.write(f"{count} item(s) embedded.")
        if suggest_tags:
            self.stdout.write(f"{embedding.suggest_tags(ids)} tag suggestion(s) added for review.")
