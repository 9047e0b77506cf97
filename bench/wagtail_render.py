"""Render time of a Wagtail article page with three recommendation blocks, against the same page without.

    python -m bench.wagtail_render [--requests 200]

A throwaway Wagtail demo (``project.settings_wagtail`` on a SQLite file in a temporary
folder) is built as ``make demo-wagtail`` builds it: seeded, embedded, trained (a
short budget) and its trending scored. A signed-in reader then fetches the newest
article page through Django's test client, first with its paragraphs only, then
with "Recommended for you", "Related pages" and "Trending" blocks added and
published, twice each in turn. Rows: the first (uncached) request, then p50 and p95
of ``--requests`` requests after 10 warm-up ones. The baseline page already holds the
article template's own ``{% similar_items %}`` block.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

THREE_BLOCKS = [
    ("recommended_for_you", {"count": 6, "placement": "home"}),
    ("related_pages", {"count": 4, "placement": "article"}),
    ("trending", {"count": 5, "placement": "home"}),
]


def build_demo(var: Path) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings_wagtail"
    os.environ["DEMO_VAR_DIR"] = str(var)
    os.environ["DJANGO_DEBUG"] = "0"  # no query log
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        os.environ.pop(name, None)
    import django

    django.setup()
    from django.core.management import call_command

    quiet = {"verbosity": 0, "stdout": io.StringIO()}
    call_command("migrate", **quiet)
    call_command("wagtail_demo_seed", **quiet)
    call_command("recommender_embed", **quiet)
    call_command("recommender_train", "--max-minutes", "0.5", **quiet)
    call_command("recommender_trending", **quiet)


def measure(requests: int) -> list[tuple[str, float, float, float, int]]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    from project.wagtail_news.models import ArticlePage

    article = ArticlePage.objects.live().order_by("-first_published_at").first()
    client = Client()
    client.force_login(get_user_model().objects.get(username="user001"))
    paragraphs = [b for b in article.body.raw_data if b["type"] == "paragraph"]

    def run(blocks: list[tuple[str, dict]]) -> tuple[float, float, float, int]:
        article.body = [*paragraphs, *[{"type": t, "value": v} for t, v in blocks]]
        article.save_revision().publish()
        started = time.perf_counter()
        response = client.get(article.url)
        first = time.perf_counter() - started
        assert response.status_code == 200, response.status_code
        for _ in range(10):
            client.get(article.url)
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            client.get(article.url)
            times.append(time.perf_counter() - started)
        times.sort()
        shown = response.content.decode().count('class="recommender-item"')
        return first * 1000, statistics.median(times) * 1000, times[int(0.95 * len(times))] * 1000, shown

    rows = []
    for label, blocks in (("no blocks", []), ("three blocks", THREE_BLOCKS)) * 2:
        rows.append((label, *run(blocks)))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        build_demo(Path(tmp) / "var")
        rows = measure(args.requests)
    from bench.speed import table

    base = statistics.median(r[2] for r in rows if r[0] == "no blocks")
    blocks = statistics.median(r[2] for r in rows if r[0] == "three blocks")
    title = (
        f"Wagtail article page, signed-in reader, {args.requests} requests after 10 warm-up "
        f"(three blocks add {blocks - base:.1f} ms at p50)"
    )
    header = ("page", "first request ms", "p50 ms", "p95 ms", "recommended items shown")
    print(table(title, header, rows))


if __name__ == "__main__":
    main()
