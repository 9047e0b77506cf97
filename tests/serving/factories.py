"""Plain factory functions for the service tests: a topic-structured catalogue and its events.

Items get fixed primary keys (from ``FIRST_PK``) so a model trained once per test
session on their ids serves every test, on SQLite and PostgreSQL alike. Their host
objects are demo ``Article`` rows made with ``bulk_create`` (no registry sync), and
their embeddings are random vectors clustered by topic (fast, and what the model saw).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from project.news.models import Article
from recommender.identity import Identity
from recommender.ml.embedder import vector_to_bytes
from recommender.models import Interaction, Item, ItemTag, Tag

TOPICS = ("football", "climate", "technology")
PER_TOPIC = 8
DIM = 32
FIRST_PK = 900_001
EMBEDDER_NAME = "test-vectors"
_centers = np.random.default_rng(7).normal(size=(len(TOPICS), DIM))
_noise = np.random.default_rng(11)
_counter = itertools.count(1)


def topic_vector(topic: str, *, spread: float = 0.3) -> np.ndarray:
    """A unit vector near the topic's centre (texts on one topic embed close together)."""
    v = _centers[TOPICS.index(topic)] + spread * _noise.normal(size=DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


def catalogue_ids() -> dict[str, list[int]]:
    """The fixed item ids of the trained catalogue, per topic."""
    return {t: [FIRST_PK + n * PER_TOPIC + i for i in range(PER_TOPIC)] for n, t in enumerate(TOPICS)}


def topic_of(item_id: int) -> str | None:
    for topic, ids in catalogue_ids().items():
        if item_id in ids:
            return topic
    return None


def make_tag(name: str) -> Tag:
    tag, _ = Tag.objects.get_or_create(slug=name.lower().replace(" ", "-"), defaults={"name": name.title()})
    return tag


def make_item(
    *,
    pk: int | None = None,
    topic: str | None = None,
    title: str = "",
    vector: np.ndarray | None = None,
    published_at: datetime | None = None,
    is_active: bool = True,
    trending: float = 0.0,
    tags: tuple[str, ...] | None = None,
    embedded: bool = True,
) -> Item:
    """One Item with a demo Article behind it, tagged with its topic and embedded near it."""
    n = next(_counter)
    title = title or f"{topic or 'misc'} story {n}"
    article = Article.objects.bulk_create([Article(title=title, slug=f"story-{n}-{pk or 'x'}", body=title)])[
        0
    ]
    if vector is None and topic and embedded:
        vector = topic_vector(topic)
    item = Item(
        pk=pk,
        content_type=ContentType.objects.get_for_model(Article),
        object_id=str(article.pk),
        title=title,
        text=title,
        published_at=published_at or timezone.now() - timedelta(days=3),
        is_active=is_active,
        trending_score=trending,
        embedding=vector_to_bytes(vector) if vector is not None else None,
        embedding_dim=len(vector) if vector is not None else None,
        embedding_model=EMBEDDER_NAME if vector is not None else "",
        embedded_at=timezone.now() if vector is not None else None,
    )
    item = Item.objects.bulk_create([item])[0]
    for name in tags if tags is not None else ((topic,) if topic else ()):
        ItemTag.objects.create(item=item, tag=make_tag(name))
    return item


def make_catalogue() -> dict[str, list[Item]]:
    """The items the session model was trained on (fixed ids), tagged by topic."""
    return {
        topic: [make_item(pk=pk, topic=topic, title=f"{topic} {i}") for i, pk in enumerate(ids)]
        for topic, ids in catalogue_ids().items()
    }


def make_user(name: str = ""):
    return get_user_model().objects.create_user(username=name or f"user{next(_counter)}", password="x")


def staff_user(name: str, *codenames: str):
    """An active staff user holding these recommender permissions (e.g. "change_modelversion")."""
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user(username=name, password="x", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="recommender", codename__in=codenames)
    )
    return user


def user_identity(name: str = "") -> Identity:
    return Identity(user_id=make_user(name).pk, visitor_id="")


def visitor_identity() -> Identity:
    return Identity(user_id=None, visitor_id=f"visitor-{next(_counter)}")


def add_events(
    identity: Identity,
    items: list[Item] | list[int],
    event_type: str = "view",
    *,
    start: datetime | None = None,
) -> list[Interaction]:
    """Events on the items in order, one minute apart, the last one newest."""
    start = start or timezone.now() - timedelta(minutes=len(items) + 1)
    rows = [
        Interaction(
            event_id=f"e{next(_counter)}",
            user_id=identity.user_id,
            visitor_id=identity.visitor_id if identity.user_id is None else "",
            item_id=item if isinstance(item, int) else item.pk,
            event_type=event_type,
            timestamp=start + timedelta(minutes=n),
        )
        for n, item in enumerate(items)
    ]
    return Interaction.objects.bulk_create(rows)


@dataclass
class Session:
    """The trained catalogue of one test: items per topic, and the active model version."""

    items: dict[str, list[Item]]
    version: object
