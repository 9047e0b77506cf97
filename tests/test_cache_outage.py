"""A cache (Redis) outage costs speed, never a page, a save or an API answer."""

from __future__ import annotations

import logging

import pytest
import redis
from django.core.cache import caches
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from project.news.models import Article
from recommender.caching import cache
from recommender.models import Item

pytestmark = pytest.mark.django_db

DEAD_REDIS = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}


@pytest.fixture
def redis_down(settings):
    settings.CACHES = {**settings.CACHES, "default": DEAD_REDIS}
    with pytest.raises(redis.exceptions.ConnectionError):  # the outage is real: the bare backend fails
        caches["default"].get("probe")


def test_pages_saves_and_the_api_work_while_the_cache_is_down(redis_down, caplog):
    caplog.set_level(logging.WARNING, logger="recommender")
    article = Article.objects.create(title="Storm", slug="storm", body="Rain.", published_at=timezone.now())
    item = Item.objects.get(object_id=str(article.pk))  # the save mirrored it despite the generation bump
    client = Client()
    assert client.get("/").status_code == 200
    assert client.get(article.get_absolute_url()).status_code == 200
    api = APIClient()
    assert api.get("/api/recommender/recommendations/", {"limit": 3}).status_code == 200
    assert api.get("/api/recommender/trending/").status_code == 200
    posted = api.post(
        "/api/recommender/events/", {"events": [{"item": item.pk, "event_type": "view"}]}, format="json"
    )
    assert posted.status_code == 201
    assert cache().get("anything", "default") == "default" and cache().add("k", 1) is True
    assert "going on without the cache" in caplog.text
