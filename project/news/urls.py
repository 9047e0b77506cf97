"""Demo pages and the sign-in/sign-out views from django.contrib.auth."""

from django.contrib.auth import views as auth_views
from django.urls import path

from project.news import views

urlpatterns = [
    path("", views.home, name="home"),
    path("articles/<slug:slug>/", views.article, name="article"),
    path("topics/<slug:slug>/", views.tag, name="tag"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
