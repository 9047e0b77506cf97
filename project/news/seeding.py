"""Stores a synthetic platform: topics, readers, articles, their recommender Items and events.

Bulk writes throughout (a few thousand articles and tens of thousands of events in
seconds); Items are mirrored by the recommender's own ``recommender_sync`` and
events go through its bulk ``ingest``, the same path the tracker's events take.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.core.management.base import OutputWrapper
from django.db import transaction
from django.utils.text import slugify

from project.demo_seeding import (  # noqa: F401  (the demo commands read the accounts here)
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    READER_PASSWORD,
    embedding_deferred,
    ensure_admin,
    ensure_readers,
    store_events,
)
from project.news.models import Article, Topic
from project.news.synthetic import Platform
from recommender.models import Item

READER_NAME = re.compile(r"^user\d{3,}$")


@dataclass(frozen=True)
class SeedSummary:
    """What one seed run stored."""

    topics: int
    articles: int
    users: int
    events: int


def has_content() -> bool:
    """Whether the demo already has articles (the Makefile seeds only an empty site)."""
    return Article.objects.exists()


def flush() -> None:
    """Delete the demo's content, readers and their recommender data; keeps other accounts."""
    User = get_user_model()
    content_type = ContentType.objects.get_for_model(Article)
    with transaction.atomic():
        Item.objects.filter(content_type=content_type).delete()  # cascades to interactions and feedback
        Article.objects.all().delete()
        Topic.objects.all().delete()
        reader_ids = [u.pk for u in User.objects.only("username") if READER_NAME.match(u.username)]
        User.objects.filter(pk__in=reader_ids).delete()


def store(platform: Platform, *, stdout: OutputWrapper | None = None) -> SeedSummary:
    """Write ``platform`` to the database and mirror it into the recommender."""
    with transaction.atomic():
        admin = ensure_admin()
        topics = _topics(platform)
        articles = _articles(platform, topics, author=admin)
        users = ensure_readers(platform)
    with embedding_deferred():
        call_command("recommender_sync", stdout=stdout)
    stored = store_events(platform, articles, users)
    return SeedSummary(len(topics), len(articles), len(users), stored)


def _topics(platform: Platform) -> dict[str, Topic]:
    Topic.objects.bulk_create([Topic(name=t.name, slug=slugify(t.name)) for t in platform.topics])
    return {t.name: t for t in Topic.objects.filter(name__in=[t.name for t in platform.topics])}


def _articles(platform: Platform, topics: dict[str, Topic], *, author) -> list[Article]:
    rows = [
        Article(
            title=a.title,
            slug=a.slug,
            summary=a.summary,
            body=a.body,
            published_at=a.published_at,
            is_draft=a.is_draft,
            author=author,
        )
        for a in platform.articles
    ]
    Article.objects.bulk_create(rows, batch_size=500)
    by_slug = dict(
        Article.objects.filter(slug__in=[a.slug for a in platform.articles]).values_list("slug", "pk")
    )
    articles = [Article(pk=by_slug[a.slug], slug=a.slug) for a in platform.articles]
    linked = []
    for article, synthetic in zip(articles, platform.articles, strict=True):
        if synthetic.previous is not None:
            article.previous_id = articles[synthetic.previous].pk
            linked.append(article)
    Article.objects.bulk_update(linked, ["previous"], batch_size=500)
    Through = Article.tags.through
    Through.objects.bulk_create(
        [
            Through(article_id=article.pk, topic_id=topics[name].pk)
            for article, synthetic in zip(articles, platform.articles, strict=True)
            for name in synthetic.topics
        ],
        batch_size=1000,
    )
    return articles
