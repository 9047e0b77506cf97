"""Which Wagtail page types are content, and how a page is read: text, tags, date, URL, state.

Pages go through the core registry like any model (so ``recommender_sync``, the
embedding tasks and the admin treat them as items), with readers that know Wagtail:
text from the page's search fields and its StreamFields' text, tags from ``tags``
(or ``categories``), the first publication date and the page's own routing for its URL.
Only the live version is ever read: drafts live in revisions and never reach an Item.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models
from django.db.models.signals import post_save
from wagtail.fields import RichTextField, StreamField
from wagtail.models import Page
from wagtail.search import index

from recommender.contrib.wagtail.conf import wagtail_setting
from recommender.registry import registry

TEXT_FIELDS = (StreamField, RichTextField, models.TextField)


def page_types() -> list[type[Page]]:
    """The page models that become items: ``PAGE_TYPES``, else every page type with a text body."""
    names = wagtail_setting("PAGE_TYPES")
    if names is not None:
        found = []
        for name in names:
            model = apps.get_model(name)
            if not (isinstance(model, type) and issubclass(model, Page)):
                raise ImproperlyConfigured(f"RECOMMENDER_WAGTAIL['PAGE_TYPES']: {name} is not a page type.")
            found.append(model)
        return found
    return [
        model
        for model in apps.get_models()
        if issubclass(model, Page) and model is not Page and _has_text_body(model)
    ]


def _has_text_body(model: type[Page]) -> bool:
    own = (f for f in model._meta.get_fields() if getattr(f, "model", None) is model)
    return any(isinstance(f, TEXT_FIELDS) for f in own)


def page_text(page: Page) -> str:
    """The title, the search fields' values and the StreamFields' text, in that order, once each.

    Block markup is dropped by Wagtail's ``get_searchable_content``; HTML of rich
    text is stripped by the adapter.
    """
    parts, seen = [page.title], {"title"}
    names = [f.field_name for f in page.search_fields if isinstance(f, index.SearchField)]
    names += [f.name for f in page._meta.get_fields() if isinstance(f, StreamField)]
    for name in names:
        if name in seen or not hasattr(page, name):
            continue
        seen.add(name)
        parts.extend(_field_text(page, name))
    return "\n\n".join(str(part).strip() for part in parts if part not in (None, ""))


def _field_text(page: Page, name: str) -> list[str]:
    try:
        field = page._meta.get_field(name)
    except FieldDoesNotExist:  # a property or method named as a search field
        value = getattr(page, name)
        return [str(value() if callable(value) else value or "")]
    value = getattr(page, name)
    if isinstance(field, StreamField):
        return [str(text) for text in field.get_searchable_content(value)]
    if isinstance(field, models.Field) and not field.is_relation:
        return [str(value or "")]
    return []


def page_tags(page: Page) -> Any:
    """The page's ``tags`` (taggit) or ``categories`` (a many-to-many of snippets), if it has either."""
    for name in ("tags", "categories"):
        value = getattr(page, name, None)
        if value is not None:
            return value
    return None


def page_published(page: Page) -> datetime | None:
    """When the page was first published (or is scheduled to go live)."""
    return page.first_published_at or page.go_live_at


def page_is_public(page: Page) -> bool:
    """Live and not expired; view restrictions are per reader (see ``visibility``), not here."""
    return bool(page.live) and not page.expired


def page_url(page: Page) -> str:
    """The page's URL from its own routing: root-relative on a one-site install, else with its host."""
    return page.get_url() or ""


def register_pages() -> list[type[Page]]:
    """Register every chosen page type with the core registry; returns them.

    The core's ``post_save`` receiver is disconnected again for pages: Wagtail saves
    a page row when a draft is saved, with the draft's content on the instance, and
    that content must not reach an Item before it is published. ``page_published``,
    ``page_unpublished`` and moves resync instead (:mod:`.receivers`); deletes keep
    the core's ``post_delete`` receiver.
    """
    models_ = page_types()
    for model in models_:
        registry.register(
            model,
            text=page_text,
            tags=page_tags,
            published=page_published,
            is_public=page_is_public,
            title="title",
            url=page_url,
        )
        post_save.disconnect(sender=model, dispatch_uid=f"recommender.sync.{model._meta.label}")
    return models_


def is_page_item_model(model: type) -> bool:
    """Whether ``model`` is a page type registered as content."""
    return isinstance(model, type) and issubclass(model, Page) and registry.is_registered(model)
