"""Keep page Items in step with Wagtail: publish, unpublish, move; and cached lists with access rules.

Each receiver reloads the page from the database by id, so only what is live is
read, and runs in a savepoint whose failure is logged, never breaking the editor's
action (``recommender_sync`` repairs what a failed step left). Embedding follows
from the core's ``item_content_changed`` signal, on commit, as for any model.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from wagtail.models import Page, PageViewRestriction, Site
from wagtail.signals import page_published, page_unpublished, post_page_move

from recommender.caching import bump_site_generation
from recommender.contrib.wagtail.pages import is_page_item_model
from recommender.tracking import sync

logger = logging.getLogger(__name__)
UID = "recommender.contrib.wagtail"


def connect() -> None:
    """Connect the page lifecycle receivers and the cache bumps of access and site changes."""
    page_published.connect(_page_changed, dispatch_uid=f"{UID}.published")
    page_unpublished.connect(_page_changed, dispatch_uid=f"{UID}.unpublished")
    post_page_move.connect(_page_moved, dispatch_uid=f"{UID}.moved")
    for model in (PageViewRestriction, Site):
        post_save.connect(bump_site_generation, sender=model, dispatch_uid=f"{UID}.bump.{model.__name__}")
        post_delete.connect(bump_site_generation, sender=model, dispatch_uid=f"{UID}.bump_d.{model.__name__}")


def resync_pages(pks: list[int]) -> int:
    """Resync the Items of these pages (those of a registered type) from their live rows; returns how many."""
    count = 0
    for page in Page.objects.filter(pk__in=pks).specific().iterator():
        if is_page_item_model(type(page)):
            _guarded(page, lambda page=page: sync.sync_object(page))
            count += 1
    return count


def _page_changed(sender: type, instance: Page, **kwargs: Any) -> None:
    if is_page_item_model(sender):
        resync_pages([instance.pk])


def _page_moved(sender: type, instance: Page, **kwargs: Any) -> None:
    """A move changes the URLs of the page and everything under it, and maybe what restricts them."""
    pks = list(Page.objects.descendant_of(instance, inclusive=True).values_list("pk", flat=True))
    resync_pages(pks)
    bump_site_generation()  # who may see these pages may have changed though no Item did


def _guarded(page: Page, work: Any) -> None:
    try:
        with transaction.atomic():
            work()
    except Exception:
        logger.exception("recommender: could not sync the Item of page %s", page.pk)
