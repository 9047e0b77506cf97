"""Fill the Wagtail demo with the synthetic news platform: sections, article pages, readers, events."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from project.news.synthetic import SeedConfig, generate_platform
from project.wagtail_news import seeding


class Command(BaseCommand):
    help = (
        "Seed the Wagtail demo from the core demo's synthetic generator: a home page, a section per "
        "topic, article pages, readers (user001…, password "
        f"'{seeding.READER_PASSWORD}') and their events, and an editor '{seeding.ADMIN_USERNAME}'. "
        "Pages are mirrored but not embedded: run recommender_embed afterwards (make demo-wagtail does)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--articles", type=int, default=600)
        parser.add_argument("--users", type=int, default=100)
        parser.add_argument("--events-per-user", type=int, default=60)
        parser.add_argument("--topics", type=int, default=8)
        parser.add_argument("--flush", action="store_true", help="delete the demo's pages and readers first")
        parser.add_argument("--if-empty", action="store_true", help="do nothing when the demo is seeded")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["flush"]:
            seeding.flush()
        elif seeding.has_content():
            if options["if_empty"]:
                self.stdout.write("The Wagtail demo is already seeded; not seeding.")
                return
            raise CommandError("The Wagtail demo is already seeded; pass --flush to replace it.")
        started = time.monotonic()
        config = SeedConfig(
            seed=options["seed"],
            articles=options["articles"],
            users=options["users"],
            events_per_user=options["events_per_user"],
            topics=options["topics"],
        )
        summary = seeding.store(generate_platform(config), stdout=self.stdout)
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {summary.sections} sections, {summary.articles} article pages, {summary.users} "
                f"readers and {summary.events} events in {time.monotonic() - started:.1f}s. Readers: "
                f"user001 / {seeding.READER_PASSWORD}; editor: {seeding.ADMIN_USERNAME} / "
                f"{seeding.ADMIN_PASSWORD}."
            )
        )
