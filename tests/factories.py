"""Plain builder functions for tests: users, demo articles (mirrored to Items by the registry), events.

Articles are created through the ORM, so the registry's signals build their Items
exactly as on the demo site.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from django.utils.text import slugify
from rest_framework.test import APIClient

from project.news.models import Article, Topic
from recommender.conf import recommender_settings
from recommender.identity import Identity
from recommender.models import Interaction, Item
from recommender.visitor_cookie import signed_visitor_cookie

PASSWORD = "test-password-123"
_numbers = itertools.count(1)


def make_user(username: str = "", *, password: str = PASSWORD, **fields: Any):
    username = username or f"user{next(_numbers)}"
    return get_user_model().objects.create_user(username, f"{username}@example.com", password, **fields)


def make_topic(name: str) -> Topic:
    return Topic.objects.get_or_create(slug=slugify(name), defaults={"name": name})[0]


def make_article(
    title: str = "",
    *,
    tags: Iterable[str] = (),
    published_at: datetime | None | str = "past",
    is_draft: bool = False,
    summary: str = "",
    body: str = "",
    **fields: Any,
) -> Article:
    """A public article (published an hour ago unless told otherwise) with its topics."""
    title = title or f"Article {next(_numbers)}"
    if published_at == "past":
        published_at = timezone.now() - timedelta(hours=1)
    article = Article.objects.create(
        title=title,
        slug=f"{slugify(title)}-{next(_numbers)}",
        summary=summary or f"Summary of {title}.",
        body=body or f"The body of {title}.",
        published_at=published_at,
        is_draft=is_draft,
        **fields,
    )
    if tags:
        article.tags.set([make_topic(name) for name in tags])
    return article


def item_for(obj: Any) -> Item:
    """The Item the registry mirrors ``obj`` to."""
    content_type = ContentType.objects.get_for_model(obj)
    return Item.objects.get(content_type=content_type, object_id=str(obj.pk))


def make_item(title: str = "", **article_fields: Any) -> Item:
    """An Item backed by a fresh published article."""
    return item_for(make_article(title, **article_fields))


def make_interaction(
    item: Item, event_type: str = "view", *, user: Any = None, visitor_id: str = "", **fields: Any
) -> Interaction:
    """One stored event, written directly (no counters, no signals)."""
    if user is None and not visitor_id:
        visitor_id = new_visitor_id()
    return Interaction.objects.create(
        event_id=fields.pop("event_id", uuid.uuid4().hex),
        item=item,
        event_type=event_type,
        user=user,
        visitor_id="" if user is not None else visitor_id,
        **fields,
    )


def new_visitor_id() -> str:
    return uuid.uuid4().hex


def visitor_identity(visitor_id: str = "") -> Identity:
    return Identity(user_id=None, visitor_id=visitor_id or new_visitor_id())


def visitor_client(visitor_id: str = "", **client_kwargs: Any) -> APIClient:
    """An anonymous client whose signed visitor cookie holds ``visitor_id`` (``client.visitor_id``)."""
    client = APIClient(**client_kwargs)
    client.visitor_id = visitor_id or new_visitor_id()
    client.cookies[recommender_settings.VISITOR_COOKIE_NAME] = signed_visitor_cookie(client.visitor_id)
    return client


@contextmanager
def worker_mode() -> Iterator[None]:
    """As if a broker were configured: tasks are sent, not run in-process."""
    before = current_app.conf.task_always_eager
    current_app.conf.update(CELERY_TASK_ALWAYS_EAGER=False)  # the key Django settings provide wins
    try:
        yield
    finally:
        current_app.conf.update(CELERY_TASK_ALWAYS_EAGER=before)


def isolate_model_state(settings, path) -> None:
    """Artifacts stored under ``path``, no cached list and no loaded model: one test's model stays its own."""
    from recommender.caching import cache
    from recommender.serving import model_store

    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(path)},
        },
    }
    cache().clear()
    model_store.invalidate()
