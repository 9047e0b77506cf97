"""Fixtures of the Wagtail tests: a site tree of home, sections and articles, readers and groups.

Run with ``--ds=project.settings_wagtail``. Pages are published through revisions,
as the editor publishes them, so Wagtail's own signals build their Items.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from rest_framework.test import APIClient
from wagtail.models import Page, PageViewRestriction, Site

from project.wagtail_news.models import ArticlePage, HomePage, SectionPage
from recommender.models import Item
from recommender.serving import candidates, model_store
from recommender.serving.candidates import row_cache

PASSWORD = "test-password-123"
_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def _empty_cache(monkeypatch):
    """Cached lists, site root paths, item rows, the content index, the loaded model: none is inherited."""
    monkeypatch.setattr(candidates, "content_index", candidates.ContentIndex())
    model_store.invalidate()  # a model another test trained must not serve this one
    cache.clear()
    row_cache.clear()
    yield
    model_store.invalidate()
    cache.clear()
    row_cache.clear()


def make_user(username: str = "", **fields: Any):
    username = username or f"reader{next(_numbers)}"
    return get_user_model().objects.create_user(username, f"{username}@example.com", PASSWORD, **fields)


def add_page(parent: Page, page: Page, *, publish: bool = True) -> Page:
    """Add ``page`` under ``parent`` as a draft, then publish its revision (``page_published``) if told."""
    page.live = False
    parent.add_child(instance=page)
    revision = page.save_revision()
    if publish:
        revision.publish()
        page.refresh_from_db()
    return page


def make_article(
    section: Page, title: str = "", *, text: str = "", tags: tuple[str, ...] = (), publish: bool = True
) -> ArticlePage:
    """An article under ``section`` with one paragraph, published unless told otherwise."""
    title = title or f"Article {next(_numbers)}"
    article = ArticlePage(
        title=title,
        slug=f"article-{next(_numbers)}",
        summary=f"Summary of {title}.",
        body=[("paragraph", text or f"The body of {title}.")],
    )
    article.tags.add(*tags)
    return add_page(section, article, publish=publish)


def item_for(page: Page) -> Item:
    """The Item a page is mirrored to."""
    content_type = ContentType.objects.get_for_model(page.specific)
    return Item.objects.get(content_type=content_type, object_id=str(page.pk))


def restrict(page: Page, kind: str = PageViewRestriction.LOGIN, *, groups=(), password: str = ""):
    restriction = PageViewRestriction.objects.create(page=page, restriction_type=kind, password=password)
    restriction.groups.set(groups)
    return restriction


@pytest.fixture
def home(db) -> HomePage:
    """The default site's root: a home page under Wagtail's tree root."""
    root = Page.get_first_root_node()
    home = HomePage(title="Home", slug="home-test")
    root.add_child(instance=home)
    Site.objects.update_or_create(
        is_default_site=True, defaults={"hostname": "localhost", "port": 80, "root_page": home}
    )
    return home


@pytest.fixture
def section(home) -> SectionPage:
    return add_page(home, SectionPage(title="World", slug="world"))


@pytest.fixture
def members(db) -> Group:
    return Group.objects.create(name="Members")


@pytest.fixture
def reader(db):
    return make_user()


@pytest.fixture
def member(members):
    user = make_user()
    user.groups.add(members)
    return user


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_login(user)
    return client
