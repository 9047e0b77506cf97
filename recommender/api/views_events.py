"""``POST events/``: the JS tracker's (and any client's) batch of events.

Choice on invalid events: the valid events of a batch are stored and the invalid
ones are reported, by index, in a 400 (``{"created", "duplicates", "errors"}``);
nothing of a rejected event is stored. A rejected event can never pass on retry,
so holding back the valid ones would only lose them (an item deleted while a page
was open would cost the whole batch); a client may still resend the whole batch,
as the event ids make that harmless. Problems of the batch itself (not a list, more
than ``MAX_EVENTS_PER_BATCH`` events) and events naming another user or visitor
(403) store nothing.

Bodies are JSON, also sent as ``text/plain`` because ``navigator.sendBeacon``
can't set the content type without a CORS preflight. Signed-in users authenticated
by session need a CSRF token (DRF's SessionAuthentication). Any browser post from
another site is refused by its ``Origin`` / ``Sec-Fetch-Site`` headers
(``SameSiteOnly``): without it, a page elsewhere could make its visitors' browsers
post events (under fresh visitor ids, their SameSite=Lax cookie staying home) and
steer Trending.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from recommender.api.permissions import HasIdentity, OwnEventsOnly, SameSiteOnly, TrackingConsent
from recommender.api.schema import VisitorAwareSchema
from recommender.api.serializers_events import (
    EventBatchSerializer,
    IngestRejectionSerializer,
    IngestResultSerializer,
)
from recommender.api.throttling import (
    RecommenderAnonThrottle,
    RecommenderUserThrottle,
    RecommenderVisitorThrottle,
)
from recommender.identity import identity_from_request
from recommender.tracking.events import EventInput, TrackingError, ingest


class BeaconJSONParser(JSONParser):
    """JSON sent as ``text/plain`` (what ``navigator.sendBeacon`` sends for a string)."""

    media_type = "text/plain"


class EventsView(APIView):
    """Store a batch of events for the requester; an event id sent again is stored once."""

    permission_classes = [SameSiteOnly, TrackingConsent, HasIdentity, OwnEventsOnly]
    schema = VisitorAwareSchema()
    throttle_classes = [RecommenderUserThrottle, RecommenderVisitorThrottle, RecommenderAnonThrottle]
    parser_classes = [JSONParser, BeaconJSONParser]

    def permission_denied(
        self, request: Request, message: str | None = None, code: str | None = None
    ) -> None:
        """Always say why: DRF would answer a visitor (no authenticator succeeded) "not authenticated"."""
        raise PermissionDenied(detail=message, code=code)

    @extend_schema(
        request=EventBatchSerializer,
        responses={
            201: IngestResultSerializer,
            200: OpenApiResponse(IngestResultSerializer, description="Every event had been stored before"),
            400: OpenApiResponse(
                IngestRejectionSerializer, description="Malformed batch, or some events rejected"
            ),
            403: OpenApiResponse(
                description="Sent from another site, an event names another user or visitor, or CSRF failed"
            ),
        },
    )
    def post(self, request: Request) -> Response:
        batch = EventBatchSerializer(data=request.data)
        batch.is_valid(raise_exception=True)
        identity = identity_from_request(request)
        events = [
            EventInput(
                item_id=event["item"],
                event_type=event["event_type"],
                user_id=identity.user_id,
                visitor_id=identity.visitor_id,
                value=event["value"],
                timestamp=event["timestamp"],
                event_id=event.get("event_id", ""),
                session_id=event["session_id"],
                placement=event["placement"],
                recomm_id=event["recomm_id"],
            )
            for event in batch.validated_data["events"]
        ]
        try:
            result = ingest(events)
        except TrackingError as exc:  # e.g. an item deleted since validation
            raise ValidationError({"detail": str(exc)}) from exc
        body = {"created": result.created, "duplicates": result.duplicates}
        rejected = batch.validated_data["rejected"]
        if rejected:
            return Response({**body, "errors": rejected}, status=status.HTTP_400_BAD_REQUEST)
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)
