"""The app's models, grouped by concern in small modules."""

from recommender.models.audit import HistoryAccess
from recommender.models.interactions import Feedback, Interaction
from recommender.models.items import Item, ItemTag, Tag
from recommender.models.registry import ModelVersion
from recommender.models.serving import EditorialRule, Profile, RecommendationLog, TagRelation
from recommender.models.tuning import TuningChange, TuningSettings

__all__ = [
    "EditorialRule",
    "Feedback",
    "HistoryAccess",
    "Interaction",
    "Item",
    "ItemTag",
    "ModelVersion",
    "Profile",
    "RecommendationLog",
    "Tag",
    "TagRelation",
    "TuningChange",
    "TuningSettings",
]
