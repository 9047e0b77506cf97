"""``manage.py recommender_suggest_tags``: automatic tag suggestions for review (``suggest_tags``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from recommender.training import embedding


class Command(BaseCommand):
    help = "Suggest tags (source=automatic, status=pending) for embedded items that have no suggestion yet."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--ids", type=int, nargs="+", help="Only these Item ids (default: every item)")

    def handle(self, *args: Any, ids: list[int] | None, **options: Any) -> None:
        count = embedding.suggest_tags(ids)
        self.stdout.write(f"{count} tag suggestion(s) added; review them in the admin (Item tags, pending).")
