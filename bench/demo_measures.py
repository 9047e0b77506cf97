"""What a demo reader sees, measured: explanations and related lists on topic, feedback moving the list.

    python -m bench.demo_measures --db PATH [--readers 300] [--limit 10] [--articles 300]

Runs on a demo database that is already seeded, embedded and trained (``make demo``,
or the steps of its recipe with ``SQLITE_PATH``); ``DATABASE_URL`` set -> that
PostgreSQL database. Nothing is written: every feedback experiment runs in a
transaction that is rolled back. An article's *series* is the chain of ``previous``
links it belongs to. Rows:

- explanations: of the home-list items cited "because you read X", the share whose X
  shares a topic or the series with the item (and how many items cite an article);
- related reading: of the items in an article page's related block, the share that
  share a topic or the series with the article;
- feedback: a reader dislikes three articles of the topic T most present in their home
  list; T's count in their next list, summed over readers, before and after. Then
  (separately) they like three unread articles of a topic U absent from their list: U's
  count before and after.
"""

from __future__ import annotations

import argparse
import os
import random
from collections import Counter
from pathlib import Path


def setup_django(db_path: Path | None) -> None:
    """Point the demo settings at the measured database, without DEBUG (no query log)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ["DJANGO_DEBUG"] = "0"
    if db_path is not None and not os.environ.get("DATABASE_URL"):
        os.environ["SQLITE_PATH"] = str(db_path)
        os.environ.setdefault("DEMO_VAR_DIR", str(db_path.parent / "var"))
    import django

    django.setup()


class Demo:
    """Topics and series of every demo article, by recommender item id."""

    def __init__(self) -> None:
        from django.contrib.contenttypes.models import ContentType

        from project.news.models import Article, Topic
        from recommender.models import Item

        content_type = ContentType.objects.get_for_model(Article)
        article_of = {
            int(obj): pk
            for pk, obj in Item.objects.filter(content_type=content_type).values_list("pk", "object_id")
        }
        previous = dict(Article.objects.values_list("pk", "previous_id"))
        topics: dict[int, set[int]] = {}
        for article, topic in Article.tags.through.objects.values_list("article_id", "topic_id"):
            topics.setdefault(article, set()).add(topic)
        self.item_of = {a: i for a, i in article_of.items()}
        self.topics = {i: topics.get(a, set()) for a, i in article_of.items()}
        names = dict(Topic.objects.values_list("pk", "name"))
        self.topic_names = {i: {names[t] for t in ts} for i, ts in self.topics.items()}
        self.series = {i: self._root(a, previous) for a, i in article_of.items()}
        self.published = set(
            article_of[a] for a in Article.objects.published().values_list("pk", flat=True) if a in article_of
        )

    @staticmethod
    def _root(article: int, previous: dict[int, int | None]) -> int:
        seen = set()
        while previous.get(article) is not None and article not in seen:
            seen.add(article)
            article = previous[article]
        return article

    def related(self, a: int, b: int) -> bool:
        """Whether two items share a topic or a series."""
        return bool(self.topics.get(a, set()) & self.topics.get(b, set())) or self.series.get(
            a
        ) == self.series.get(b)

    def topic_count(self, items: list[int], topic: int) -> int:
        return sum(topic in self.topics.get(i, set()) for i in items)


def explanations(demo: Demo, readers: list[int], limit: int) -> tuple[int, int, int, int, int, int, Counter]:
    """Over every reader's home list: (served, on topic with any read article, citing an article,
    of those on topic, citing a topic, of those the item's own, reasons shown)."""
    from recommender.identity import Identity
    from recommender.models import Interaction
    from recommender.serving.recommend import recommend

    served = cited = consistent = any_read = tagged = tag_consistent = 0
    reasons: Counter = Counter()
    for user_id in readers:
        read = set(Interaction.objects.filter(user_id=user_id).values_list("item_id", flat=True))
        for rec in recommend(Identity(user_id=user_id), placement="home", limit=limit, use_cache=False):
            served += 1
            any_read += any(demo.related(rec.item.pk, i) for i in read)
            reasons[
                rec.reason
                + ("+because" if rec.because else "")
                + ("+tag" if rec.because_tag else "")
                + ("+new" if rec.fresh else "")
                + ("+popular" if rec.popular else "")
            ] += 1
            if rec.because is not None:
                cited += 1
                consistent += demo.related(rec.item.pk, rec.because.pk)
            elif rec.because_tag is not None:
                tagged += 1
                tag_consistent += rec.because_tag.name in demo.topic_names.get(rec.item.pk, set())
    return served, any_read, cited, consistent, tagged, tag_consistent, reasons


def related_reading(demo: Demo, readers: list[int], articles: list[int], limit: int) -> tuple[int, int]:
    """(items in related blocks, of those sharing a topic or series with the page's article).

    The article page's block is ``{% similar_items article %}``: ``serving.related.similar``
    for a reader (seen items left out).
    """
    from recommender.identity import Identity
    from recommender.serving.related import similar

    shown = on_topic = 0
    rng = random.Random(1)
    for item in articles:
        identity = Identity(user_id=rng.choice(readers))
        for rec in similar(item, limit=limit, identity=identity, placement="article"):
            shown += 1
            on_topic += demo.related(item, rec.item.pk)
    return shown, on_topic


def _home(user_id: int, limit: int) -> list[int]:
    from recommender.identity import Identity
    from recommender.serving.recommend import recommend

    return [
        r.item.pk
        for r in recommend(Identity(user_id=user_id), placement="home", limit=limit, use_cache=False)
    ]


def _react(user_id: int, items: list[int], event_type: str) -> None:
    from recommender.tracking.events import EventInput, ingest

    ingest([EventInput(item_id=i, event_type=event_type, user_id=user_id) for i in items])


def feedback(demo: Demo, readers: list[int], limit: int) -> dict[str, list[int]]:
    """Topic counts before/after three dislikes of the main topic, and three likes of an absent one."""
    from django.db import transaction

    from recommender.models import Interaction

    out = {"dislike_before": [], "dislike_after": [], "like_before": [], "like_after": []}
    all_topics = sorted({t for ts in demo.topics.values() for t in ts})
    for user_id in readers:
        before = _home(user_id, limit)
        counts = Counter(t for i in before for t in demo.topics.get(i, set()))
        if not counts:
            continue
        topic = counts.most_common(1)[0][0]
        seen = set(Interaction.objects.filter(user_id=user_id).values_list("item_id", flat=True))
        targets = [i for i in before if topic in demo.topics.get(i, set())][:3]
        targets += [i for i in seen if topic in demo.topics.get(i, set()) and i not in targets][
            : 3 - len(targets)
        ]
        with transaction.atomic():
            _react(user_id, targets, "dislike")
            after = _home(user_id, limit)
            transaction.set_rollback(True)
        out["dislike_before"].append(demo.topic_count(before, topic))
        out["dislike_after"].append(demo.topic_count(after, topic))
        absent = [t for t in all_topics if t not in counts]
        if not absent:
            continue
        liked_topic = random.Random(user_id).choice(absent)
        unread = sorted(
            (i for i in demo.published if liked_topic in demo.topics.get(i, set()) and i not in seen),
            reverse=True,
        )[:3]
        with transaction.atomic():
            _react(user_id, unread, "like")
            after = _home(user_id, limit)
            transaction.set_rollback(True)
        out["like_before"].append(demo.topic_count(before, liked_topic))
        out["like_after"].append(demo.topic_count(after, liked_topic))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="the demo's SQLite file (default: SQLITE_PATH or db.sqlite3)")
    parser.add_argument("--readers", type=int, default=300, help="readers measured (default all 300)")
    parser.add_argument("--limit", type=int, default=10, help="items per home list")
    parser.add_argument(
        "--articles", type=int, default=300, help="article pages measured for related reading"
    )
    parser.add_argument(
        "--related-limit", type=int, default=4, help="items per related block (the demo shows 4)"
    )
    args = parser.parse_args(argv)
    setup_django(args.db)
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    from django.contrib.auth import get_user_model

    from recommender.models import ModelVersion

    demo = Demo()
    readers = list(
        get_user_model().objects.filter(is_staff=False).order_by("pk").values_list("pk", flat=True)
    )
    readers = readers[: args.readers]
    articles = random.Random(0).sample(sorted(demo.published), min(args.articles, len(demo.published)))
    active = ModelVersion.objects.active()
    name = active.name if active else None
    print(f"demo: {len(demo.topics):,} articles, {len(readers)} readers, model {name}\n")

    served, any_read, cited, consistent, tagged, tag_ok, reasons = explanations(demo, readers, args.limit)
    shown, on_topic = related_reading(demo, readers, articles, args.related_limit)
    fb = feedback(demo, readers, args.limit)
    rows = [
        (
            "explanations on topic or series",
            consistent,
            cited,
            f"{cited:,} of {served:,} served items cite an article",
        ),
        ("explanations naming the item's topic", tag_ok, tagged, f"{tagged:,} items cite a topic of reads"),
        ("home items on topic of a read article", any_read, served, "what any explanation could reach"),
        ("related reading on topic or series", on_topic, shown, f"{len(articles)} article pages"),
    ]
    print(f"{'measure':<36}  {'share':>6}  detail")
    print("-" * 90)
    for label, hits, total, detail in rows:
        print(f"{label:<36}  {hits / max(total, 1):6.1%}  {hits:,}/{total:,}; {detail}")
    for kind, word in (("dislike", "disliked"), ("like", "liked")):
        before, after = sum(fb[f"{kind}_before"]), sum(fb[f"{kind}_after"])
        change = (after - before) / before if before else float("inf") if after else 0.0
        print(
            f"{word + ' topic, items in next list':<36}  {change:+6.0%}  {before} -> {after} "
            f"over {len(fb[f'{kind}_before'])} readers ({args.limit} items each)"
        )
    print("\nreasons shown:", ", ".join(f"{k} {v}" for k, v in reasons.most_common()))


if __name__ == "__main__":
    main()
