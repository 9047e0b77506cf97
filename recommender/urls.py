"""Mount with ``path("api/recommender/", include("recommender.urls"))``."""

from recommender.api.urls import urlpatterns

app_name = "recommender"

__all__ = ["app_name", "urlpatterns"]
