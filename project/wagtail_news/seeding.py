"""Builds the Wagtail demo from the core demo's synthetic news platform: a home page, a section per
topic, an article page per article, readers and their events.

Pages are added to the tree directly (live, with their original publication dates),
then mirrored into Items by ``recommender_sync`` in one pass, and events go through
the recommender's bulk ``ingest``, the path the tracker's events take.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import OutputWrapper
from django.db import transaction
from django.utils.text import slugify
from wagtail.models import Page, Site

from project.demo_seeding import (  # noqa: F401  (the demo commands read the accounts here)
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    READER_PASSWORD,
    embedding_deferred,
    ensure_admin,
    ensure_readers,
    store_events,
)
from project.news.synthetic import Platform
from project.wagtail_news.models import ArticlePage, HomePage, SectionPage

READER_NAME = re.compile(r"^user\d{3,}$")
HOME_SLUG = "daily-demo"


@dataclass(frozen=True)
class SeedSummary:
    """What one seed run stored."""

    sections: int
    articles: int
    users: int
    events: int


def has_content() -> bool:
    """Whether the demo already has its home page (``make demo-wagtail`` seeds only an empty site)."""
    return HomePage.objects.filter(slug=HOME_SLUG).exists()


def flush() -> None:
    """Delete the demo's pages, their Items (and events) and its readers; keeps other accounts."""
    with transaction.atomic():
        for home in HomePage.objects.filter(slug=HOME_SLUG):
            home.delete()  # the tree under it goes too; post_delete removes the Items
        User = get_user_model()
        reader_ids = [u.pk for u in User.objects.only("username") if READER_NAME.match(u.username)]
        User.objects.filter(pk__in=reader_ids).delete()


def store(platform: Platform, *, stdout: OutputWrapper | None = None) -> SeedSummary:
    """Write ``platform`` as pages, make the home page the default site's root, mirror and ingest."""
    with transaction.atomic():
        ensure_admin()
        home = _home()
        sections = _sections(home, platform)
        articles = _articles(sections, platform)
        users = ensure_readers(platform)
    with embedding_deferred():
        call_command("recommender_sync", stdout=stdout)
    events = store_events(platform, articles, users)
    return SeedSummary(len(sections), len(articles), len(users), events)


def _home() -> HomePage:
    root = Page.get_first_root_node()
    home = root.add_child(instance=HomePage(title="The Daily Demo", slug=HOME_SLUG))
    home.body = [("recommended_for_you", {"count": 6, "placement": "home"})]
    home.save_revision().publish()
    site = Site.objects.filter(is_default_site=True).first()
    if site is None:
        Site.objects.create(hostname="localhost", port=80, root_page=home, is_default_site=True)
    else:
        site.root_page = home
        site.save()
    return home


def _sections(home: HomePage, platform: Platform) -> dict[str, SectionPage]:
    sections = {}
    for topic in platform.topics:
        section = SectionPage(title=topic.name, slug=slugify(topic.name), intro=f"News about {topic.name}.")
        sections[topic.name] = home.add_child(instance=section)
    return sections


def _articles(sections: dict[str, SectionPage], platform: Platform) -> list[ArticlePage]:
    """One page per synthetic article, under its primary topic's section; drafts stay unpublished."""
    pages = []
    for article in platform.articles:
        page = ArticlePage(
            title=article.title,
            slug=article.slug,
            summary=article.summary,
            body=[("paragraph", paragraph) for paragraph in article.body.split("\n\n") if paragraph.strip()],
            live=not article.is_draft,
            has_unpublished_changes=article.is_draft,
            first_published_at=None if article.is_draft else article.published_at,
            last_published_at=None if article.is_draft else article.published_at,
        )
        page.tags.add(*article.topics)
        pages.append(sections[article.topics[0]].add_child(instance=page))
    return pages
