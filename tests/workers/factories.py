"""Plain factories for the worker tests: demo articles (registered content) and structured sessions."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

import numpy as np
from django.utils import timezone

from project.news.models import Article
from recommender.models import Interaction, Item

_counter = itertools.count(1)

# A tiny model: trains in about a second on one thread.
TINY_TRAIN_CONFIG = {
    "d_model": 16,
    "n_heads": 1,
    "n_layers": 1,
    "max_len": 20,
    "list_len": 3,
    "batch_size": 32,
    "epochs": 3,
    "patience": 100,
    "warmup": 5,
    "device": "cpu",
    "bf16": False,
    "threads": 1,
}


def make_article(title: str = "", body: str = "", *, published: bool = True) -> Article:
    """A published demo article, saved through the ORM so the registry mirrors it into an Item."""
    n = next(_counter)
    return Article.objects.create(
        title=title or f"Story {n}",
        slug=f"worker-story-{n}-{uuid.uuid4().hex[:6]}",
        body=body or f"Body of story {n} about topic {n % 5}.",
        published_at=timezone.now() - timedelta(hours=1) if published else None,
    )


def item_of(article: Article) -> Item:
    return Item.objects.get(object_id=str(article.pk), content_type__model="article")


def make_items(n: int) -> list[Item]:
    """``n`` articles and their Items."""
    return [item_of(make_article()) for _ in range(n)]


def seed_sessions(
    items: list[Item], *, users: int = 30, length: int = 8, seed: int = 0, prefix: str = "v"
) -> int:
    """Visitors reading runs of consecutive items (a learnable next-item pattern); returns events made."""
    rng = np.random.default_rng(seed)
    start = timezone.now() - timedelta(days=2)
    rows = []
    for u in range(users):
        first = int(rng.integers(0, len(items)))
        for step in range(length):
            item = items[(first + step) % len(items)]
            rows.append(
                Interaction(
                    event_id=uuid.uuid4().hex,
                    visitor_id=f"{prefix}{seed}-{u}",
                    item=item,
                    event_type="view",
                    timestamp=start + timedelta(minutes=10 * u + step),
                )
            )
    Interaction.objects.bulk_create(rows)
    return len(rows)


def make_catalogue(n: int) -> list[Item]:
    """``n`` published articles and their Items, written in bulk (no signals, so no embedding tasks)."""
    from django.contrib.contenttypes.models import ContentType

    from recommender.ml.embedder import content_hash

    start = next(_counter)
    articles = Article.objects.bulk_create(
        Article(
            title=f"Catalogue story {start + k}",
            slug=f"catalogue-{start + k}-{uuid.uuid4().hex[:6]}",
            body=f"Text of catalogue story {start + k}.",
            published_at=timezone.now() - timedelta(days=3),
        )
        for k in range(n)
    )
    content_type = ContentType.objects.get_for_model(Article)
    Item.objects.bulk_create(
        Item(
            content_type=content_type,
            object_id=str(a.pk),
            title=a.title,
            text=a.body,
            content_hash=content_hash(a.body),
            published_at=a.published_at,
        )
        for a in articles
    )
    return list(Item.objects.filter(content_type=content_type, object_id__in=[str(a.pk) for a in articles]))
