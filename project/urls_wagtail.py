"""URLs of the Wagtail demo: Wagtail's admin and pages, the Django admin and the recommender API."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from wagtail import urls as wagtail_urls
from wagtail.admin import urls as wagtailadmin_urls

urlpatterns = [
    path("cms/", include(wagtailadmin_urls)),
    path("admin/", admin.site.urls),
    path("api/recommender/", include("recommender.urls")),
    path("login/", auth_views.LoginView.as_view(template_name="wagtail_news/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include(wagtail_urls)),
]
