"""URLs of the demo site: the news pages, the admin and the recommender API."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/recommender/", include("recommender.urls")),
    path("", include("project.news.urls")),
]
