"""A reader's current reaction to each item: liked, disliked or neither.

Like and dislike on one item are exclusive: the newest of the identity's ``like``,
``dislike`` and ``clear_reaction`` events on an item is its state, so a later
reaction replaces an earlier one and ``clear_reaction`` undoes either. Explicit
feedback joins in: "not interested" counts as a dislike, "more like this" as a like.
The pipeline reads this once per list: disliked items are excluded and items like
them pushed down, items like the liked ones pulled up (``ranking.feedback_adjust``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from recommender.models import Feedback, Interaction

LIKE, DISLIKE, CLEAR = "like", "dislike", "clear_reaction"
REACTION_EVENTS = (LIKE, DISLIKE, CLEAR)


@dataclass(frozen=True)
class Reactions:
    """Item ids an identity likes and dislikes now, newest first."""

    liked: tuple[int, ...] = ()
    disliked: tuple[int, ...] = ()


NO_REACTIONS = Reactions()


def _states(identity: Any, item_ids: list[int] | None = None) -> dict[int, str]:
    """item id -> the newest reaction event type, newest items first (one indexed query)."""
    events = Interaction.objects.for_identity(identity).filter(event_type__in=REACTION_EVENTS)
    if item_ids is not None:
        events = events.filter(item_id__in=item_ids)
    states: dict[int, str] = {}
    for item_id, event_type in events.order_by("-timestamp", "-id").values_list("item_id", "event_type"):
        states.setdefault(item_id, event_type)
    return states


def current_reactions(identity: Any) -> Reactions:
    """What the identity likes and dislikes now (events and explicit feedback together)."""
    if identity is None or not identity.is_known:
        return NO_REACTIONS
    states = _states(identity)
    feedback = (
        Feedback.objects.for_identity(identity)
        .filter(kind__in=[Feedback.Kind.NOT_INTERESTED, Feedback.Kind.MORE_LIKE_THIS])
        .order_by("-created_at")
        .values_list("item_id", "kind")
    )
    not_interested = [pk for pk, kind in feedback if kind == Feedback.Kind.NOT_INTERESTED]
    more = [pk for pk, kind in feedback if kind == Feedback.Kind.MORE_LIKE_THIS]
    disliked = dict.fromkeys([pk for pk, s in states.items() if s == DISLIKE] + not_interested)
    liked = dict.fromkeys(
        pk for pk in [*[pk for pk, s in states.items() if s == LIKE], *more] if pk not in disliked
    )
    return Reactions(liked=tuple(liked), disliked=tuple(disliked))


def reaction_to(identity: Any, item_id: int) -> str | None:
    """ "like", "dislike" or None: the state the item page's buttons show."""
    if identity is None or not identity.is_known:
        return None
    state = _states(identity, [item_id]).get(item_id)
    return state if state in (LIKE, DISLIKE) else None
