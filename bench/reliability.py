"""Does the app hold under concurrent traffic, spam, fuzzing and faults? One table per question.

    python -m bench.reliability [--clients 16] [--seconds 60] [--workers 4]
    .ci/with-services .venv/bin/python -m bench.reliability      # the same on PostgreSQL

A throwaway database (a SQLite file in a temporary folder; with ``DATABASE_URL`` that
PostgreSQL database, which must be a throwaway one) is migrated and seeded with a
small demo (300 articles, 20 readers; no model, so lists come from trending and
fresh). gunicorn serves the demo (``bench.reliability_settings``: no DEBUG, throttles
out of the way) while ``--clients`` threads, each a visitor with its own cookie, post
batches of 5 events (one batch in five is resent, as a retrying tracker does) and read
their recommendations for ``--seconds``. Then:

- ingest throughput: ``ingest`` of 20,000 events (profile updates queued to a worker,
  the worker's share, and inline as without a worker) against a bare ``bulk_create``
  of the same rows, in-process;
- load: requests, 5xx, p99 latency; events accepted (``created`` summed over the
  answers) against the rows stored, and resent events stored once;
- spam: one visitor posts 500 views of an item, five readers view another once (two
  items the load never touched); the trending job runs; where each lands;
- fuzz and faults: the suite's schemathesis test and fault tests, run here, with
  their outcome.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np

from bench.speed import table

ROOT = Path(__file__).resolve().parents[1]
FAULT_TESTS = [
    "tests/demo/test_db_outage.py",
    "tests/test_cache_outage.py",
    "tests/serving/test_model_store.py::test_readers_never_see_a_half_loaded_model_during_a_swap",
    "tests/serving/test_model_store.py::test_a_broken_artifact_keeps_serving_the_previous_model",
    "tests/serving/test_model_store.py::test_a_truncated_artifact_is_refused_and_the_old_model_keeps_serving",
]


class Client:
    """One visitor: a cookie jar, and the answers it got."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        self.statuses: list[int] = []
        self.latencies: list[float] = []
        self.accepted = self.duplicates = 0
        self.sent: set[str] = set()

    def call(self, path: str, body: dict | None = None) -> dict | None:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, headers={"Origin": self.base})
        if data is not None:
            request.add_header("Content-Type", "application/json")
        started = time.perf_counter()
        try:
            with self.opener.open(request, timeout=60) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
        except OSError:
            status, payload = 599, b""  # no answer at all counts as a server failure
        self.latencies.append(time.perf_counter() - started)
        self.statuses.append(status)
        try:
            return json.loads(payload) if payload else None
        except ValueError:
            return None


def _run_clients(base: str, items: list[int], clients: int, seconds: float) -> list[Client]:
    def visit(client: Client, seed: int) -> None:
        rng = np.random.default_rng(seed)
        client.call("/")  # the visitor cookie
        previous: list[dict] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if previous and rng.random() < 0.2:
                batch = previous  # a retry: every event already stored
            else:
                batch = [
                    {"event_id": uuid.uuid4().hex, "item": int(rng.choice(items)), "event_type": "view"}
                    for _ in range(5)
                ]
                client.sent.update(e["event_id"] for e in batch)
            answer = client.call("/api/recommender/events/", {"events": batch})
            if client.statuses[-1] in (200, 201) and answer:
                client.accepted += answer["created"]
                client.duplicates += answer["duplicates"]
            previous = batch
            client.call("/api/recommender/recommendations/?limit=10")

    pool = [Client(base) for _ in range(clients)]
    threads = [threading.Thread(target=visit, args=(c, n)) for n, c in enumerate(pool)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return pool


def _spam(base: str, items: list[int]) -> tuple[int | None, int | None]:
    """Trending ranks (1 = top) of an item one visitor viewed 500 times and one five readers viewed once.

    Both are items the load never touched: under a minute of load every other item has
    about as many readers as there are clients, which would hide the difference.
    """
    from recommender.tasks import compute_trending

    spammed, liked = items[0], items[1]
    spammer = Client(base)
    spammer.call("/")
    spammer.call("/api/recommender/events/", {"events": [{"item": spammed, "event_type": "view"}] * 500})
    for _ in range(5):
        reader = Client(base)
        reader.call("/")
        reader.call("/api/recommender/events/", {"events": [{"item": liked, "event_type": "view"}]})
    compute_trending()
    from recommender.serving.candidates import trending_candidates

    ranked = [c.item_id for c in trending_candidates(k=1000)]
    return tuple(ranked.index(pk) + 1 if pk in ranked else None for pk in (spammed, liked))


def _ingest_throughput(items: list[int], n: int = 20_000) -> list[list[object]]:
    """Events per second through ``ingest`` (batches of 500), each way it runs, and a bare ``bulk_create``.

    With a worker, ingest writes the events and queues the readers' profile updates
    (to Redis when ``TEST_REDIS_URL`` is set, else kombu's in-memory broker); the
    queued tasks are then run here, one after another as a worker would, to show
    what the worker must keep up with. Without one (eager, the demo) the update
    runs inside ingest. Each path has 200 readers of its own, new to the database.
    """
    from celery.signals import before_task_publish
    from django.utils import timezone

    from project.celery import app
    from recommender import tasks
    from recommender.models import Interaction
    from recommender.tracking.events import EventInput, ingest

    rng = np.random.default_rng(0)
    picks = [int(i) for i in rng.choice(items, size=n)]

    def timed_ingest(prefix: str) -> float:
        events = [
            EventInput(
                item_id=pk, event_type="view", visitor_id=f"{prefix}{k % 200}", event_id=f"{prefix}-{k}"
            )
            for k, pk in enumerate(picks)
        ]
        started = time.perf_counter()
        for start in range(0, n, 500):
            ingest(events[start : start + 500])
        return n / (time.perf_counter() - started)

    queued: list[tuple] = []

    def record(sender: str | None = None, body: tuple = (), **_: object) -> None:
        if sender == tasks.update_interests.name:
            queued.append(body[0])

    keys = ("CELERY_BROKER_URL", "CELERY_TASK_ALWAYS_EAGER")
    before = {key: app.conf.get(key) for key in keys}
    app.conf.update(
        CELERY_BROKER_URL=os.environ.get("TEST_REDIS_URL") or "memory://", CELERY_TASK_ALWAYS_EAGER=False
    )
    _new_broker_connections(app)
    before_task_publish.connect(record, weak=False)
    try:
        queued_rate = timed_ingest("queued")
    finally:
        before_task_publish.disconnect(record)
        app.control.purge()
        app.conf.update(**before)
        _new_broker_connections(app)
    started = time.perf_counter()
    for args in queued:
        tasks.update_interests.run(*args)
    worker_rate = n / (time.perf_counter() - started)
    inline_rate = timed_ingest("inline")
    Interaction.objects.filter(event_id__startswith="queued-").delete()
    Interaction.objects.filter(event_id__startswith="inline-").delete()
    now = timezone.now()
    rows = [
        Interaction(
            item_id=pk, event_type="view", visitor_id=f"load{k % 200}", event_id=f"bare-{k}", timestamp=now
        )
        for k, pk in enumerate(picks)
    ]
    started = time.perf_counter()
    Interaction.objects.bulk_create(rows, batch_size=500)
    bare = n / (time.perf_counter() - started)
    Interaction.objects.filter(event_id__startswith="bare-").delete()
    return [
        ["ingest(), profile updates queued to a worker", queued_rate, f"{queued_rate / bare:.0%}"],
        [f"the worker: those {len(queued)} profile-update tasks", worker_rate, f"{worker_rate / bare:.0%}"],
        ["ingest(), profile updates inline (no worker: eager)", inline_rate, f"{inline_rate / bare:.0%}"],
        ["bare Interaction.objects.bulk_create", bare, "100%"],
    ]


def _new_broker_connections(app: object) -> None:
    """Forget pooled broker connections so a changed broker URL takes effect (as tests/integration does)."""
    from kombu import pools

    pools.reset()
    app._after_fork()


def _pytest(paths: list[str]) -> tuple[dict[str, str], tuple[int, int]]:
    """Outcome of each test in ``paths`` (run as the suite runs them, on this database engine),
    and the hypothesis examples they ran: (passing, failing)."""
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:randomly", "--hypothesis-show-statistics",
         *paths],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
        env={k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "SQLITE_PATH")},
    )  # fmt: skip
    outcomes = {}
    for line in out.stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("PASSED", "FAILED", "ERROR", "SKIPPED") and rest.startswith("tests/"):
            outcomes[rest.split(" - ")[0]] = word
    examples = re.findall(r"- (\d+) passing, (\d+) failing", out.stdout)
    return outcomes, (sum(int(p) for p, _ in examples), sum(int(f) for _, f in examples))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench-reliability-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.reliability_settings"
    os.environ["DEMO_VAR_DIR"] = str(tmp / "var")
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        os.environ.pop(name, None)
    engine = "PostgreSQL" if os.environ.get("DATABASE_URL") else "SQLite (WAL, IMMEDIATE)"
    if not os.environ.get("DATABASE_URL"):
        os.environ["SQLITE_PATH"] = str(tmp / "db.sqlite3")
    import django

    django.setup()
    from django.core.management import call_command

    from recommender.models import Interaction, Item

    call_command("migrate", verbosity=0)
    call_command("recommender_demo_seed", "--articles", "300", "--users", "20", "--if-empty", verbosity=0)
    items = list(Item.objects.active().values_list("pk", flat=True))
    ingest_rows = _ingest_throughput(items)
    before = Interaction.objects.count()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "project.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(args.workers), "--log-level", "warning", "--timeout", "120"],
        cwd=ROOT, env=os.environ.copy(),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(base + "/login/", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        started = time.monotonic()
        pool = _run_clients(base, items[2:], args.clients, args.seconds)  # items[:2]: the spam check
        held = time.monotonic() - started
        stored = Interaction.objects.count() - before
        spam_rank, readers_rank = _spam(base, items)
    finally:
        server.terminate()
        server.wait(timeout=30)

    statuses = [s for c in pool for s in c.statuses]
    latencies = np.array([t for c in pool for t in c.latencies]) * 1000
    sent = set().union(*(c.sent for c in pool))
    stored_sent = Interaction.objects.filter(event_id__in=list(sent)).count()
    accepted = sum(c.accepted for c in pool)
    print(f"\n{engine}, gunicorn {args.workers} workers, {args.clients} clients for {held:.0f} s\n")
    print(
        table(
            "Load",
            [
                "requests",
                "5xx",
                "429",
                "p50 ms",
                "p99 ms",
                "events accepted",
                "rows stored",
                "resent, stored once",
            ],
            [
                [
                    len(statuses),
                    sum(s >= 500 for s in statuses),
                    statuses.count(429),
                    float(np.percentile(latencies, 50)),
                    float(np.percentile(latencies, 99)),
                    accepted,
                    stored,
                    f"{sum(c.duplicates for c in pool):,} resent; {stored_sent:,}/{len(sent):,} ids stored",
                ]
            ],
        )
    )
    print(
        table(
            "Ingest throughput, in-process: 20,000 events in batches of 500",
            ["path", "events/s", "vs bare"],
            ingest_rows,
        )
    )
    print(
        table(
            "Spam: trending ranks after one visitor's 500 views of item A and five readers' views of item B",
            ["item A (500 views, 1 visitor)", "item B (5 readers)"],
            [[spam_rank or "-", readers_rank or "-"]],
        )
    )
    fuzz, (cases, failing) = _pytest(["tests/api/test_fuzz.py"])
    faults, _ = _pytest(FAULT_TESTS)
    fuzz_outcome = f"{list(fuzz.values()).count('PASSED')} of {len(fuzz)} operations passed"
    rows = [["schemathesis, every operation", fuzz_outcome]]
    rows += [[name.split("::")[-1].removeprefix("tests/"), outcome] for name, outcome in faults.items()]
    print(table("Fuzzing and faults (the suite's tests, run here)", ["check", "outcome"], rows))
    request_path = ingest_rows[0]
    summary = [
        ["load held", f"{args.clients} clients, {held:.0f} s, {len(statuses):,} requests, p99 "
         f"{float(np.percentile(latencies, 99)):.0f} ms"],
        ["responses >= 500", f"{sum(s >= 500 for s in statuses):,}"],
        ["events accepted vs stored", f"{accepted:,} accepted, {stored:,} stored"],
        ["resent events (same event_id)", f"{sum(c.duplicates for c in pool):,} resent; "
         f"{stored_sent:,} of {len(sent):,} ids stored, each once"],
        ["ingest vs bare bulk_create", f"{request_path[2]} ({request_path[0]})"],
        ["spam: 500 views by 1 visitor vs 5 readers",
         f"trending rank {spam_rank or '-'} vs {readers_rank or '-'} "
         f"({'below' if spam_rank and readers_rank and spam_rank > readers_rank else 'NOT below'})"],
        ["fuzz cases (schemathesis)",
         f"{cases:,} run over {len(fuzz)} operations, {failing} failing; {fuzz_outcome}"],
        *[[f"fault: {name.split('::')[-1]}", outcome] for name, outcome in faults.items()],
    ]  # fmt: skip
    print(table(f"Reliability summary ({engine})", ["check", "result"], summary))


if __name__ == "__main__":
    main()
