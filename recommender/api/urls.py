"""API routes, mounted under the host's ``path("api/recommender/", include("recommender.urls"))``."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from recommender.api import views
from recommender.api.views_events import EventsView

urlpatterns = [
    path("events/", EventsView.as_view(), name="events"),
    path("recommendations/", views.RecommendationsView.as_view(), name="recommendations"),
    path("items/<int:item_id>/similar/", views.SimilarItemsView.as_view(), name="similar-items"),
    path("trending/", views.TrendingView.as_view(), name="trending"),
    path("feedback/", views.FeedbackView.as_view(), name="feedback"),
    path("me/", views.MeView.as_view(), name="me"),
    path("me/history/", views.HistoryView.as_view(), name="history"),
    path("me/export/", views.ExportView.as_view(), name="export"),
    path("me/personalization/", views.PersonalizationView.as_view(), name="personalization"),
    path("me/interests/", views.InterestsView.as_view(), name="interests"),
    path("models/", views.ModelListView.as_view(), name="models"),
    path("models/<int:version_id>/activate/", views.ModelActivateView.as_view(), name="model-activate"),
    path("models/rollback/", views.ModelRollbackView.as_view(), name="model-rollback"),
    path("schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny]), name="schema"),
    path(
        "schema/swagger/",
        SpectacularSwaggerView.as_view(url_name="recommender:schema", permission_classes=[AllowAny]),
        name="swagger",
    ),
    path(
        "schema/redoc/",
        SpectacularRedocView.as_view(url_name="recommender:schema", permission_classes=[AllowAny]),
        name="redoc",
    ),
]
