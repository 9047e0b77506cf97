"""The recommender's tables unavailable while a page renders: the page still answers 200."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection
from django.test import Client
from django.utils import timezone

from project.news.models import Article, Topic

pytestmark = pytest.mark.django_db


def _recommender_down(execute, sql, params, many, context):
    """Every query on a recommender table fails as if its database had gone away."""
    if "recommender_" in sql:
        raise OperationalError("server closed the connection unexpectedly")
    return execute(sql, params, many, context)


def test_pages_render_when_the_recommenders_queries_fail() -> None:
    topic = Topic.objects.create(name="Space", slug="space")
    article = Article.objects.create(
        title="Launch day", slug="launch-day", body="Go.", published_at=timezone.now()
    )
    article.tags.add(topic)
    client = Client()
    with connection.execute_wrapper(_recommender_down):
        home = client.get("/")
        page = client.get(article.get_absolute_url())
        listing = client.get(topic.get_absolute_url())
    assert home.status_code == page.status_code == listing.status_code == 200
    assert "Launch day" in home.content.decode()  # the host's own list is there; the blocks are empty
    assert "recommender-block" not in home.content.decode()
