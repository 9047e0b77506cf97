"""What a visitor sees on the demo's pages: no item twice on a page, reactions that show their state."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from project.news.models import Article, Topic
from recommender.identity import Identity
from recommender.models import Item
from recommender.tracking.events import track

pytestmark = pytest.mark.django_db

SERVED = re.compile(r'data-recommender-item="(\d+)"')


@pytest.fixture(autouse=True)
def fast_hasher(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def articles() -> list[Article]:
    """30 published articles in three topics, the older half trending."""
    topics = [Topic.objects.create(name=n, slug=n.lower()) for n in ("Space", "Climate", "Football")]
    out = []
    for n in range(30):
        article = Article.objects.create(
            title=f"Story {n}",
            slug=f"story-{n}",
            body=f"Body {n}",
            published_at=timezone.now() - timedelta(hours=n + 1),
        )
        article.tags.add(topics[n % 3])
        out.append(article)
    content_type = ContentType.objects.get_for_model(Article)
    for n, article in enumerate(out):
        Item.objects.filter(content_type=content_type, object_id=str(article.pk)).update(
            trending_score=float(n) if n >= 15 else 0.0
        )
    return out


def _item_ids(articles) -> set[int]:
    content_type = ContentType.objects.get_for_model(Article)
    pks = [str(a.pk) for a in articles]
    return set(Item.objects.filter(content_type=content_type, object_id__in=pks).values_list("pk", flat=True))


def test_a_new_visitors_home_shows_each_item_once(articles) -> None:
    """Logged out: "Recommended for you" neither repeats "Latest" nor the Trending block beside it."""
    response = Client().get(reverse("home"))
    html = response.content.decode()
    latest = _item_ids(response.context["latest"])
    recommended_html, _, sidebar_html = html.partition('<aside class="sidebar">')
    recommended = [int(i) for i in SERVED.findall(recommended_html)]
    trending = [int(i) for i in SERVED.findall(sidebar_html)]
    assert len(recommended) == 6 and len(trending) == 5
    assert not set(recommended) & latest and not set(trending) & latest
    assert not set(recommended) & set(trending)
    assert len(set(recommended + trending)) == 11


def test_the_article_page_shows_the_readers_reaction_and_offers_to_undo_it(articles) -> None:
    reader = get_user_model().objects.create_user("reader", password="x")
    client = Client()
    client.force_login(reader)
    article = articles[0]
    [item] = _item_ids([article])

    def pressed() -> dict[str, str]:
        html = client.get(article.get_absolute_url()).content.decode()
        return dict(re.findall(r'data-event="(like|dislike)" aria-pressed="(true|false)"', html))

    assert pressed() == {"like": "false", "dislike": "false"}
    track(Identity(reader.pk), item, "like", timestamp=timezone.now())
    assert pressed() == {"like": "true", "dislike": "false"}
    track(Identity(reader.pk), item, "dislike", timestamp=timezone.now() + timedelta(seconds=1))
    assert pressed() == {"like": "false", "dislike": "true"}
    track(Identity(reader.pk), item, "clear_reaction", timestamp=timezone.now() + timedelta(seconds=2))
    assert pressed() == {"like": "false", "dislike": "false"}
