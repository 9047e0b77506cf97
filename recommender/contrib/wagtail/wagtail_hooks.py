"""Wagtail admin hooks: the recommender's tools in Wagtail's menu, its permissions in Wagtail's group
editor, and each page's recommendations view with a button in the page header.

The tools are Wagtail views (``admin_views``: dashboard, tuning; ``viewsets``: feedback,
rules, models) that call the core admin's functions; a menu entry shows only to a user
holding the permission that view asks for, which Wagtail's group editor grants. No
Django staff status is needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib.auth.models import Permission
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import include, path, reverse, reverse_lazy
from wagtail import hooks
from wagtail.admin.menu import Menu, MenuItem, SubmenuMenuItem
from wagtail.admin.viewsets.model import ModelViewSet
from wagtail.admin.widgets import Button

from recommender.contrib.wagtail import admin_views, views, viewsets

TOOLS = [  # label, Wagtail admin URL name, the permission it needs, icon
    ("Dashboard", "recommender_wagtail:dashboard", "recommender.view_recommendationlog", "view"),
    ("Tuning", "recommender_wagtail:tuning", "recommender.view_tuningsettings", "cogs"),
    ("Feedback review", "recommender_feedback:index", "recommender.view_feedback", "comment"),
    ("Editorial rules", "recommender_rules:index", "recommender.view_editorialrule", "pick"),
    ("Model registry", "recommender_models:index", "recommender.view_modelversion", "history"),
]


class PermissionMenuItem(MenuItem):
    """A menu entry shown only to users holding ``permission`` (its view refuses the others)."""

    def __init__(self, label: str, url: Any, permission: str, **kwargs: Any) -> None:
        super().__init__(label, url, **kwargs)
        self.permission = permission

    def is_shown(self, request: HttpRequest) -> bool:
        return request.user.has_perm(self.permission)


@hooks.register("register_admin_menu_item")
def recommender_menu() -> SubmenuMenuItem:
    items = [
        PermissionMenuItem(label, reverse_lazy(url_name), permission, icon_name=icon, order=order)
        for order, (label, url_name, permission, icon) in enumerate(TOOLS)
    ]
    return RecommenderSubmenu(
        "Recommender", Menu(items=items), icon_name="pick", name="recommender", order=850
    )


class RecommenderSubmenu(SubmenuMenuItem):
    """The "Recommender" submenu, hidden when none of its entries is shown."""

    def is_shown(self, request: HttpRequest) -> bool:
        return any(item.is_shown(request) for item in self.menu.initial_menu_items)


@hooks.register("register_permissions")
def recommender_permissions() -> QuerySet[Permission]:
    return Permission.objects.filter(content_type__app_label="recommender")


@hooks.register("register_admin_viewset")
def recommender_viewsets() -> list[ModelViewSet]:
    return [viewsets.rules_viewset, viewsets.feedback_viewset, viewsets.models_viewset]


@hooks.register("register_admin_urls")
def recommender_urls() -> list:
    urls = [
        path("page/<int:page_id>/", views.page_recommendations, name="page"),
        path("dashboard/", admin_views.DashboardView.as_view(), name="dashboard"),
        path("tuning/", admin_views.TuningView.as_view(), name="tuning"),
        path("tuning/preview/", admin_views.TuningPreviewView.as_view(), name="tuning_preview"),
    ]
    return [path("recommender/", include((urls, "recommender_wagtail"), namespace="recommender_wagtail"))]


@hooks.register("register_page_header_buttons")
def recommendations_button(
    page: Any, user: Any, view_name: str, next_url: str | None = None
) -> Iterator[Button]:
    yield Button(
        "Recommendations",
        reverse("recommender_wagtail:page", args=[page.pk]),
        icon_name="pick",
        priority=80,
    )
