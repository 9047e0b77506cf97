"""Serving latency of the recommender API next to a bare DRF endpoint: what the recommender adds per request.

    python -m bench.serving [--items 10000,100000] [--runs 200] [--users 200]

Why: ``bench.speed`` times the model alone (``Recommender.recommend`` against a bare
matmul + top-k). A site pays more per request than the model: the history and rule
queries, candidate filtering, blending, diversity, the host objects, the
``RecommendationLog`` write, the cache, DRF and the middleware. This benchmark
times that whole serving path in-process with ``django.test.Client`` and puts it
next to a bare DRF ``APIView`` returning ``{"ok": true}`` through the same
middleware, URL resolver and authentication, permission and throttle classes, so
the ratio to the bare endpoint is the cost of the recommender, not of Django. The
same pipeline called as a Python function separates the HTTP/DRF cost from it.

Setup, all in a temporary directory deleted at exit (nothing is written to the
repository): a throwaway SQLite database (``DATABASE_URL``, ``REDIS_URL`` and
``CELERY_BROKER_URL`` are ignored: locmem cache, eager tasks); a catalogue of demo
``Article`` rows and their ``Item`` rows with random unit "embeddings" clustered by
topic (no sentence-transformer is loaded); readers with about 50 events each; and a
real model trained through ``recommender.training.runs.train_model`` for a few
epochs and activated. The catalogue then grows to each ``--items`` size with items
published after training, which the model scores from their embedding alone (how a
site adds items between trainings).

Each request rotates over the readers, logged in with their own client. "Uncached"
bumps the reader's cache generation before each call (untimed, what feedback or an
opt-out does), so the pipeline runs in full and stores its list; "cached" repeats
a request already served, so it is a cache hit. Every measured response is checked
to be a 200 (the throttle rates are raised for the run) and, for the lists, to be
fresh or cached as labelled. Uncached lists still find the ranking rows of items
served before in the per-process row cache; one row empties it before each call.
A demo-like page with the three template-tag blocks is timed against the same page
without them (the blocks' lists cached), for what the blocks add to a page. Timings
on a shared machine move from run to run: compare the rows of one run, and read the
CPU-time column, which moves less. Over HTTP the rows are measured in interleaved
rounds and the median round is reported, so a slow spell does not land on one row.

``--memory`` measures instead what each web process holds: a synthetic model of
``--memory-items`` items (1M) with 384-dim content is stored and activated in a throwaway
SQLite demo, then a gunicorn with ``--workers`` (4) sync workers serves it: each worker
loads it through ``model_store`` on its first request (the first one alone, the others
once it serves) and recommends; RSS, PSS and USS of each come from
``/proc/<pid>/smaps_rollup`` once all of them serve. PSS splits shared pages between the
processes that map them, so the sum of PSS is the memory they take together, and its growth
past the first worker is what each extra worker adds. Then ``--new-items`` items are
embedded and ``--reembed`` trained items re-embedded in the database, each worker takes
them in through model_store's check, and the same figures are read again.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bench.speed import table

BARE_PATH = "/bench/bare/"
MEMORY_PATH = "/bench/memory/"
API = "/api/recommender"
EMBEDDER_NAME = "bench-vectors"  # RECOMMENDER["EMBEDDER"] for the run: a name only, never loaded
RATE = "1000000/min"  # throttle rates for the run: every measured request must be a 200, not a 429
DIM = 64
TOPICS = 20
SPREAD = 0.5  # noise around a topic's centre, relative to the centre's scale
EVENT_TYPES = ("view", "click", "read", "like", "share")
EVENT_P = (0.6, 0.15, 0.15, 0.07, 0.03)


# -- the bench-only URLconf (ROOT_URLCONF = "bench.serving" during the run) --------------------


@functools.cache
def _bench_urlpatterns() -> list:
    """The bare endpoint beside the whole demo site; built on first use, after django.setup()."""
    from django.urls import include, path
    from rest_framework.request import Request
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from recommender.api.views import RecommendationsView

    class BareView(APIView):
        """``{"ok": true}`` behind the same DRF policies as the recommendations view."""

        authentication_classes = RecommendationsView.authentication_classes
        permission_classes = RecommendationsView.permission_classes
        throttle_classes = RecommendationsView.throttle_classes
        renderer_classes = RecommendationsView.renderer_classes
        parser_classes = RecommendationsView.parser_classes
        content_negotiation_class = RecommendationsView.content_negotiation_class

        def get(self, request: Request) -> Response:
            return Response({"ok": True})

    return [
        path(BARE_PATH.strip("/") + "/", BareView.as_view()),
        path("bench/page/<int:item_id>/<str:variant>/", page_view),
        path(MEMORY_PATH.strip("/") + "/", memory_view),
        path("", include("project.urls")),
    ]


PAGE = """{%% load recommender %%}<!doctype html><html><head><title>{{ item.title }}</title></head><body>
<main><h1>{{ item.title }}</h1><p>{{ item.text }}</p></main>%s</body></html>"""
BLOCKS = """<aside>{% recommended_for_you limit=6 placement="home" %}{% similar_items item limit=4 %}
{% trending limit=5 %}</aside>"""


def page_view(request: Any, item_id: int, variant: str) -> Any:
    """An article-like page, with the three recommendation blocks ("blocks") or without ("plain").

    The difference between the two is what the blocks add to a page: the tags, their
    domain functions (served from the cache when warm) and their templates.
    """
    from django.http import HttpResponse
    from django.shortcuts import get_object_or_404
    from django.template import engines

    from recommender.models import Item

    item = get_object_or_404(Item, pk=item_id)
    source = PAGE % (BLOCKS if variant == "blocks" else "")
    html = engines["django"].from_string(source).render({"item": item}, request)
    return HttpResponse(html)


def __getattr__(name: str) -> Any:
    """``urlpatterns`` is made lazily, so importing this module needs no configured Django."""
    if name == "urlpatterns":
        return _bench_urlpatterns()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- setup --------------------------------------------------------------------------------------


def setup_django(tmp: Path) -> None:
    """``bench.serving_settings`` (the demo's, without limits) on a throwaway SQLite file in ``tmp``."""
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        os.environ.pop(name, None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.serving_settings"
    os.environ["SQLITE_PATH"] = str(tmp / "serving.sqlite3")
    os.environ["DEMO_VAR_DIR"] = str(tmp / "var")  # model artifacts (MEDIA_ROOT) go there too
    os.environ["DJANGO_DEBUG"] = "0"  # no query log, like production
    os.environ.setdefault("RECOMMENDER_LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from recommender.api.throttling import RecommenderAnonThrottle, RecommenderUserThrottle

    for throttle in (RecommenderAnonThrottle, RecommenderUserThrottle):
        if throttle().get_rate() != RATE:
            raise SystemExit(f"could not raise the throttle rate of {throttle.__name__}")


class Catalogue:
    """Makes items (host Article + Item + topic tag) with explicit ids, and the readers' events."""

    def __init__(self, seed: int) -> None:
        from django.contrib.contenttypes.models import ContentType

        from project.news.models import Article
        from recommender.models import Tag

        self.rng = np.random.default_rng(seed)
        self.centers = self.rng.normal(size=(TOPICS, DIM))
        self.content_type = ContentType.objects.get_for_model(Article)
        Tag.objects.bulk_create([Tag(name=f"Topic {t}", slug=f"topic-{t}") for t in range(TOPICS)])
        self.tag_ids = dict(Tag.objects.filter(slug__startswith="topic-").values_list("slug", "pk"))
        self.count = 0

    def vectors(self, topics: np.ndarray) -> np.ndarray:
        v = self.centers[topics] + SPREAD * self.rng.normal(size=(len(topics), DIM))
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype("<f4")

    def grow(self, to: int, published: Callable[[int], Any], chunk: int = 5000) -> None:
        """Items ``count + 1 .. to`` (pk = Article pk), topic ``pk % TOPICS``, embedded now."""
        from django.utils import timezone

        from project.news.models import Article
        from recommender.models import Item, ItemTag

        while self.count < to:
            pks = np.arange(self.count + 1, min(to, self.count + chunk) + 1)
            topics = pks % TOPICS
            vectors = self.vectors(topics)
            now = timezone.now()
            titles = [f"Topic {t} story {pk}" for pk, t in zip(pks, topics, strict=True)]
            dates = [published(int(pk)) for pk in pks]
            Article.objects.bulk_create(
                Article(pk=int(pk), title=title, slug=f"bench-{pk}", body=title, published_at=date)
                for pk, title, date in zip(pks, titles, dates, strict=True)
            )
            Item.objects.bulk_create(
                Item(
                    pk=int(pk),
                    content_type=self.content_type,
                    object_id=str(pk),
                    title=title,
                    text=title,
                    published_at=date,
                    is_active=True,
                    embedding=vector.tobytes(),
                    embedding_dim=DIM,
                    embedding_model=EMBEDDER_NAME,
                    embedded_at=now,
                )
                for pk, title, date, vector in zip(pks, titles, dates, vectors, strict=True)
            )
            ItemTag.objects.bulk_create(
                ItemTag(item_id=int(pk), tag_id=self.tag_ids[f"topic-{t}"])
                for pk, t in zip(pks, topics, strict=True)
            )
            self.count = int(pks[-1])

    def readers(self, n_users: int, events_per_user: int) -> list[int]:
        """Readers of one to three favourite topics, each with ``events_per_user`` events in the last week."""
        from django.contrib.auth import get_user_model
        from django.utils import timezone

        from recommender.models import Interaction

        User = get_user_model()
        User.objects.bulk_create(  # "!": an unusable password (no hashing); force_login needs none
            User(username=f"bench{n:05d}", password="!") for n in range(n_users)
        )
        users = list(
            User.objects.filter(username__startswith="bench").order_by("pk").values_list("pk", flat=True)
        )
        pks = np.arange(1, self.count + 1)
        by_topic = [pks[pks % TOPICS == t] for t in range(TOPICS)]
        popularity = [1.0 / np.arange(1, len(ids) + 1) ** 0.8 for ids in by_topic]  # a few hits per topic
        popularity = [p / p.sum() for p in popularity]
        now, week = timezone.now(), 7 * 86400.0
        rows = []
        for user in users:
            favourites = self.rng.choice(TOPICS, size=int(self.rng.integers(1, 4)), replace=False)
            offsets = np.sort(self.rng.uniform(60.0, week, size=events_per_user))[::-1]
            for n, offset in enumerate(offsets):
                topic = self.rng.choice(favourites) if self.rng.random() < 0.85 else self.rng.integers(TOPICS)
                item = int(self.rng.choice(by_topic[topic], p=popularity[topic]))
                kind = str(self.rng.choice(EVENT_TYPES, p=EVENT_P))
                rows.append(
                    Interaction(
                        event_id=f"bench-{user}-{n}",
                        user_id=user,
                        item_id=item,
                        event_type=kind,
                        value=round(float(self.rng.uniform(0.2, 1.0)), 2) if kind == "read" else None,
                        timestamp=now - timedelta(seconds=float(offset)),
                    )
                )
        Interaction.objects.bulk_create(rows, batch_size=5000)
        return users


def build(args: argparse.Namespace, trained_items: int) -> tuple[Catalogue, list[int], Any, dict[str, float]]:
    """Migrate, make the catalogue and readers, train and activate a model; seconds per step."""
    from django.core.management import call_command
    from django.utils import timezone

    from recommender.identity import Identity
    from recommender.serving import model_store
    from recommender.tracking import interests
    from recommender.training import maintenance, runs

    seconds: dict[str, float] = {}
    start = time.perf_counter()
    call_command("migrate", verbosity=0)
    seconds["migrate"] = time.perf_counter() - start

    start = time.perf_counter()
    catalogue = Catalogue(args.seed)
    now = timezone.now()
    catalogue.grow(trained_items, lambda pk: now - timedelta(days=8 + 22 * (pk * 7919 % 1000) / 1000))
    users = catalogue.readers(args.users, args.events)
    maintenance.compute_trending()  # Item.trending_score, as the periodic task keeps it
    for user in users:
        interests.recompute_profile(Identity(user_id=user))
    seconds["catalogue"] = time.perf_counter() - start

    start = time.perf_counter()
    config = {"epochs": args.epochs, "patience": args.epochs, "warmup": 20, "seed": args.seed}
    version = runs.train_model(config=config, progress=False, activate=True)
    seconds["training"] = time.perf_counter() - start
    model_store.invalidate()
    if model_store.get_active() is None:
        raise SystemExit(f"model {version.name} trained ({version.status}) but not served")
    return catalogue, users, version, seconds


# -- timing -------------------------------------------------------------------------------------


def measure(
    call: Callable[[int], Any],
    runs: int,
    warmup: int,
    before: Callable[[int], object] | None = None,
    check: Callable[[Any], None] | None = None,
) -> tuple[float, float, float, list[Any]]:
    """Wall p50 and p99 and CPU p50 (ms) of ``call(n)`` after ``warmup`` calls; ``before(n)`` is untimed.

    Every result, warm-up included, goes through ``check``; the timed results are returned.
    """
    wall, cpu, results = np.empty(runs), np.empty(runs), []
    for n in range(warmup + runs):
        if before is not None:
            before(n)
        start, start_cpu = time.perf_counter(), time.process_time()
        result = call(n)
        elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
        if check is not None:
            check(result)
        if n >= warmup:
            wall[n - warmup], cpu[n - warmup] = elapsed, elapsed_cpu
            results.append(result)
    p50, p99 = np.percentile(wall * 1000, [50, 99])
    return float(p50), float(p99), float(np.median(cpu) * 1000), results


def ok(response: Any) -> None:
    """Stop the benchmark on any response but a 200: timing errors or 429s measures nothing."""
    if response.status_code != 200:
        body = response.content[:300].decode(errors="replace")
        raise SystemExit(f"GET {response.request['PATH_INFO']} answered {response.status_code}: {body}")


def nonempty(recs: Any) -> None:
    if not recs.items:
        raise SystemExit("recommend() served an empty list")


def bench_size(
    n_items: int,
    trained_items: int,
    users: list[int],
    clients: list[Any],
    similar_items: list[int],
    args: argparse.Namespace,
) -> str:
    """One table: every request at this catalogue size, beside the bare endpoint."""
    from recommender.caching import bump_generation
    from recommender.identity import Identity
    from recommender.serving.candidates import row_cache
    from recommender.serving.recommend import recommend

    identities = [Identity(user_id=u) for u in users]
    n_users = len(users)
    runs, warmup = args.runs, args.warmup

    def get(url: Callable[[int], str]) -> Callable[[int], Any]:
        return lambda n: clients[n % n_users].get(url(n % n_users), HTTP_ACCEPT="application/json")

    def bump(n: int) -> None:
        bump_generation(identities[n % n_users])

    recs_url = f"{API}/recommendations/?limit=10"
    trending_url = f"{API}/trending/?limit=10"
    requests = {
        "recommendations": get(lambda u: recs_url),
        "trending": get(lambda u: trending_url),
        "similar": get(lambda u: f"{API}/items/{similar_items[u]}/similar/?limit=10"),
    }
    labels = {
        "recommendations": "GET recommendations/?limit=10",
        "trending": "GET trending/?limit=10",
        "similar": "GET items/<id>/similar/?limit=10",
    }
    rows: list[tuple[str, tuple[float, float, float]]] = []
    bare = measure(get(lambda u: BARE_PATH), runs, warmup, check=ok)
    rows.append(('bare APIView {"ok": true}', bare[:3]))

    fresh: dict[str, list[Any]] = {}
    for kind, call in requests.items():
        *stats, fresh[kind] = measure(call, runs, warmup, before=bump, check=ok)
        rows.append((f"{labels[kind]}, uncached", tuple(stats)))
    direct = measure(lambda n: recommend(identities[n % n_users], limit=10), runs, warmup, bump, nonempty)
    rows.append(("recommend(identity, limit=10) in Python, uncached", direct[:3]))
    no_cache = measure(
        lambda n: recommend(identities[n % n_users], limit=10, use_cache=False), runs, warmup, check=nonempty
    )
    rows.append(("recommend(..., use_cache=False) in Python", no_cache[:3]))
    cold_rows = measure(
        lambda n: recommend(identities[n % n_users], limit=10, use_cache=False),
        runs, warmup, before=lambda n: row_cache.clear(), check=nonempty,
    )  # fmt: skip
    rows.append(("  the same, ranking rows re-read (row cache emptied)", cold_rows[:3]))

    served: dict[str, dict[int, str]] = {}  # the list each reader was served, to check the hits
    for kind, call in requests.items():
        served[kind] = {}
        for u in range(n_users):
            response = call(u)
            ok(response)
            served[kind][u] = response.json()["recomm_id"]
    for kind, call in requests.items():
        *stats, results = measure(call, runs, 0, check=ok)
        rows.append((f"{labels[kind]}, cached", tuple(stats)))
        for n, response in enumerate(results):
            if response.json()["recomm_id"] != served[kind][n % n_users]:
                raise SystemExit(f"{labels[kind]}: a 'cached' request was not served from the cache")

    # A page with the three blocks against the same page without them, the blocks' lists cached.
    pages = {
        variant: get(lambda u, variant=variant: f"/bench/page/{similar_items[u]}/{variant}/")
        for variant in ("plain", "blocks")
    }
    for u in range(n_users):
        ok(pages["blocks"](u))  # fills the cache: every measured page is a warm one
    for variant, label in (("plain", "page without blocks"), ("blocks", "page with 3 blocks, warm cache")):
        *stats, results = measure(pages[variant], runs, 0, check=ok)
        rows.append((label, tuple(stats)))
        if variant == "blocks" and not all(
            r.content.count(b"data-recommender-block=") == 3 and b"block--fallback" not in r.content
            for r in results
        ):
            raise SystemExit("a page with blocks did not render its three blocks (or fell back)")

    # The uncached lists were computed, not cached: each has its own recomm_id (and log row).
    for kind, results in fresh.items():
        ids = [r.json()["recomm_id"] for r in results]
        if len(set(ids)) != len(ids):
            raise SystemExit(f"{labels[kind]}: an 'uncached' request was served from the cache")
    for recs in (direct[3], no_cache[3], cold_rows[3]):
        if len({r.recomm_id for r in recs}) != len(recs):
            raise SystemExit("recommend(): an 'uncached' call was served from the cache")

    base = bare[0]
    body = [(label, p50, p99, cpu, f"{p50 / base:.1f}x") for label, (p50, p99, cpu) in rows]
    timings = dict(rows)
    plain, blocks = timings["page without blocks"], timings["page with 3 blocks, warm cache"]
    body.append(
        ("the 3 blocks add to the page", blocks[0] - plain[0], blocks[1] - plain[1], blocks[2] - plain[2], "")
    )
    title = (
        f"Serving latency, {n_items:,} items ({trained_items:,} trained + {n_items - trained_items:,} "
        f"content-only), {n_users} logged-in readers in rotation, {runs} runs after {warmup} warm-up "
        f"(in-process django.test.Client; uncached = the reader's cache generation bumped before each call)"
    )
    text = table(title, ("request", "p50 ms", "p99 ms", "cpu p50 ms", "p50 / bare p50"), body)
    lists = [r.json() for r in fresh["recommendations"]]
    reasons = Counter(i["reason"] for data in lists for i in data["items"])
    new = sum(i["id"] > trained_items for data in lists for i in data["items"])
    total = sum(reasons.values())
    versions = {data["model_version"] for data in lists}
    mix = ", ".join(f"{reason} {count / total:.0%}" for reason, count in reasons.most_common())
    return (
        text + f"uncached recommendations: {total / len(lists):.1f} items per list, {mix}; "
        f"{new / max(total, 1):.0%} of served items content-only (published after training); "
        f"model {', '.join(sorted(str(v) for v in versions))}\n"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serving", description=__doc__.split("\n")[0])
    parser.add_argument("--items", default="10000,100000", help="catalogue sizes, comma-separated")
    parser.add_argument("--runs", type=int, default=200, help="timed requests per row")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests before each row")
    parser.add_argument("--users", type=int, default=200, help="readers with events (requests rotate)")
    parser.add_argument("--events", type=int, default=50, help="events per reader")
    parser.add_argument(
        "--trained-items", type=int, default=2000, help="items the model is trained on (capped by --items)"
    )
    parser.add_argument(
        "--epochs", type=int, default=3, help="training epochs (default TrainConfig otherwise)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--http", action="store_true", help="also measure through gunicorn + wrk")
    parser.add_argument("--http-workers", type=int, default=2)
    parser.add_argument("--http-connections", type=int, default=4)
    parser.add_argument("--http-seconds", type=int, default=10)
    parser.add_argument("--http-rounds", type=int, default=3, help="interleaved rounds; the median is shown")
    parser.add_argument(
        "--memory", action="store_true", help="instead: RSS/PSS/USS of --workers processes serving one model"
    )
    parser.add_argument("--workers", type=int, default=4, help="serving processes of --memory")
    parser.add_argument("--memory-items", type=int, default=1_000_000, help="items of --memory's model")
    parser.add_argument("--content-dim", type=int, default=384, help="content dimensions of --memory's model")
    parser.add_argument("--new-items", type=int, default=1000, help="items --memory adds after loading")
    parser.add_argument("--reembed", type=int, default=100, help="trained items --memory re-embeds")
    args = parser.parse_args(argv)
    if args.memory:
        if args.workers < 2:
            parser.error("--memory needs at least two workers")
        with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
            setup_django(Path(tmp))
            print(bench_memory(args, Path(tmp)), flush=True)
        return
    sizes = sorted({int(s) for s in args.items.split(",") if s})
    if not sizes or args.runs < 1 or args.users < 1 or args.events < 3:
        parser.error("need at least one size, one run, one user and three events per user")
    trained_items = min(args.trained_items, sizes[0])

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        setup_django(Path(tmp))
        try:
            run(args, sizes, trained_items)
        finally:
            from django.db import connections

            connections.close_all()


def run(args: argparse.Namespace, sizes: list[int], trained_items: int) -> None:
    import django
    import torch
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils import timezone

    from recommender.caching import bump_site_generation
    from recommender.serving import model_store

    catalogue, users, version, seconds = build(args, trained_items)
    setup = sum(seconds.values())
    print(
        f"setup {setup:.1f} s: migrate {seconds['migrate']:.1f} s, {trained_items:,} items + {len(users)} "
        f"readers x {args.events} events {seconds['catalogue']:.1f} s, training {seconds['training']:.1f} s "
        f"({version.name}, {version.data_summary.get('epochs_run')} epochs, "
        f"val NDCG@10 {version.metrics.get('val_ndcg@10') or float('nan'):.3f}); SQLite in a temp dir, "
        f"locmem cache, Django {django.get_version()}, torch {torch.__version__} "
        f"(torch threads: {torch.get_num_threads()})\n",
        flush=True,
    )
    clients = []
    for user in get_user_model().objects.filter(pk__in=users).order_by("pk"):
        client = Client()
        client.force_login(user)
        clients.append(client)
    similar_items = [int(pk) for pk in catalogue.rng.integers(1, trained_items + 1, size=len(users))]

    for size in sizes:
        start = time.perf_counter()
        now = timezone.now()
        catalogue.grow(size, lambda pk, now=now: now - timedelta(microseconds=pk))
        bump_site_generation()  # what an item's save does: lists served before the growth are stale
        model_store.invalidate()
        loaded = model_store.get_active()  # adds the new items to the model from their embeddings
        known = len(loaded.recommender.item_ids) if loaded else 0
        if known != size:
            raise SystemExit(f"the served model knows {known:,} items, expected {size:,}")
        grown = time.perf_counter() - start
        if size > trained_items:
            print(f"grew the catalogue to {size:,} items (model included) in {grown:.1f} s", flush=True)
        print(bench_size(size, trained_items, users, clients, similar_items, args), flush=True)
    if args.http:
        print(bench_http(clients[0].cookies["sessionid"].value, sizes[-1], args), flush=True)


# -- over HTTP: gunicorn + wrk -----------------------------------------------------------------------


def _wrk(
    url: str, cookie: str, seconds: int, connections: int, strict: bool = True
) -> tuple[float, float, float]:
    """p50 ms, p99 ms and requests/s of one wrk run; stops on any non-2xx answer or socket error.

    Not ``strict`` (warm-up), a run with errors (a worker still loading the model makes wrk
    time out) counts as infinitely slow instead.
    """
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Cookie: sessionid={cookie}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        if not strict:
            return float("inf"), float("inf"), 0.0
        raise SystemExit(f"wrk {url}: errors\n{out}")

    def ms(label: str) -> float:
        value, unit = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    return ms("50"), ms("99"), rate


def bench_http(cookie: str, n_items: int, args: argparse.Namespace) -> str:
    """Warm-cache GET recommendations/ served by gunicorn under wrk, next to the bare endpoint."""
    if shutil.which("wrk") is None:
        return "HTTP: skipped, wrk is not installed (Debian package wrk)\n"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "project.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(args.http_workers), "--log-level", "warning"],
        env=os.environ.copy(),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        import urllib.request

        for _ in range(100):
            try:
                urllib.request.urlopen(base + BARE_PATH, timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        rows = []
        paths = {
            'bare APIView {"ok": true}': BARE_PATH,
            "GET recommendations/?limit=10, warm cache": f"{API}/recommendations/?limit=10",
            "GET trending/?limit=10, warm cache": f"{API}/trending/?limit=10",
        }
        for path in paths.values():
            # Warm-up: every gunicorn worker loads the model (and the content-only items) on its
            # first request, which takes seconds at 100k items; wait until no request is slow.
            calm = 0
            for _ in range(20):
                p99 = _wrk(base + path, cookie, 3, args.http_connections, strict=False)[1]
                calm = calm + 1 if p99 < 200 else 0
                if calm == 2:
                    break
        runs: dict[str, list[tuple[float, float, float]]] = {label: [] for label in paths}
        for _ in range(args.http_rounds):  # interleaved: drift on a shared machine hits every row alike
            for label, path in paths.items():
                runs[label].append(_wrk(base + path, cookie, args.http_seconds, args.http_connections))
        results = {label: tuple(np.median(np.array(r), axis=0)) for label, r in runs.items()}
        bare = results['bare APIView {"ok": true}']
        for label, (p50, p99, rate) in results.items():
            rows.append(
                (
                    label,
                    f"{p50:.2f}",
                    f"{p99:.2f}",
                    f"{rate:,.0f}",
                    f"{p50 / bare[0]:.2f}x",
                    f"{p99 / bare[1]:.2f}x",
                )
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    title = (
        f"Over HTTP: gunicorn ({args.http_workers} sync workers) on 127.0.0.1, "
        f"wrk -t1 -c{args.http_connections} for {args.http_seconds} s per row and round, "
        f"median of {args.http_rounds} interleaved rounds, after warm-up (two 3-s runs with p99 < 200 ms), "
        f"one logged-in reader, {n_items:,} items"
    )
    return table(title, ("request", "p50 ms", "p99 ms", "req/s", "p50 / bare", "p99 / bare"), rows)


# -- memory: several serving processes holding one model ------------------------------------------


def smaps(pid: int) -> dict[str, float]:
    """RSS, PSS and USS (private clean + dirty) of a process, in MB, from /proc/<pid>/smaps_rollup."""
    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    kb = {k: int(v) for k, v in re.findall(r"^(\w+):\s+(\d+) kB", text, re.M)}
    return {
        "rss": kb["Rss"] / 1024,
        "pss": kb["Pss"] / 1024,
        "uss": (kb["Private_Clean"] + kb["Private_Dirty"]) / 1024,
    }


def synthetic_model(n_items: int, content_dim: int, seed: int) -> Any:
    """An untrained model of n_items items (ids "1".."n", every one trained) with random unit content.

    Memory depends on the shapes only, so no training: a trained 1M-item model takes an hour here.
    """
    import torch

    from recommender.ml.inference import Recommender
    from recommender.ml.model import Seq2SeqConfig, Seq2SeqRecommender

    torch.manual_seed(seed)
    model = Seq2SeqRecommender(Seq2SeqConfig(n_items=n_items + 1, content_dim=content_dim))
    with torch.no_grad():
        content = model.items.content
        for part in content[1:].split(65536):
            part.normal_()
            part /= part.norm(dim=1, keepdim=True)
        model.items.trained[1:] = True
    return Recommender(model, [str(pk) for pk in range(1, n_items + 1)])


def bench_memory(args: argparse.Namespace, tmp: Path) -> str:
    """RSS, PSS and USS of each worker of a gunicorn serving the active model, before and after new items.

    Each worker loads it on its first request; then --new-items items are embedded and
    --reembed trained items re-embedded in the database, and every worker takes them in
    as model_store's periodic check does. The same steps run first with one worker:
    what the others add is measured against it. A first unmeasured run fills the host's
    artifact cache (the item matrix and index files), so both start from the state a host
    is in after the first load of a version.
    """
    import gc

    from django.core.management import call_command

    from recommender.models import ModelVersion
    from recommender.training import artifacts, model_registry

    call_command("migrate", verbosity=0)
    start = time.perf_counter()
    recommender = synthetic_model(args.memory_items, args.content_dim, args.seed)
    name, checksum = artifacts.store_artifact("memory", recommender)
    del recommender
    gc.collect()
    version = ModelVersion.objects.create(
        name="memory", status=ModelVersion.Status.SUCCEEDED, artifact_name=name, checksum=checksum
    )
    model_registry.activate(version)
    size = artifacts.artifact_storage().size(f"{name}/model.safetensors")
    os.sync()  # written pages are clean: shared file pages then count as shared, not private
    built = time.perf_counter() - start
    rng = np.random.default_rng(args.seed)
    _serve(args, tmp, 1, rng)  # fills the host's artifact cache, as the first load after a release does
    alone = _serve(args, tmp, 1, rng)[0]  # the same steps with one worker: what extra workers add to
    many = _serve(args, tmp, args.workers, rng)
    rows = [
        (
            n + 1,
            round(w["load"]["rss"]),
            round(w["load"]["pss"]),
            round(w["load"]["uss"]),
            round(w["load"]["uss"] - w["uss_before"]),
            w["load_s"],
            round(w["new"]["rss"]),
            round(w["new"]["pss"]),
            round(w["new"]["uss"] - w["load"]["uss"]),
            w["add_s"],
        )
        for n, w in enumerate(many)
    ]
    mb = size / 2**20

    def added(state: str) -> str:
        extra = (sum(w[state]["pss"] for w in many) - alone[state]["pss"]) / (len(many) - 1)
        return f"{extra:,.0f} MB = {100 * extra / mb:.0f} % of the model's size"

    title = (
        f"Memory of a gunicorn with {args.workers} sync workers serving one model (each loads it through "
        f"model_store on its first request and recommends once), {args.memory_items:,} items x "
        f"{args.content_dim}-dim content, model.safetensors {mb:,.0f} MB (synthetic, every item trained; "
        f"stored and activated in {built:.0f} s); then {args.new_items:,} new items embedded and "
        f"{args.reembed} trained items re-embedded in the database, taken in by each worker's model check. "
        "MB from /proc/<pid>/smaps_rollup; USS = private clean + dirty; 'model USS' = USS after loading "
        "- before; 'USS added' = USS after the new items - after loading"
    )
    summary = (
        f"added per extra worker (sum of the {len(many)} workers' PSS - PSS of one worker that went "
        f"through the same steps alone ({alone['load']['pss']:,.0f} MB loaded, {alone['new']['pss']:,.0f} MB "
        f"with the new items), / {len(many) - 1}): after loading {added('load')}; after the new items "
        f"{added('new')}\n"
    )
    header = ("worker", "RSS MB", "PSS MB", "USS MB", "model USS MB", "load s", "RSS MB, new items",
              "PSS MB, new items", "USS added MB", "add s")  # fmt: skip
    return table(title, header, rows) + summary


def _serve(args: argparse.Namespace, tmp: Path, workers: int, rng: np.random.Generator) -> list[dict]:
    """A gunicorn of `workers` workers: each loads the active model, then takes in new items; smaps of each.

    The first worker loads alone (on a first run it fills the host's cache); the others
    then load concurrently. Each run starts from the same database: the items of a run
    before are gone and the re-embedded ones are back to an older embedding.
    """
    from recommender.models import Item

    Item.objects.filter(pk__gt=args.memory_items).delete()
    _embedded_items(range(1, args.reembed + 1), args.content_dim, rng, days_ago=1)  # trained, on record
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "project.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--timeout", "600", "--log-level", "warning"],
        env={**os.environ, "TMPDIR": str(tmp)},  # the default ARTIFACT_CACHE_DIR lands in the throwaway dir
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}{MEMORY_PATH}"
    try:
        first = _memory_get(base, wait=True)
        loaded = {first["pid"]: first}
        for pid, reply in _every_worker(base, workers, lambda r: True).items():
            loaded.setdefault(pid, reply)
        after_load = {pid: smaps(pid) for pid in loaded}
        first_new = args.memory_items + 1
        _embedded_items(range(first_new, first_new + args.new_items), args.content_dim, rng, days_ago=0)
        _embedded_items(range(1, args.reembed + 1), args.content_dim, rng, days_ago=0)
        every = args.memory_items + args.new_items
        grown = _every_worker(base + "?check=1", workers, lambda r: r["items"] == every)
        after_new = {pid: smaps(pid) for pid in loaded}
    finally:
        server.terminate()
        server.wait(timeout=60)
    return [
        {
            "load": after_load[pid],
            "new": after_new[pid],
            "uss_before": reply["uss_before"],
            "load_s": reply["seconds"],
            "add_s": grown[pid]["seconds"],
        }
        for pid, reply in loaded.items()
    ]


def _memory_get(url: str, wait: bool = False) -> dict[str, Any]:
    """One request to memory_view; with wait, retried until gunicorn listens."""
    import urllib.request

    for _ in range(300 if wait else 1):
        try:
            with urllib.request.urlopen(url, timeout=600) as response:
                return json.loads(response.read())
        except OSError:
            if not wait:
                raise
            time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer {url}")


def _every_worker(url: str, workers: int, done: Callable[[dict], bool]) -> dict[int, dict]:
    """Concurrent requests until each of `workers` pids has answered once with done(reply) true."""
    from concurrent.futures import ThreadPoolExecutor

    replies: dict[int, dict] = {}
    with ThreadPoolExecutor(workers) as pool:
        for _ in range(200):
            for reply in pool.map(lambda _: _memory_get(url), range(workers)):
                if done(reply) and reply["pid"] not in replies:
                    replies[reply["pid"]] = reply
            if len(replies) == workers:
                return replies
    raise SystemExit(f"only {len(replies)} of {workers} workers answered as expected")


def _embedded_items(pks: range, dim: int, rng: np.random.Generator, days_ago: int) -> None:
    """Item rows pks with random unit embeddings (created, or re-embedded when they exist)."""
    from django.contrib.contenttypes.models import ContentType
    from django.utils import timezone

    from project.news.models import Article
    from recommender.models import Item

    vectors = rng.normal(size=(len(pks), dim)).astype("<f4")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    when = timezone.now() - timedelta(days=days_ago)
    content_type = ContentType.objects.get_for_model(Article)
    rows = [
        Item(pk=pk, content_type=content_type, object_id=str(pk), title=f"item {pk}", embedding=v.tobytes(),
             embedding_dim=dim, embedded_at=when, is_active=True)
        for pk, v in zip(pks, vectors, strict=True)
    ]  # fmt: skip
    Item.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["pk"],
        update_fields=["embedding", "embedding_dim", "embedded_at"],
    )


_baseline: dict[str, float] = {}


def memory_view(request: Any) -> Any:
    """This worker's pid and item count after model_store.get_active(); ?check=1 looks for new items first.

    The first request records the worker's memory before the model loads.
    """
    from django.http import JsonResponse

    from recommender.serving import model_store

    if not _baseline:
        _baseline.update(smaps(os.getpid()))
    if request.GET.get("check"):
        model_store.invalidate()
    start = time.perf_counter()
    loaded = model_store.get_active()
    if loaded is None:
        return JsonResponse({"error": "no active model"}, status=500)
    recommender = loaded.recommender
    if not recommender.recommend(recommender.item_ids[:3], 10, explain=False):
        return JsonResponse({"error": "the model recommended nothing"}, status=500)
    return JsonResponse(
        {
            "pid": os.getpid(),
            "items": len(recommender.item_ids),
            "seconds": round(time.perf_counter() - start, 1),
            "uss_before": _baseline["uss"],
        }
    )


if __name__ == "__main__":
    main()
