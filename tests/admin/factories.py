"""Small builders for the admin tests: staff with chosen permissions, published articles, feedback."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone
from django.utils.text import slugify

from project.news.models import Article, Topic
from recommender.models import Feedback, Item, Tag

PASSWORD = "pw-for-tests"


def user(username: str, *, staff: bool = True, perms: tuple[str, ...] = (), superuser: bool = False):
    """A user; ``perms`` are codenames of the recommender app, e.g. ``"view_feedback"``."""
    User = get_user_model()
    if superuser:
        return User.objects.create_superuser(username, f"{username}@example.com", PASSWORD)
    account = User.objects.create_user(username, f"{username}@example.com", PASSWORD, is_staff=staff)
    if perms:
        account.user_permissions.set(
            Permission.objects.filter(content_type__app_label="recommender", codename__in=perms)
        )
    return account


def topic(name: str) -> Topic:
    return Topic.objects.get_or_create(slug=name.lower(), defaults={"name": name})[0]


def article_item(
    title: str, *, topics: tuple[str, ...] = (), hours_ago: float = 1, trending: float = 0.0
) -> Item:
    """A published article and the ``Item`` the registry mirrors it to."""
    article = Article.objects.create(
        title=title,
        slug=slugify(title),
        summary=f"Summary of {title}.",
        body=f"The body of {title}.",
        published_at=timezone.now() - timedelta(hours=hours_ago),
    )
    for name in topics:
        article.tags.add(topic(name))
    item = Item.objects.get(object_id=str(article.pk), content_type__model="article")
    if trending:
        Item.objects.filter(pk=item.pk).update(trending_score=trending)
        item.refresh_from_db()
    return item


def feedback(
    item: Item, *, kind: str = Feedback.Kind.REPORT, reason: str = "", visitor: str = "v1"
) -> Feedback:
    return Feedback.objects.create(item=item, kind=kind, reason=reason, visitor_id=visitor)


def tag(name: str) -> Tag:
    """A recommender tag that no article carries (yet)."""
    return Tag.objects.get_or_create(slug=f"tag-{name.lower()}", defaults={"name": name})[0]
