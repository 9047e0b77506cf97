"""How fast every recommender admin page renders on the seeded demo data (target: under 500 ms each).

    python -m bench.admin_pages [--db bench/out/admin_pages.sqlite3] [--runs 5] [--fresh]

Seeds the demo once with ``recommender_demo_seed`` (defaults: 3,000 articles, 300
readers), serves one list to every reader (so the dashboard has served lists),
files feedback and tag suggestions, trains a tiny model, then times each page
through Django's test client as a superuser: the whole request, middleware and
template included. ``DATABASE_URL`` set -> that PostgreSQL database is used instead
of the SQLite file. The numbers are measured, not asserted.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from functools import partial
from pathlib import Path

TARGET_MS = 500.0
TINY_TRAINING = {"epochs": 2, "d_model": 32, "n_heads": 1, "n_layers": 1, "max_len": 50, "batch_size": 64}


def setup_django(db_path: Path) -> None:
    """Point the demo settings at the bench database, without DEBUG (no query log, like production)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ["DJANGO_DEBUG"] = "0"
    if not os.environ.get("DATABASE_URL"):
        db_path.parent.mkdir(parents=True, exist_ok=True)
        os.environ["SQLITE_PATH"] = str(db_path)
    os.environ.setdefault("DEMO_VAR_DIR", str(db_path.parent / "var"))
    import django

    django.setup()


def prepare(fresh: bool) -> None:
    """Migrate and seed once; then add what the demo seed does not make (lists, feedback, a model)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from recommender.identity import Identity
    from recommender.models import Feedback, Item, ItemTag, ModelVersion, RecommendationLog, Tag
    from recommender.serving.recommend import recommend
    from recommender.training import runs

    call_command("migrate", verbosity=0)
    call_command("recommender_demo_seed", *(["--flush"] if fresh else ["--if-empty"]))
    rng = random.Random(0)
    User = get_user_model()
    readers = list(User.objects.filter(is_staff=False).values_list("pk", flat=True))
    if not ModelVersion.objects.exists():
        started = time.monotonic()
        version = runs.train_model(config=TINY_TRAINING)
        print(f"trained {version.name} in {time.monotonic() - started:.1f}s ({version.status})")
    if not RecommendationLog.objects.exists():
        for user_id in readers:
            recommend(Identity(user_id=user_id), placement=rng.choice(["home", "article", "tag"]), limit=10)
    items = list(Item.objects.active().values_list("pk", flat=True))
    if not Feedback.objects.exists():
        kinds = [Feedback.Kind.NOT_INTERESTED, Feedback.Kind.REPORT, Feedback.Kind.MORE_LIKE_THIS]
        Feedback.objects.bulk_create(
            Feedback(
                user_id=rng.choice(readers),
                item_id=rng.choice(items),
                kind=rng.choice(kinds),
                reason=rng.choice(["", "clickbait", "outdated", "offensive headline"]),
            )
            for _ in range(400)
        )
    if not ItemTag.objects.filter(source=ItemTag.Source.AUTOMATIC).exists():
        tags = list(Tag.objects.values_list("pk", flat=True))
        pairs = {(rng.choice(items), rng.choice(tags)) for _ in range(600)}
        existing = set(ItemTag.objects.values_list("item_id", "tag_id"))
        ItemTag.objects.bulk_create(
            ItemTag(
                item_id=i,
                tag_id=t,
                source=ItemTag.Source.AUTOMATIC,
                status=ItemTag.Status.PENDING,
                weight=round(rng.uniform(0.35, 0.9), 3),
            )
            for i, t in pairs - existing
        )
    if not User.objects.filter(username="bench-admin").exists():
        User.objects.create_superuser("bench-admin", "bench@example.com", "bench-admin")


def pages() -> list[tuple[str, str, str, dict | None]]:
    """(label, method, url, POST data) of every admin page of the app."""
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    from recommender.admin import tuning_forms
    from recommender.admin.tuning import TuningForm
    from recommender.models import EditorialRule, Feedback, Item, ModelVersion

    item = Item.objects.order_by("pk").first()
    version = ModelVersion.objects.order_by("-created_at").first()
    feedback = Feedback.objects.order_by("pk").first()
    reader = get_user_model().objects.filter(is_staff=False).order_by("pk").first()
    if not EditorialRule.objects.exists():
        EditorialRule.objects.create(action="boost", item=item, factor=0.5, note="bench")
    form = TuningForm.initial_from(tuning_forms.effective_values())
    preview = {k: ("on" if v is True else v) for k, v in form.items() if v is not False}
    preview.update(user=reader.pk, placement="home", limit=10)
    items = reverse("admin:recommender_item_changelist")
    suggestions = (
        reverse("admin:recommender_itemtag_changelist") + "?source__exact=automatic&status__exact=pending"
    )
    queue = reverse("admin:recommender_feedback_changelist") + "?status__exact=new"
    return [
        ("admin index", "get", reverse("admin:index"), None),
        ("recommender app index", "get", reverse("admin:app_list", args=["recommender"]), None),
        ("items", "get", items, None),
        ("items: embedding missing", "get", items + "?embedding=missing", None),
        ("item detail", "get", reverse("admin:recommender_item_change", args=[item.pk]), None),
        ("tags", "get", reverse("admin:recommender_tag_changelist"), None),
        ("tag suggestions (pending)", "get", suggestions, None),
        ("feedback queue", "get", queue, None),
        ("feedback detail", "get", reverse("admin:recommender_feedback_change", args=[feedback.pk]), None),
        ("editorial rules", "get", reverse("admin:recommender_editorialrule_changelist"), None),
        ("editorial rule add", "get", reverse("admin:recommender_editorialrule_add"), None),
        ("model registry", "get", reverse("admin:recommender_modelversion_changelist"), None),
        ("model version", "get", reverse("admin:recommender_modelversion_change", args=[version.pk]), None),
        ("model progress (JSON)", "get", reverse("admin:recommender_modelversion_progress"), None),
        ("tuning", "get", reverse("admin:recommender_tuningsettings_changelist"), None),
        ("tuning preview: both lists", "post", reverse("admin:recommender_tuningsettings_preview"), preview),
        (
            "tuning preview: edited list",
            "post",
            reverse("admin:recommender_tuningsettings_preview"),
            {**preview, "include_current": "0"},
        ),
        ("tuning changes", "get", reverse("admin:recommender_tuningchange_changelist"), None),
        ("served lists", "get", reverse("admin:recommender_recommendationlog_changelist"), None),
        ("dashboard 14 days", "get", reverse("admin:recommender_dashboard"), None),
        ("dashboard 90 days", "get", reverse("admin:recommender_dashboard") + "?days=90", None),
    ]


def measure(runs: int) -> list[tuple[str, float, float, int, int]]:
    """Median and worst milliseconds per page after one warm-up request, with query counts."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench-admin"))
    results = []
    for label, method, url, data in pages():
        call = partial(client.post, url, data) if method == "post" else partial(client.get, url)
        status = call().status_code  # warm-up: template compilation, first model load
        times = []
        for _ in range(runs):
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                call()
                times.append((time.perf_counter() - started) * 1000)
        results.append((label, statistics.median(times), max(times), len(queries), status))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("bench/out/admin_pages.sqlite3"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--fresh", action="store_true", help="reseed from scratch (--flush)")
    args = parser.parse_args(argv)
    setup_django(args.db)
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    prepare(args.fresh)

    from recommender.models import Interaction, Item, RecommendationLog

    counts = f"{Item.objects.count():,} items, {Interaction.objects.count():,} events"
    lists = f"{RecommendationLog.objects.count():,} served lists"
    print(f"\ndemo data: {counts}, {lists}; {args.runs} runs per page\n")
    rows = measure(args.runs)
    width = max(len(r[0]) for r in rows)
    print(f"{'page':<{width}}  {'median ms':>9}  {'max ms':>7}  {'queries':>7}  status")
    print("-" * (width + 38))
    for label, median, worst, queries, status in rows:
        flag = "" if median < TARGET_MS else f"  over {TARGET_MS:.0f} ms"
        print(f"{label:<{width}}  {median:9.1f}  {worst:7.1f}  {queries:7d}  {status}{flag}")
    slow = [r for r in rows if r[1] >= TARGET_MS]
    print(f"\n{len(rows) - len(slow)}/{len(rows)} pages under {TARGET_MS:.0f} ms (median).")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
