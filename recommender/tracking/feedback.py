"""Explicit feedback ("not interested", "more like this", reports) and its effect on the next list.

Feedback is stored for editors (the admin reviews reports) and read by the
pipeline: "not interested" items are never shown again to that identity, "more
like this" items steer the model like a fresh like. Storing it bumps the
identity's cache generation, so the very next call reflects it.
"""

from __future__ import annotations

from typing import Any

from recommender.caching import bump_generation
from recommender.models import Feedback, Item


def record_feedback(
    identity: Any, item: Item | int, kind: str, *, reason: str = "", recomm_id: str = "", placement: str = ""
) -> Feedback:
    """Store one piece of feedback for the identity and invalidate its cached lists.

    Raises ValueError for an unknown kind, an unknown item or an identity nothing can be stored for.
    """
    if kind not in Feedback.Kind.values:
        raise ValueError(
            f"Unknown feedback kind {kind!r}; expected one of {', '.join(Feedback.Kind.values)}."
        )
    if identity is None or not identity.is_known:
        raise ValueError("Feedback needs a signed-in user or a visitor id.")
    if not isinstance(item, Item):
        found = Item.objects.filter(pk=item).first()
        if found is None:
            raise ValueError(f"Unknown item {item!r}.")
        item = found
    feedback = Feedback.objects.create(
        user_id=identity.user_id,
        visitor_id="" if identity.user_id is not None else identity.visitor_id,
        item=item,
        kind=kind,
        reason=reason[:2000],
        recomm_id=recomm_id[:64],
        placement=placement[:64],
    )
    bump_generation(identity)
    return feedback
