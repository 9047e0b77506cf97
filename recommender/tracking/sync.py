"""Mirror registered host objects into ``Item`` rows (text, state and editorial tags).

Called by the registry's signal receivers for one object at a time and by
``manage.py recommender_sync`` for whole models. When an Item's text changed, the
``item_content_changed`` signal is sent on commit with the ids, so the embedding
worker sees committed rows and gets one message per batch, not per object.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models.functions import Cast
from django.utils import timezone

from recommender.adapter import DefaultRecommenderAdapter, get_adapter
from recommender.caching import bump_site_generation
from recommender.ml.embedder import content_hash
from recommender.models import Item, ItemTag, Tag
from recommender.registry import ContentConfig, registry
from recommender.signals import item_content_changed

logger = logging.getLogger(__name__)

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"


@dataclass
class SyncStats:
    """What a sync run did; ``deactivated`` counts Items that became inactive (incl. vanished objects)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0

    def add(self, other: SyncStats) -> None:
        for name in ("created", "updated", "unchanged", "deactivated"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def sync_object(obj: Any) -> str:
    """Create or update the Item of a registered object; returns ``created``, ``updated`` or ``unchanged``."""
    stats, changed = SyncStats(), []
    outcome = _sync(obj, registry.get_config(type(obj)), get_adapter(), stats, changed, {})
    _announce(changed)
    return outcome


def remove_object(obj: Any) -> int:
    """Delete the Item of a deleted host object (its events go with it); returns rows deleted."""
    content_type = ContentType.objects.get_for_model(obj)
    deleted, _ = Item.objects.filter(content_type=content_type, object_id=str(obj.pk)).delete()
    return deleted


def sync_model(
    model: type[models.Model],
    *,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
) -> SyncStats:
    """Rebuild the Items of every object of ``model`` in pk-ordered batches, then deactivate orphans.

    Each batch is one transaction; ``progress`` is called with the number of
    objects done in each batch.
    """
    config = registry.get_config(model)
    adapter = get_adapter()
    stats = SyncStats()
    tag_cache: dict[str, Tag] = {}
    queryset = model._default_manager.order_by("pk")
    m2m = config.tags_m2m_field()
    if m2m is not None:
        queryset = queryset.prefetch_related(m2m.name)
    last_pk = None
    while True:
        page = queryset if last_pk is None else queryset.filter(pk__gt=last_pk)
        batch = list(page[:batch_size])
        if not batch:
            break
        changed: list[int] = []
        with transaction.atomic():
            for obj in batch:
                _sync(obj, config, adapter, stats, changed, tag_cache)
            _announce(changed)
        last_pk = batch[-1].pk
        if progress is not None:
            progress(len(batch))
    stats.deactivated += deactivate_orphans(model)
    return stats


def deactivate_orphans(model: type[models.Model]) -> int:
    """Deactivate active Items whose host object no longer exists (deleted without signals)."""
    content_type = ContentType.objects.get_for_model(model)
    existing = model._default_manager.annotate(pk_text=Cast("pk", models.CharField())).values("pk_text")
    count = (
        Item.objects.filter(content_type=content_type, is_active=True)
        .exclude(object_id__in=existing)
        .update(is_active=False)
    )
    if count:
        bump_site_generation()  # cached lists may still hold them
    return count


def publish_due(since: datetime | None = None, now: datetime | None = None) -> int:
    """Resync inactive Items whose publication time passed in ``(since, now]``; returns how many.

    A scheduled article's Item is inactive until its ``published_at``; nothing saves
    the article at that moment, so a periodic task calls this (default: last day).
    """
    now = now or timezone.now()
    since = since or now - timedelta(days=1)
    due = Item.objects.filter(is_active=False, published_at__gt=since, published_at__lte=now)
    count = 0
    for item in due.select_related("content_type").iterator():
        obj = item.content_object
        if obj is not None and registry.is_registered(type(obj)):
            count += sync_object(obj) != UNCHANGED
    return count


def _sync(
    obj: Any,
    config: ContentConfig,
    adapter: DefaultRecommenderAdapter,
    stats: SyncStats,
    changed: list[int],
    tag_cache: dict[str, Tag],
) -> str:
    text = adapter.item_text(obj, config)
    fields = {
        "title": adapter.item_title(obj, config)[: Item._meta.get_field("title").max_length],
        "url": adapter.item_url(obj, config)[: Item._meta.get_field("url").max_length],
        "text": text,
        "content_hash": content_hash(text),
        "published_at": adapter.item_published_at(obj, config),
        "is_active": adapter.is_active(obj, config),
    }
    content_type = ContentType.objects.get_for_model(obj)
    item, created = Item.objects.get_or_create(
        content_type=content_type, object_id=str(obj.pk), defaults=fields
    )
    if created:
        outcome = CREATED
        changed.append(item.pk)
    else:
        dirty = [name for name, value in fields.items() if getattr(item, name) != value]
        outcome = UPDATED if dirty else UNCHANGED
        if dirty:
            if "content_hash" in dirty:
                changed.append(item.pk)
            if "is_active" in dirty and not fields["is_active"]:
                stats.deactivated += 1
            for name in dirty:
                setattr(item, name, fields[name])
            item.save(update_fields=[*dirty, "updated_at"])
    if _sync_editorial_tags(item, adapter.item_tags(obj, config), tag_cache) and outcome == UNCHANGED:
        outcome = UPDATED
    setattr(stats, outcome, getattr(stats, outcome) + 1)
    return outcome


def _sync_editorial_tags(item: Item, tags: Iterable[tuple[str, str]], tag_cache: dict[str, Tag]) -> bool:
    """Make the item's editorial tags exactly ``tags``; automatic ones stay (promoted if an editor adds one).

    Returns whether anything changed.
    """
    wanted = {slug: name for name, slug in tags}
    current = {it.tag.slug: it for it in ItemTag.objects.filter(item=item).select_related("tag")}
    stale = [
        it.pk for slug, it in current.items() if it.source == ItemTag.Source.EDITORIAL and slug not in wanted
    ]
    if stale:
        ItemTag.objects.filter(pk__in=stale).delete()
    promoted = [
        it.pk for slug, it in current.items() if slug in wanted and it.source != ItemTag.Source.EDITORIAL
    ]
    if promoted:  # an editor confirmed a suggested tag: it becomes editorial and accepted
        ItemTag.objects.filter(pk__in=promoted).update(
            source=ItemTag.Source.EDITORIAL, status=ItemTag.Status.ACCEPTED, weight=1.0
        )
    missing = [slug for slug in wanted if slug not in current]
    if missing:
        ItemTag.objects.bulk_create(
            [
                ItemTag(item=item, tag=_tag(slug, wanted[slug], tag_cache), source=ItemTag.Source.EDITORIAL)
                for slug in missing
            ],
            ignore_conflicts=True,
        )
    changed = bool(stale or promoted or missing)
    if promoted or missing:  # bulk writes send no signal; tag rules and caps read these tags
        bump_site_generation()
    return changed


def _tag(slug: str, name: str, tag_cache: dict[str, Tag]) -> Tag:
    tag = tag_cache.get(slug)
    if tag is None:
        tag, _ = Tag.objects.get_or_create(slug=slug, defaults={"name": name})
        tag_cache[slug] = tag
    return tag


def _announce(item_ids: list[int]) -> None:
    if item_ids:
        ids = list(item_ids)
        transaction.on_commit(lambda: item_content_changed.send(sender=Item, item_ids=ids))
