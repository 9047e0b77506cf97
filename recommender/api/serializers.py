"""Serializers of the serving API: query parameters in, recommendation lists and personal data out.

Query serializers turn every malformed parameter into a 400 with a message before a
service is called; output serializers describe the JSON shape for the OpenAPI schema.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from recommender.conf import recommender_settings
from recommender.models import Feedback, Interaction, Item, ModelVersion
from recommender.settings_schema import SETTINGS
from recommender.tuning import get_tuning

# Parameter bounds come from the settings' declaration, not repeated numbers.
MIN_LIMIT = int(SETTINGS["DEFAULT_LIMIT"].min)
TRENDING_WINDOWS = (1, 6, 24, 72, 168, 720)  # the hours GET trending/?window_hours= accepts


def item_url(item: Item, obj: Any = None) -> str:
    """The link of an item: the mirrored URL, else the host object's ``get_absolute_url``."""
    if item.url:
        return item.url
    obj = obj if obj is not None else item.content_object
    get_url = getattr(obj, "get_absolute_url", None)
    return get_url() if callable(get_url) else ""


class LimitField(serializers.IntegerField):
    """``limit`` bounded by ``MAX_LIMIT`` as configured when the request arrives (tunable at run time).

    ``max_value`` is read from the tuning each time, so the schema publishes the bound
    the validation applies (drf-spectacular reads it when the schema is requested).
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("min_value", MIN_LIMIT)
        kwargs.setdefault("help_text", f"How many items, {MIN_LIMIT} to the MAX_LIMIT setting.")
        self._built = False  # IntegerField.__init__ must not freeze the bound into a validator
        super().__init__(**kwargs)
        self._built = True

    @property
    def max_value(self) -> int | None:
        return int(get_tuning().max_limit) if self.__dict__.get("_built") else None

    @max_value.setter
    def max_value(self, value: Any) -> None:
        """IntegerField sets it from kwargs; the bound is always the tuning's."""

    def to_internal_value(self, data: Any) -> int:
        value = super().to_internal_value(data)
        if value > self.max_value:
            raise serializers.ValidationError(f"Ensure this value is less than or equal to {self.max_value}.")
        return value


class PlacementField(serializers.CharField):
    """A placement name from the ``PLACEMENTS`` setting; empty (``?placement=``) means the default."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("allow_blank", True)  # DRF reads an empty query value as "not given"
        kwargs.setdefault("help_text", "A placement from the PLACEMENTS setting (e.g. home, article).")
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        placements = list(recommender_settings.PLACEMENTS)
        if value not in placements:
            raise serializers.ValidationError(f"Unknown placement {value!r}; expected one of {placements}.")
        return value


class RecommendationsQuerySerializer(serializers.Serializer):
    """Parameters of ``GET recommendations/``."""

    placement = PlacementField(default="default")
    limit = LimitField()
    context_item = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=2**63 - 1,
        help_text="Id of the item being viewed (recommend around it).",
    )
    page_token = serializers.CharField(
        required=False, max_length=512, help_text="next_page_token of the previous page."
    )


class LimitQuerySerializer(serializers.Serializer):
    """The only parameter of ``GET items/{id}/similar/`` and ``GET me/interests/``."""

    limit = LimitField()


class TrendingQuerySerializer(serializers.Serializer):
    """Parameters of ``GET trending/``."""

    limit = LimitField()
    window_hours = serializers.ChoiceField(
        required=False,
        choices=TRENDING_WINDOWS,
        help_text="Count engagement of the last N hours instead of the stored trending score. "
        "A fixed set of windows, so varying it cannot force a new aggregate on every request.",
    )


class ItemRefSerializer(serializers.Serializer):
    """A history item named in an explanation ("Because you read …")."""

    id = serializers.IntegerField()
    title = serializers.CharField()


class TagRefSerializer(serializers.Serializer):
    """A tag named in an explanation: the topic of the reads behind an item, or the item's own topic."""

    slug = serializers.CharField()
    name = serializers.CharField()


class RecommendedItemSerializer(serializers.Serializer):
    """One entry of a served list: the item, its score and position, and why it was chosen."""

    # Serializes serving.recommend.RecommendedItem (the docstring above is the schema's text).

    id = serializers.IntegerField(source="item.pk")
    title = serializers.CharField(source="item.title")
    url = serializers.SerializerMethodField()
    score = serializers.FloatField()
    reason = serializers.CharField(
        help_text="personalized | similar_to_context | trending | fresh | editorial | fallback"
    )
    because = serializers.SerializerMethodField()
    because_tag = serializers.SerializerMethodField(
        help_text='No single read explains the item: the tag whose reads do ("Because you read about …").'
    )
    topic = serializers.SerializerMethodField(
        help_text='The item\'s own tag, when no read explains it ("Trending in …", "New in …").'
    )
    fresh = serializers.BooleanField(
        help_text='A model pick whose strongest reason is that the item is new ("New in …" its topic).'
    )
    popular = serializers.BooleanField(
        help_text="A model pick that a typical reader would get as well: no read of yours explains it "
        '("Popular in …" its topic).'
    )
    position = serializers.IntegerField()

    def get_url(self, rec: Any) -> str:
        return item_url(rec.item, rec.object)

    @extend_schema_field(ItemRefSerializer(allow_null=True))
    def get_because(self, rec: Any) -> dict[str, Any] | None:
        because = rec.because
        return {"id": because.pk, "title": because.title} if because is not None else None

    @extend_schema_field(TagRefSerializer(allow_null=True))
    def get_because_tag(self, rec: Any) -> dict[str, Any] | None:
        tag = rec.because_tag
        return {"slug": tag.slug, "name": tag.name} if tag is not None else None

    @extend_schema_field(TagRefSerializer(allow_null=True))
    def get_topic(self, rec: Any) -> dict[str, Any] | None:
        tag = rec.topic
        return {"slug": tag.slug, "name": tag.name} if tag is not None else None


class RecommendationsSerializer(serializers.Serializer):
    """A served list: its items, plus the ids the tracker and the next page need."""

    recomm_id = serializers.CharField()
    placement = serializers.CharField()
    model_version = serializers.CharField(allow_null=True)
    next_page_token = serializers.CharField(allow_null=True)
    items = RecommendedItemSerializer(many=True)


class FeedbackSerializer(serializers.Serializer):
    """Body of POST feedback/."""

    item = serializers.PrimaryKeyRelatedField(queryset=Item.objects.all())
    kind = serializers.ChoiceField(choices=Feedback.Kind.choices)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    recomm_id = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")
    placement = serializers.CharField(required=False, allow_blank=True, max_length=64, default="")


class FeedbackResultSerializer(serializers.ModelSerializer):
    """Stored feedback, as confirmed to its author."""

    class Meta:
        model = Feedback
        fields = ["id", "item", "kind", "reason", "recomm_id", "placement", "created_at"]


class HistoryEntrySerializer(serializers.ModelSerializer):
    """One of the requester's own events."""

    item = serializers.SerializerMethodField()

    class Meta:
        model = Interaction
        fields = ["id", "item", "event_type", "value", "timestamp", "placement", "recomm_id"]

    def get_item(self, interaction: Interaction) -> dict[str, Any]:
        item = interaction.item
        return {"id": item.pk, "title": item.title, "url": item.url}


class PersonalizationSerializer(serializers.Serializer):
    """Opt in to (true) or out of (false) personalized recommendations."""

    enabled = serializers.BooleanField()


class InterestSerializer(serializers.Serializer):
    """One tag of the requester's interest profile and its affinity."""

    tag = TagRefSerializer()
    score = serializers.FloatField()


class DeletedCountsSerializer(serializers.Serializer):
    """How many rows of each kind DELETE me/ removed."""

    deleted = serializers.DictField(child=serializers.IntegerField())


class ModelVersionSerializer(serializers.ModelSerializer):
    """A trained model version as listed to staff."""

    val_ndcg = serializers.FloatField(read_only=True, allow_null=True)
    # Plain text, not an enum: "kind" is already the feedback kinds' enum in the schema.
    kind = serializers.CharField(read_only=True, help_text="train | refresh")

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "name",
            "kind",
            "status",
            "is_active",
            "metrics",
            "val_ndcg",
            "device",
            "gate_reason",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "activated_at",
        ]
        read_only_fields = fields
