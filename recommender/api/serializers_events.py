"""Serializers of ``POST events/``: one event, and the batch that splits valid from invalid events."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

from recommender.conf import recommender_settings
from recommender.models import Item
from recommender.tracking.events import MAX_ID_LENGTH, event_types, value_error

ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"


class EventTypeField(serializers.CharField):
    """An event type from ``EVENT_TYPES``/``EXTRA_EVENT_TYPES``, as configured when the request arrives."""

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        known = sorted(event_types())
        if value not in known:
            raise serializers.ValidationError(f"Unknown event type {value!r}; expected one of {known}.")
        return value


class EventSerializer(serializers.Serializer):
    """One tracked event. visitor_id and user are optional and, when given, must name the requester."""

    event_id = serializers.RegexField(
        ID_PATTERN,
        required=False,
        max_length=MAX_ID_LENGTH,
        help_text="Client-made unique id (e.g. a UUID); the same id twice is stored once.",
    )
    item = serializers.IntegerField(min_value=1, help_text="Item id (data-recommender-item).")
    event_type = EventTypeField(max_length=32, help_text="What happened: one of the site's event types.")
    value = serializers.FloatField(
        required=False, allow_null=True, default=None, help_text="For read: the portion read, 0 to 1."
    )
    timestamp = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="When it happened; future times are set to now.",
    )
    session_id = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=MAX_ID_LENGTH,
        default="",
        help_text="The browsing session.",
    )
    placement = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=MAX_ID_LENGTH,
        default="",
        help_text="Where a recommended item was shown or clicked (e.g. home).",
    )
    recomm_id = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=MAX_ID_LENGTH,
        default="",
        help_text="recomm_id of the served list the item came from, if any.",
    )
    visitor_id = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=MAX_ID_LENGTH,
        help_text="The requester's visitor id; another visitor's is refused.",
    )
    user = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="The signed-in requester's user id; another user's is refused.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        problem = value_error(attrs["event_type"], attrs.get("value"))
        if problem:
            raise serializers.ValidationError({"value": [problem]})
        now = timezone.now()
        if attrs.get("timestamp") is None or attrs["timestamp"] > now:
            attrs["timestamp"] = now  # a client clock running ahead must not put events in the future
        return attrs


class EventListField(serializers.ListField):
    """The events of a batch, kept raw: each is validated on its own, so one bad event spares the others."""


class EventListFieldExtension(OpenApiSerializerFieldExtension):
    """Documents ``EventListField`` as what it holds: a bounded array of ``Event`` objects."""

    target_class = EventListField

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        event = auto_schema.resolve_serializer(EventSerializer, direction)
        return {
            "type": "array",
            "items": event.ref,
            "minItems": 1,
            "maxItems": int(recommender_settings.MAX_EVENTS_PER_BATCH),
        }


class EventTypeFieldExtension(OpenApiSerializerFieldExtension):
    """Documents ``EventTypeField`` with the event types configured when the schema is made."""

    target_class = EventTypeField

    def map_serializer_field(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        return {"type": "string", "enum": sorted(event_types()), "maxLength": self.target.max_length}


class EventBatchSerializer(serializers.Serializer):
    """A batch of events, stored as far as it is valid.

    A malformed batch stores nothing. Otherwise its valid events are stored and the
    invalid ones are reported by their index in the batch (400).
    """

    # validated_data: "events" (the valid ones, validated) and "rejected"
    # ({"<index>": {field: [messages]}}) for the view to report.
    events = EventListField(child=serializers.JSONField(), allow_empty=False)

    def validate_events(self, events: list[Any]) -> list[Any]:
        limit = int(recommender_settings.MAX_EVENTS_PER_BATCH)
        if len(events) > limit:
            raise serializers.ValidationError(f"At most {limit} events per batch; got {len(events)}.")
        return events

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        valid: dict[int, dict[str, Any]] = {}
        rejected: dict[str, Any] = {}
        for index, raw in enumerate(attrs["events"]):
            event = EventSerializer(data=raw)
            if event.is_valid():
                valid[index] = event.validated_data
            else:
                rejected[str(index)] = event.errors
        known = set(
            Item.objects.filter(pk__in={e["item"] for e in valid.values()}).values_list("pk", flat=True)
        )
        for index, event in list(valid.items()):
            if event["item"] not in known:
                rejected[str(index)] = {"item": [f"Unknown item {event['item']}."]}
                del valid[index]
        return {"events": list(valid.values()), "rejected": rejected}


class IngestResultSerializer(serializers.Serializer):
    """What POST events/ stored; errors lists the rejected events by their index in the batch (400)."""

    created = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    errors = serializers.DictField(required=False, help_text='{"<index>": {"<field>": ["message"]}}')


class IngestRejectionSerializer(serializers.Serializer):
    """A 400 of POST events/: some events rejected (what was stored, and why the rest was not),
    or the whole batch refused, with the reason under events or detail."""

    created = serializers.IntegerField(required=False)
    duplicates = serializers.IntegerField(required=False)
    errors = serializers.DictField(required=False, help_text='{"<index>": {"<field>": ["message"]}}')
    events = serializers.JSONField(required=False, help_text="Why the batch itself was refused.")
    detail = serializers.CharField(required=False)
