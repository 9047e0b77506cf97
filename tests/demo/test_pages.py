"""The demo's pages: they list content, 404 on what is not public, and never break."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from project.news.models import Article, Topic
from recommender.models import ModelVersion

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hasher(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_article(title: str, *, topic: Topic | None = None, hours_ago: float = 1, **fields) -> Article:
    article = Article.objects.create(
        title=title,
        slug=title.lower().replace(" ", "-"),
        summary=f"Summary of {title}.",
        body=f"The body of {title}.",
        published_at=timezone.now() - timedelta(hours=hours_ago),
        **fields,
    )
    if topic is not None:
        article.tags.add(topic)
    return article


@pytest.fixture
def space() -> Topic:
    return Topic.objects.create(name="Space", slug="space")


def test_home_lists_latest_articles_newest_first(client: Client, space: Topic) -> None:
    make_article("Older launch", topic=space, hours_ago=30)
    make_article("Newest launch", topic=space, hours_ago=1)
    make_article("Unfinished draft", topic=space, is_draft=True)
    make_article("Scheduled story", topic=space, hours_ago=-5)

    response = client.get(reverse("home"))

    assert response.status_code == 200
    latest = [a.title for a in response.context["latest"]]
    assert latest == ["Newest launch", "Older launch"]
    html = response.content.decode()
    assert html.index("Newest launch") < html.index("Older launch")
    assert "Unfinished draft" not in html and "Scheduled story" not in html
    assert "recommender/tracker.js" in html


def test_article_page_shows_body_series_and_read_tracking(client: Client, space: Topic) -> None:
    part1 = make_article("Moon base Part 1", topic=space, hours_ago=5)
    part2 = make_article("Moon base Part 2", topic=space, hours_ago=2, previous=part1)

    response = client.get(part2.get_absolute_url())

    assert response.status_code == 200
    html = response.content.decode()
    assert "The body of Moon base Part 2." in html
    assert part1.get_absolute_url() in html  # "Previously:" link
    assert "data-recommender-read-item" in html
    assert client.get(part1.get_absolute_url()).content.decode().count(part2.get_absolute_url()) >= 1


def test_article_page_404s_for_unknown_and_unpublished(client: Client, space: Topic) -> None:
    draft = make_article("Secret draft", topic=space, is_draft=True)
    assert client.get(reverse("article", args=["no-such-article"])).status_code == 404
    assert client.get(draft.get_absolute_url()).status_code == 404

    staff = get_user_model().objects.create_user("editor", password="x", is_staff=True)
    client.force_login(staff)
    assert client.get(draft.get_absolute_url()).status_code == 200


def test_tag_page_lists_only_its_topic(client: Client, space: Topic) -> None:
    food = Topic.objects.create(name="Food", slug="food")
    make_article("Comet flyby", topic=space)
    make_article("Sourdough secrets", topic=food)

    response = client.get(space.get_absolute_url())

    assert response.status_code == 200
    assert [a.title for a in response.context["page"]] == ["Comet flyby"]
    assert client.get(reverse("tag", args=["nothing-here"])).status_code == 404


def test_tag_page_paginates(client: Client, space: Topic) -> None:
    for n in range(25):
        make_article(f"Launch {n:02d}", topic=space, hours_ago=n + 1)
    second = client.get(space.get_absolute_url(), {"page": 2})
    assert [a.title for a in second.context["page"]] == [f"Launch {n:02d}" for n in range(20, 25)]


def test_login_and_logout(client: Client) -> None:
    get_user_model().objects.create_user("user001", password="demo-pass-123")
    assert client.get(reverse("login")).status_code == 200

    wrong = client.post(reverse("login"), {"username": "user001", "password": "nope"})
    assert wrong.status_code == 200 and "_auth_user_id" not in client.session

    response = client.post(reverse("login"), {"username": "user001", "password": "demo-pass-123"})
    assert response.status_code == 302 and response.url == reverse("home")
    assert "Signed in as" in client.get(reverse("home")).content.decode()

    client.post(reverse("logout"))
    assert "_auth_user_id" not in client.session


def test_pages_render_without_a_trained_model(client: Client, space: Topic) -> None:
    article = make_article("Quiet day in orbit", topic=space)
    user = get_user_model().objects.create_user("reader", password="x")
    assert not ModelVersion.objects.exists()
    for c in (client, Client()):
        if c is client:
            c.force_login(user)
        for url in (reverse("home"), article.get_absolute_url(), space.get_absolute_url()):
            assert c.get(url).status_code == 200, url


def test_pages_survive_a_failing_recommender(client: Client, space: Topic, monkeypatch) -> None:
    import recommender.templatetags.recommender as tags

    def broken(*args, **kwargs):
        raise RuntimeError("recommender down")

    monkeypatch.setattr(tags, "recommend", broken)
    article = make_article("Storm over the launch pad", topic=space)
    assert client.get(reverse("home")).status_code == 200
    assert client.get(article.get_absolute_url()).status_code == 200
