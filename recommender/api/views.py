"""Serving API views: recommendations, related content, feedback, the requester's own data, model ops.

Views stay thin: they validate parameters with a serializer, resolve the requester's
identity, call one service function and serialize what it returns. ``me/*`` views
only ever act on the request's own identity — no view accepts a user id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from recommender.api import serializers as api
from recommender.api.pagination import HistoryPagination
from recommender.api.permissions import HasIdentity, ModelVersionPermission, VisitorCsrfCheck
from recommender.api.schema import VisitorAwareSchema
from recommender.api.throttling import (
    RecommenderAnonThrottle,
    RecommenderUserThrottle,
    RecommenderVisitorThrottle,
)
from recommender.identity import identity_from_request
from recommender.models import Interaction, Item, ModelVersion
from recommender.serving import related
from recommender.serving.recommend import (
    RecommendationError,
    Recommendations,
    UnknownItem,
    recommend_rendered,
)
from recommender.tracking import feedback, interests, privacy
from recommender.training import model_registry
from recommender.tuning import get_tuning

ERROR = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description='Malformed parameter: {"detail": "<message>"} or {"<parameter>": ["<message>", ...]}',
)
FORBIDDEN = OpenApiResponse(description="Not allowed for this requester")
NOT_FOUND = OpenApiResponse(description="No such object")


class InvalidRequest(APIException):
    """A 400 whose body is ``{"detail": message}``, for arguments a service rejected."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Invalid request."
    default_code = "invalid"


def recommender_limit() -> int:
    """The default list length, read when the request arrives (tunable at run time)."""
    return int(get_tuning().default_limit)


def _params(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """Validated parameters, or a 400 naming each malformed one."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def serialize_list(recs: Recommendations) -> dict[str, Any]:
    """The JSON body of a served list (also what ``recommend_rendered`` caches for the API)."""
    return api.RecommendationsSerializer(recs).data


def _list_response(build: Callable[[], Recommendations | dict[str, Any]]) -> Response:
    """Serialize the list ``build()`` returns (unless it is already); rejected arguments answer 400."""
    try:
        recs = build()
    except UnknownItem as exc:  # a draft is as unknown as a missing id
        raise NotFound(str(exc)) from exc
    except RecommendationError as exc:
        raise InvalidRequest(str(exc)) from exc
    return Response(recs if isinstance(recs, dict) else serialize_list(recs))


class ServingView(APIView):
    """Base of the serving views: throttled per anonymous visitor and per user."""

    schema = VisitorAwareSchema()

    throttle_classes = [RecommenderUserThrottle, RecommenderVisitorThrottle, RecommenderAnonThrottle]


class RecommendationsView(ServingView):
    """Personalized recommendations for the current user or visitor."""

    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[api.RecommendationsQuerySerializer],
        responses={200: api.RecommendationsSerializer, 400: ERROR, 404: NOT_FOUND},
    )
    def get(self, request: Request) -> Response:
        params = _params(api.RecommendationsQuerySerializer, request.query_params)
        return _list_response(
            lambda: recommend_rendered(
                serialize_list,
                request,  # not only its identity: the adapter's visibility reads the request
                placement=params["placement"],
                limit=params.get("limit", recommender_limit()),
                context_item=params.get("context_item"),
                page_token=params.get("page_token"),
            )
        )


class SimilarItemsView(ServingView):
    """Items similar to one item (content and co-occurrence), minus what the requester has seen."""

    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[api.LimitQuerySerializer],
        responses={200: api.RecommendationsSerializer, 400: ERROR, 404: NOT_FOUND},
    )
    def get(self, request: Request, item_id: int) -> Response:
        params = _params(api.LimitQuerySerializer, request.query_params)
        item = get_object_or_404(Item.objects.servable(), pk=item_id)  # a draft is as unknown as a missing id
        return _list_response(
            lambda: related.similar(
                item,
                limit=params.get("limit", recommender_limit()),
                identity=request,
                render=serialize_list,
            )
        )


class TrendingView(ServingView):
    """What is popular now (time-decayed engagement), the same for everyone."""

    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[api.TrendingQuerySerializer],
        responses={200: api.RecommendationsSerializer, 400: ERROR},
    )
    def get(self, request: Request) -> Response:
        params = _params(api.TrendingQuerySerializer, request.query_params)
        return _list_response(
            lambda: related.trending(
                limit=params.get("limit", recommender_limit()),
                window_hours=params.get("window_hours"),
                identity=request,
                render=serialize_list,
            )
        )


class FeedbackView(ServingView):
    """Explicit feedback on an item; "not interested" removes it from the requester's next lists."""

    permission_classes = [HasIdentity, VisitorCsrfCheck]

    @extend_schema(
        request=api.FeedbackSerializer,
        responses={201: api.FeedbackResultSerializer, 400: ERROR, 403: FORBIDDEN},
    )
    def post(self, request: Request) -> Response:
        data = _params(api.FeedbackSerializer, request.data)
        try:
            stored = feedback.record_feedback(
                identity_from_request(request),
                data["item"],
                data["kind"],
                reason=data["reason"],
                recomm_id=data["recomm_id"],
                placement=data["placement"],
            )
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from exc
        return Response(api.FeedbackResultSerializer(stored).data, status=status.HTTP_201_CREATED)


class MeView(ServingView):
    """The requester's own recommender data: DELETE erases it now."""

    permission_classes = [HasIdentity, VisitorCsrfCheck]

    @extend_schema(responses={200: api.DeletedCountsSerializer, 403: FORBIDDEN})
    def delete(self, request: Request) -> Response:
        counts = privacy.delete_identity_data(identity_from_request(request))
        return Response({"deleted": counts})


class HistoryView(ServingView, ListAPIView):
    """The requester's own events, newest first, one page at a time (page and page_size)."""

    permission_classes = [HasIdentity]
    serializer_class = api.HistoryEntrySerializer
    pagination_class = HistoryPagination

    def get_queryset(self) -> QuerySet[Interaction]:
        return privacy.history(identity_from_request(self.request))

    @extend_schema(
        responses={200: api.HistoryEntrySerializer(many=True), 400: ERROR, 403: FORBIDDEN, 404: NOT_FOUND}
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class ExportView(ServingView):
    """Everything stored about the requester, as a JSON file download."""

    permission_classes = [HasIdentity]
    renderer_classes = [JSONRenderer]

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 403: FORBIDDEN})
    def get(self, request: Request) -> Response:
        data = privacy.export_identity_data(identity_from_request(request))
        response = Response(data)
        response["Content-Disposition"] = 'attachment; filename="recommender-data.json"'
        return response


class PersonalizationView(ServingView):
    """Opt out of (or back into) personalized recommendations."""

    permission_classes = [HasIdentity, VisitorCsrfCheck]

    @extend_schema(
        request=api.PersonalizationSerializer,
        responses={200: api.PersonalizationSerializer, 400: ERROR, 403: FORBIDDEN},
    )
    def post(self, request: Request) -> Response:
        data = _params(api.PersonalizationSerializer, request.data)
        profile = privacy.set_personalization(identity_from_request(request), data["enabled"])
        return Response({"enabled": profile.personalization_enabled})


class InterestsView(ServingView):
    """The requester's interest profile: tags and affinities, strongest first."""

    permission_classes = [HasIdentity]

    @extend_schema(
        parameters=[api.LimitQuerySerializer],
        responses={200: api.InterestSerializer(many=True), 400: ERROR, 403: FORBIDDEN},
    )
    def get(self, request: Request) -> Response:
        params = _params(api.LimitQuerySerializer, request.query_params)
        profile = interests.interest_profile(identity_from_request(request), limit=params.get("limit", 20))
        rows = [{"tag": {"slug": tag.slug, "name": tag.name}, "score": score} for tag, score in profile]
        return Response(api.InterestSerializer(rows, many=True).data)


class ModelListView(ServingView):
    """Staff with the view (or change) permission on model versions: trained versions, newest first."""

    permission_classes = [ModelVersionPermission]

    @extend_schema(responses={200: api.ModelVersionSerializer(many=True), 403: FORBIDDEN})
    def get(self, request: Request) -> Response:
        versions = ModelVersion.objects.all()[:100]
        return Response(api.ModelVersionSerializer(versions, many=True).data)


class ModelActivateView(ServingView):
    """Staff with the change permission on model versions: serve this one from now on (atomic swap)."""

    permission_classes = [ModelVersionPermission]

    @extend_schema(
        request=None, responses={200: api.ModelVersionSerializer, 400: ERROR, 403: FORBIDDEN, 404: NOT_FOUND}
    )
    def post(self, request: Request, version_id: int) -> Response:
        version = get_object_or_404(ModelVersion, pk=version_id)
        try:
            version = model_registry.activate(version, by=request.user)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from exc
        return Response(api.ModelVersionSerializer(version).data)


class ModelRollbackView(ServingView):
    """Staff with the change permission on model versions: go back to the previously active one."""

    permission_classes = [ModelVersionPermission]

    @extend_schema(request=None, responses={200: api.ModelVersionSerializer, 400: ERROR, 403: FORBIDDEN})
    def post(self, request: Request) -> Response:
        try:
            version = model_registry.rollback(by=request.user)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from exc
        return Response(api.ModelVersionSerializer(version).data)
