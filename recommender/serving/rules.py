"""What may not be shown to someone, and what editors decided: exclusions and editorial rules.

Exclusions are personal (seen, disliked, "not interested") and are never
overridden, not even by a pin. Editorial rules (``EditorialRule``) act per
placement on an item or on every item of a tag: *block* removes, *boost* and
*bury* add to or take from the blended score, *pin* puts an item at a position.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db.models import Q
from django.utils import timezone

from recommender.models import EditorialRule, Feedback, Interaction, Item
from recommender.tracking.reactions import Reactions, current_reactions

if TYPE_CHECKING:
    from recommender.serving.candidates import Candidate, HistoryEvent, ItemRow


@dataclass
class EditorialPlan:
    """The rules in force for one placement, indexed for the pipeline."""

    blocked_items: set[int] = field(default_factory=set)
    blocked_tags: set[int] = field(default_factory=set)
    item_adjustments: dict[int, float] = field(default_factory=dict)  # boost +factor, bury -factor
    tag_adjustments: dict[int, float] = field(default_factory=dict)
    item_pins: list[tuple[int, int]] = field(default_factory=list)  # (position, item id)
    tag_pins: list[tuple[int, int]] = field(default_factory=list)  # (position, tag id)

    def is_blocked(self, row: ItemRow) -> bool:
        return row.pk in self.blocked_items or any(t in self.blocked_tags for t in row.tag_ids)

    def adjustment(self, row: ItemRow) -> float:
        """Sum of boosts minus buries for this item, directly or through its tags."""
        return self.item_adjustments.get(row.pk, 0.0) + sum(
            self.tag_adjustments.get(t, 0.0) for t in row.tag_ids
        )

    @property
    def boosted_items(self) -> list[int]:
        """Items an editor boosted by name: they join the candidates even if no source proposed them."""
        return [pk for pk, delta in self.item_adjustments.items() if delta > 0]


def editorial_plan(placement: str) -> EditorialPlan:
    """Read the rules in force now for the placement (one query)."""
    plan = EditorialPlan()
    rules = EditorialRule.objects.in_force(placement).values_list(
        "action", "item_id", "tag_id", "position", "factor"
    )
    for action, item_id, tag_id, position, factor in rules:
        if action == EditorialRule.Action.BLOCK:
            (plan.blocked_items.add(item_id) if item_id else plan.blocked_tags.add(tag_id))
        elif action in (EditorialRule.Action.BOOST, EditorialRule.Action.BURY):
            delta = abs(factor) if action == EditorialRule.Action.BOOST else -abs(factor)
            target = plan.item_adjustments if item_id else plan.tag_adjustments
            key = item_id or tag_id
            target[key] = target.get(key, 0.0) + delta
        elif action == EditorialRule.Action.PIN:
            pins = plan.item_pins if item_id else plan.tag_pins
            pins.append((position or 0, item_id or tag_id))
    plan.item_pins.sort()
    plan.tag_pins.sort()
    return plan


def personal_exclusions(
    identity: Any, history: Sequence[HistoryEvent], *, exclude_seen: bool, reactions: Reactions | None = None
) -> set[int]:
    """Items this identity must not be shown: seen (when configured), disliked now, "not interested".

    ``reactions`` (read once by the caller) saves the query; a dislike undone or
    replaced by a like no longer excludes the item.
    """
    if identity is None:
        return set()
    excluded: set[int] = set()
    if exclude_seen:
        excluded.update(e.item_id for e in history if e.event_type != Interaction.EventType.IMPRESSION)
    excluded.update((reactions or current_reactions(identity)).disliked)
    return excluded


def more_like_this(identity: Any, limit: int = 5) -> list[int]:
    """Items the identity asked for more of, newest first (they steer the model like fresh reads)."""
    if identity is None:
        return []
    return list(
        Feedback.objects.for_identity(identity)
        .filter(kind=Feedback.Kind.MORE_LIKE_THIS)
        .order_by("-created_at")
        .values_list("item_id", flat=True)[:limit]
    )


def pin_candidates(plan: EditorialPlan, excluded: Collection[int]) -> list[tuple[int, int]]:
    """(position, item id) for every pin, a tag pin taking that tag's newest servable item."""
    pins = [(pos, pk) for pos, pk in plan.item_pins if pk not in excluded]
    taken = {pk for _, pk in pins} | set(excluded)
    now = timezone.now()
    for position, tag_id in plan.tag_pins:
        pk = (
            Item.objects.active()
            .filter(Q(published_at__isnull=True) | Q(published_at__lte=now), item_tags__tag_id=tag_id)
            .exclude(pk__in=list(taken))
            .order_by("-published_at", "-pk")
            .values_list("pk", flat=True)
            .first()
        )
        if pk is not None:
            pins.append((position, pk))
            taken.add(pk)
    return sorted(pins)


def apply_pins(ranked: list[Candidate], pins: Iterable[tuple[int, Candidate]], limit: int) -> list[Candidate]:
    """Put each pinned candidate at its position (moving it if ranked elsewhere), keeping ``limit`` items."""
    pins = list(pins)
    pinned_ids = {c.item_id for _, c in pins}
    out = [c for c in ranked if c.item_id not in pinned_ids]
    for position, candidate in sorted(pins, key=lambda p: p[0]):
        out.insert(min(position, len(out)), candidate)
    return out[:limit]
