"""A person's own data: see it, take it away, delete it, switch personalization off.

Everything is scoped by :class:`~recommender.identity.Identity` (a user's data by
``user_id`` alone, a visitor's by its cookie id), so no call can reach another
person's rows.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from recommender.caching import bump_generation
from recommender.models import Feedback, Interaction, Profile, RecommendationLog
from recommender.tracking.interests import profile_for


def history(identity: Any) -> QuerySet[Interaction]:
    """What the identity did, newest first, without impressions (what "my history" shows); callers page it."""
    return (
        Interaction.objects.for_identity(identity)
        .exclude(event_type=Interaction.EventType.IMPRESSION)
        .select_related("item")
        .order_by("-timestamp", "-id")
    )


def export_identity_data(identity: Any) -> dict:
    """Every stored row about the identity, as JSON-ready data."""
    profile = profile_for(identity)
    return {
        "identity": {"user_id": identity.user_id, "visitor_id": identity.visitor_id},
        "exported_at": timezone.now().isoformat(),
        "profile": {
            "personalization_enabled": profile.personalization_enabled,
            "interests": profile.interests,
            "interests_updated_at": profile.interests_updated_at.isoformat()
            if profile.interests_updated_at
            else None,
        }
        if profile
        else None,
        "interactions": [
            {**row, "timestamp": row["timestamp"].isoformat()}
            for row in Interaction.objects.for_identity(identity)
            .order_by("timestamp", "id")
            .values(
                "event_id",
                "item_id",
                "item__title",
                "event_type",
                "value",
                "timestamp",
                "placement",
                "recomm_id",
            )
        ],
        "feedback": [
            {**row, "created_at": row["created_at"].isoformat()}
            for row in Feedback.objects.for_identity(identity)
            .order_by("created_at", "id")
            .values("item_id", "kind", "reason", "placement", "recomm_id", "created_at")
        ],
        "recommendations": [
            {**row, "created_at": row["created_at"].isoformat()}
            for row in RecommendationLog.objects.for_identity(identity)
            .order_by("created_at", "id")
            .values("recomm_id", "placement", "items", "page", "created_at")
        ],
    }


def delete_identity_data(identity: Any) -> dict[str, int]:
    """Delete the identity's interactions, feedback, served lists and profile now; counts per kind."""
    with transaction.atomic():
        counts = {
            "interactions": Interaction.objects.for_identity(identity).delete()[0],
            "feedback": Feedback.objects.for_identity(identity).delete()[0],
            "recommendations": RecommendationLog.objects.for_identity(identity).delete()[0],
            "profiles": Profile.objects.for_identity(identity).delete()[0],
        }
    bump_generation(identity)
    return counts


def set_personalization(identity: Any, enabled: bool) -> Profile:
    """Opt in or out of personalized recommendations (takes effect on the next call)."""
    profile = profile_for(identity, create=True)
    if profile is None:
        raise ValueError("Personalization settings need a signed-in user or a visitor id.")
    profile.personalization_enabled = bool(enabled)
    profile.save(update_fields=["personalization_enabled"])
    bump_generation(identity)
    return profile
