"""``manage.py recommender_partitions``: monthly partitions of the events table (PostgreSQL only).

Without options it lists them. ``--convert`` is the migration path: it rebuilds
``recommender_interaction`` as a table partitioned by month on ``timestamp`` in one
transaction holding an exclusive lock, so stop the web and worker processes first and
expect downtime proportional to the table. ``--create-next`` adds next month's partition
(idempotent; the cleanup task does it too, so a monthly cron is only needed without beat).
``--revert`` rebuilds the plain table. Design and idempotency: ``recommender.tracking.partitions``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections

from recommender.tracking import partitions


class Command(BaseCommand):
    help = "List, create or convert to monthly partitions of the events table (PostgreSQL only)."

    def add_arguments(self, parser: CommandParser) -> None:
        action = parser.add_mutually_exclusive_group()
        action.add_argument(
            "--convert",
            action="store_true",
            help="Rebuild the events table partitioned by month (locks it: stop web and workers first)",
        )
        action.add_argument(
            "--create-next", action="store_true", help="Create next month's partition where missing"
        )
        action.add_argument(
            "--revert", action="store_true", help="Rebuild the plain, unpartitioned table (locks it too)"
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Database alias (default: default)")

    def handle(
        self, *args: Any, convert: bool, create_next: bool, revert: bool, database: str, **options: Any
    ) -> None:
        if connections[database].vendor != "postgresql":
            raise CommandError("Partitioning the events table needs PostgreSQL.")
        try:
            if convert:
                self.stdout.write(
                    f"Converting {partitions.TABLE}: the table is locked until the copy commits."
                )
                partitions.convert(database)
                self.stdout.write(self.style.SUCCESS(f"{partitions.TABLE} is partitioned by month."))
            elif create_next:
                created = partitions.create_partitions(using=database)
                self.stdout.write(
                    f"Created {', '.join(created)}." if created else "Next month's partition exists."
                )
            elif revert:
                partitions.revert(database)
                self.stdout.write(self.style.SUCCESS(f"{partitions.TABLE} is a plain table again."))
        except partitions.PartitioningError as exc:
            raise CommandError(str(exc)) from exc
        self._status(database)

    def _status(self, database: str) -> None:
        """One line per partition: its range, PostgreSQL's row estimate and its size on disk."""
        if not partitions.is_partitioned(connections[database]):
            self.stdout.write(
                f"{partitions.TABLE} is not partitioned (manage.py recommender_partitions --convert)."
            )
            return
        found = partitions.partitions(database)
        self.stdout.write(
            f"{partitions.TABLE}: {len(found)} partitions by month of {partitions.PARTITION_KEY}; "
            f"event ids kept unique in {partitions.SEEN_TABLE}"
        )
        for p in found:
            span = f"{p.start:%Y-%m-%d} to {p.end:%Y-%m-%d}" if p.start and p.end else "default (the rest)"
            rows = f"~{p.rows} rows" if p.rows >= 0 else "rows not counted yet"
            self.stdout.write(f"  {p.name:<40} {span:<26} {rows:<22} {p.size_bytes / 1024:,.0f} kB")
