"""How a page does in recommendations (impressions, clicks, CTR) and the editor's pin/block rules for it.

The logic behind the page editor's panel and the page's recommendations view in
Wagtail's admin, kept out of the views so it reads (and is tested) without a request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import Count
from django.utils import timezone
from wagtail.models import Page

from recommender.admin.actions import add_item_rules
from recommender.models import EditorialRule, Interaction, Item

WINDOW_DAYS = 30


@dataclass
class PagePerformance:
    """A page's item, its impressions and clicks over the last ``days``, and its rules in force."""

    item: Item | None
    days: int = WINDOW_DAYS
    impressions: int = 0
    clicks: int = 0
    rules: list[EditorialRule] = field(default_factory=list)

    @property
    def ctr(self) -> float | None:
        """Clicks per impression; None before the first impression."""
        return self.clicks / self.impressions if self.impressions else None

    @property
    def is_pinned(self) -> bool:
        return any(rule.action == EditorialRule.Action.PIN for rule in self.rules)

    @property
    def is_blocked(self) -> bool:
        return any(rule.action == EditorialRule.Action.BLOCK for rule in self.rules)


def item_of_page(page: Page) -> Item | None:
    """The Item a page is mirrored to (None: not a content page type, or never published)."""
    content_type = ContentType.objects.get_for_model(page.specific_class)
    return Item.objects.filter(content_type=content_type, object_id=str(page.pk)).first()


def page_performance(page: Page, *, days: int = WINDOW_DAYS) -> PagePerformance:
    """Impressions and clicks of the page in recommendation lists over ``days`` (one grouped query)."""
    item = item_of_page(page)
    if item is None:
        return PagePerformance(item=None, days=days)
    since = timezone.now() - timedelta(days=days)
    counts = dict(
        Interaction.objects.filter(item=item, timestamp__gte=since, event_type__in=("impression", "click"))
        .values_list("event_type")
        .annotate(n=Count("id"))
        .values_list("event_type", "n")
    )
    rules = list(
        EditorialRule.objects.filter(item=item, is_enabled=True)
        .exclude(ends_at__lte=timezone.now())
        .order_by("action", "placement")
    )
    return PagePerformance(item, days, counts.get("impression", 0), counts.get("click", 0), rules)


def pin_page(item: Item, *, by: Any = None, placement: str = "", position: int = 0) -> EditorialRule:
    """Pin the page's item to ``position`` of every list (or of one placement), from now on."""
    return EditorialRule.objects.create(
        action=EditorialRule.Action.PIN, item=item, placement=placement, position=position, created_by=by,
        note="pinned from the page editor",
    )  # fmt: skip


def block_page(item: Item, *, by: Any = None, placement: str = "") -> list[EditorialRule]:
    """Keep the page's item out of every list (or of one placement), from now on."""
    return add_item_rules([item.pk], EditorialRule.Action.BLOCK, by=by, placement=placement,
                          note="blocked from the page editor")  # fmt: skip


def end_rules(item: Item) -> int:
    """End the pin and block rules of the page's item now; returns how many."""
    now = timezone.now()
    rules = EditorialRule.objects.filter(
        item=item, is_enabled=True, action__in=(EditorialRule.Action.PIN, EditorialRule.Action.BLOCK)
    ).exclude(ends_at__lte=now)
    ended = 0
    for rule in rules:  # one save each: post_save moves the site-wide cache generation
        rule.ends_at = now
        rule.save(update_fields=["ends_at"])
        ended += 1
    return ended
