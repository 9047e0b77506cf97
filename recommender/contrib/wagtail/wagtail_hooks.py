"""Wagtail admin hooks: the recommender's tools in Wagtail's menu, its permissions in Wagtail's group
editor, and each page's recommendations view with a button in the page header.

The tools themselves are the core app's Django admin pages; a menu entry shows only to
a staff user holding the permission that page asks for, which Wagtail's group editor grants.
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
from wagtail.admin.widgets import Button

from recommender.contrib.wagtail import views

TOOLS = [  # label, Django admin URL name, the permission it needs, icon
    ("Dashboard", "admin:recommender_dashboard", "recommender.view_recommendationlog", "view"),
    ("Tuning", "admin:recommender_tuningsettings_changelist", "recommender.view_tuningsettings", "cogs"),
    ("Feedback review", "admin:recommender_feedback_changelist", "recommender.view_feedback", "comment"),
    (
        "Editorial rules",
        "admin:recommender_editorialrule_changelist",
        "recommender.view_editorialrule",
        "pick",
    ),
    (
        "Model registry",
        "admin:recommender_modelversion_changelist",
        "recommender.view_modelversion",
        "history",
    ),
]


class PermissionMenuItem(MenuItem):
    """A menu entry shown only to staff users holding ``permission`` (the Django admin needs both)."""

    def __init__(self, label: str, url: Any, permission: str, **kwargs: Any) -> None:
        super().__init__(label, url, **kwargs)
        self.permission = permission

    def is_shown(self, request: HttpRequest) -> bool:
        return request.user.is_staff and request.user.has_perm(self.permission)


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


@hooks.register("register_admin_urls")
def recommender_urls() -> list:
    urls = [path("page/<int:page_id>/", views.page_recommendations, name="page")]
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
