"""Peak memory of reading a training run's data from PostgreSQL: streamed, against every event in memory.

    .ci/with-services .venv/bin/python -m bench.speed --only loading [--loading-events 1000000,10000000]

``DATABASE_URL`` must name a throwaway PostgreSQL database: it is migrated and its
interactions are replaced. For each size, one process seeds N synthetic events
(20,000 items drawn by a multiplicative hash of the event number, one reader per
100 events, interleaved in time) with a single
``INSERT … SELECT FROM generate_series``; then a fresh process per way of reading
reads them as a training run does and reports its peak RSS and the RSS it had
before reading (Django loaded, nothing read):

- streamed: ``dataset.load_training_data`` (what ``train_model`` runs);
- every event in memory: ``build_training_events`` then ``build_sequences``, the
  read that training made before it streamed (still how a refresh reads its new events).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence

ITEMS = 20_000
EVENTS_PER_READER = 100
WAYS = {
    "stream": "streamed into sequences (dataset.load_training_data)",
    "list": "every event in memory (build_training_events + build_sequences)",
}


def _setup() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
    os.environ["DJANGO_DEBUG"] = "0"  # no query log
    import django

    django.setup()


def _rss_gb() -> float:
    with open("/proc/self/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return kb / 1024**2


def seed(n_events: int) -> dict:
    """Replace the interactions with ``n_events`` synthetic ones over ``ITEMS`` items."""
    _setup()
    from django.contrib.contenttypes.models import ContentType
    from django.core.management import call_command
    from django.db import connection

    from recommender.models import Interaction, Item

    call_command("migrate", verbosity=0)
    kind = ContentType.objects.get_for_model(Item)
    have = Item.objects.filter(content_type=kind).count()
    Item.objects.bulk_create(
        (Item(content_type=kind, object_id=f"load-{k}", title=f"Item {k}") for k in range(have, ITEMS)),
        batch_size=5000,
    )
    started = time.perf_counter()
    table = Interaction._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table}")
        cursor.execute(
            f"""
            INSERT INTO {table} (event_id, user_id, visitor_id, item_id, event_type, value, timestamp,
                                 session_id, placement, recomm_id, created_at)
            SELECT 'load-' || g, NULL, 'r' || (g %% %s), ids[1 + (g * 2654435761 %% 4294967296) %% n],
                   'view', NULL, now() - make_interval(secs => (%s - g)::float8), '', '', '', now()
            FROM generate_series(1::bigint, %s) AS g,
                 (SELECT array_agg(id ORDER BY id) AS ids, count(*) AS n FROM {Item._meta.db_table}
                  WHERE content_type_id = %s) AS catalogue
            """,
            [max(1, n_events // EVENTS_PER_READER), n_events, n_events, kind.pk],
        )
        cursor.execute(f"ANALYZE {table}")
    return {"events": n_events, "seconds": time.perf_counter() - started}


def read(way: str) -> dict:
    """Read every usable interaction one way; peak RSS and the RSS before reading."""
    _setup()
    from recommender.ml.data import build_sequences
    from recommender.training import dataset, runs
    from recommender.tuning import get_tuning

    tuning = get_tuning()
    before = _rss_gb()
    started = time.perf_counter()
    if way == "stream":
        data = dataset.load_training_data()
        rows, sequences = data.rows, data.sequences
    else:
        events = runs.build_training_events()
        rows = len(events)
        sequences = build_sequences(
            events, max_len=int(tuning.history_length), event_weights=tuning.event_types
        )
    seconds = time.perf_counter() - started
    return {
        "rows": rows,
        "readers": len(sequences),
        "steps": sum(len(s) for s in sequences.values()),
        "seconds": seconds,
        "before_gb": before,
        "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }


def _child(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "bench.loading", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[-400:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_loading(sizes: Sequence[int]) -> str:
    """Rows of the table: each size seeded once, then each way read in a fresh process."""
    from bench.speed import table

    title = "5. Peak memory of reading a training run's events from PostgreSQL (a fresh process per row)"
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        return f"{title}: skipped, needs DATABASE_URL of a throwaway PostgreSQL (.ci/with-services)\n"
    rows = []
    for n in sizes:
        seeded = _child("seed", str(n))
        for way, label in WAYS.items():
            try:
                found = _child("read", way)
            except RuntimeError as exc:
                rows.append((f"{n:,}", label, "failed", "-", "-", "-", str(exc)[-60:]))
                continue
            rows.append(
                (f"{n:,}", label, f"{found['rows']:,}", f"{found['seconds']:.1f}",
                 f"{found['before_gb']:.2f}", f"{found['peak_gb']:.2f}",
                 f"{found['readers']:,} readers, {found['steps']:,} steps; "
                 f"seeded in {seeded['seconds']:.0f} s")
            )  # fmt: skip
    header = ("events", "read", "rows read", "seconds", "RSS before GB", "peak RSS GB", "kept")
    return table(title, header, rows)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["seed"]:
        print(json.dumps(seed(int(args[1]))), flush=True)
    elif args[:1] == ["read"]:
        print(json.dumps(read(args[1])), flush=True)
    else:
        print(bench_loading([int(n) for n in (args or ["1000000", "10000000"])]), flush=True)


if __name__ == "__main__":
    main()
