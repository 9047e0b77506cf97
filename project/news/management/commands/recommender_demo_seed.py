"""Fill the demo with a synthetic news platform: topics, articles, readers and their histories."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from project.news import seeding
from project.news.synthetic import SeedConfig, generate_platform
from project.news.vocab import TOPICS


class Command(BaseCommand):
    help = (
        "Seed the demo: articles composed from topic vocabularies, readers (user001…, password "
        f"'{seeding.READER_PASSWORD}') with drifting preferences and every event type, and a staff "
        f"account '{seeding.ADMIN_USERNAME}'. Deterministic for a given --seed. Items are mirrored but "
        "not embedded: run recommender_embed afterwards (make demo does)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        defaults = SeedConfig()
        parser.add_argument(
            "--seed", type=int, default=defaults.seed, help="random seed (default %(default)s)"
        )
        parser.add_argument("--articles", type=int, default=defaults.articles)
        parser.add_argument("--users", type=int, default=defaults.users)
        parser.add_argument(
            "--events-per-user",
            type=int,
            default=defaults.events_per_user,
            help="mean number of events of all types per reader (default %(default)s)",
        )
        parser.add_argument(
            "--topics",
            type=int,
            default=defaults.topics,
            choices=range(1, len(TOPICS) + 1),
            metavar=f"1..{len(TOPICS)}",
        )
        parser.add_argument(
            "--flush", action="store_true", help="delete the demo's content and readers first"
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="do nothing when the site already has articles (used by `make demo`)",
        )

    def handle(self, *args, **options) -> None:
        if options["flush"]:
            seeding.flush()
        elif seeding.has_content():
            if options["if_empty"]:
                self.stdout.write("The demo already has articles; not seeding.")
                return
            raise CommandError("The demo already has articles; pass --flush to replace them.")
        for name in ("articles", "users", "events_per_user"):
            if options[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1")
        started = time.monotonic()
        platform = generate_platform(
            SeedConfig(
                seed=options["seed"],
                articles=options["articles"],
                users=options["users"],
                events_per_user=options["events_per_user"],
                topics=options["topics"],
            )
        )
        summary = seeding.store(platform, stdout=self.stdout)
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {summary.topics} topics, {summary.articles} articles, {summary.users} readers and "
                f"{summary.events} events in {time.monotonic() - started:.1f}s. Sign in as user001 / "
                f"{seeding.READER_PASSWORD} (staff: {seeding.ADMIN_USERNAME} / {seeding.ADMIN_PASSWORD})."
            )
        )
