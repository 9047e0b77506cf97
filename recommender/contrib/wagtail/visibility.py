"""What one requester may be shown among page Items: live pages of the request's site it may open.

A page is hidden from a requester when it, or a page above it, has a view
restriction the requester does not pass (login, groups, or a password not entered
in this session), or when it lies outside the request's ``Site``. Items of other
models are left alone. The outcome is keyed by the site and the restrictions the
requester fails, so cached lists are shared only by requesters who see the same pages.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.http import HttpRequest
from wagtail.models import Page, PageViewRestriction, Site

from recommender.adapter import Visibility
from recommender.models import Item
from recommender.registry import registry

REQUEST_ATTR = "_recommender_wagtail_visibility"  # computed once per request, for every block on it


@dataclass(frozen=True)
class Requester:
    """Who asks, as far as view restrictions go."""

    user_id: int | None
    is_superuser: bool
    group_ids: frozenset[int]


def page_visibility(request: HttpRequest | None, identity: Any) -> Visibility:
    """The :class:`Visibility` of a request (or, without one, of an identity on no particular site)."""
    cached = getattr(request, REQUEST_ATTR, None) if request is not None else None
    if cached is not None:
        return cached
    site = Site.find_for_request(request) if request is not None else None
    requester = _requester(request, identity)
    denied = [r for r in PageViewRestriction.objects.select_related("page").prefetch_related("groups")
              if not _passes(r, requester, request)]  # fmt: skip
    root = _site_root_url_path(site)
    key = f"site={site.pk if site else '-'};denied={','.join(str(r.pk) for r in denied)}"
    visibility = Visibility(key, PageFilter(root, tuple(r.page.path for r in denied)))
    if request is not None:
        setattr(request, REQUEST_ATTR, visibility)
    return visibility


def _requester(request: HttpRequest | None, identity: Any) -> Requester:
    user = getattr(request, "user", None) if request is not None else None
    if user is not None:
        if not user.is_authenticated:
            return Requester(None, False, frozenset())
        user_id, is_superuser = user.pk, user.is_superuser
    else:
        user_id = getattr(identity, "user_id", None)
        if user_id is None:
            return Requester(None, False, frozenset())
        is_superuser = get_user_model().objects.filter(pk=user_id, is_superuser=True).exists()
    groups = frozenset(Group.objects.filter(user__pk=user_id).values_list("pk", flat=True))
    return Requester(user_id, is_superuser, groups)


def _passes(restriction: PageViewRestriction, requester: Requester, request: HttpRequest | None) -> bool:
    """Wagtail's ``accept_request`` rules, read from a :class:`Requester` (and the session, for passwords)."""
    kind = restriction.restriction_type
    if kind == PageViewRestriction.PASSWORD:
        session = getattr(request, "session", None)
        return session is not None and restriction.pk in session.get(
            restriction.passed_view_restrictions_session_key, []
        )
    if requester.user_id is None:
        return False
    if kind == PageViewRestriction.GROUPS:
        return requester.is_superuser or bool(requester.group_ids & {g.pk for g in restriction.groups.all()})
    return True  # LOGIN


def _site_root_url_path(site: Site | None) -> str | None:
    if site is None:
        return None
    for root in Site.get_site_root_paths():  # cached by Wagtail: no query on a warm cache
        if root.site_id == site.pk:
            return root.root_path
    return None


@dataclass(frozen=True)
class PageFilter:
    """``Visibility.allowed`` for pages: of the given Item ids, those the requester may be shown."""

    root_url_path: str | None  # the request's site root ("/home/"); None: any site
    denied_paths: tuple[str, ...]  # tree paths of the restrictions the requester fails

    def __call__(self, item_ids: Collection[int]) -> set[int]:
        page_types = self._page_content_types
        rows = Item.objects.filter(pk__in=list(item_ids)).values_list("pk", "content_type_id", "object_id")
        allowed, pages = set(), {}
        for pk, content_type_id, object_id in rows:
            if content_type_id in page_types:
                pages[int(object_id)] = pk
            else:
                allowed.add(pk)
        for page_pk, path, url_path, live in Page.objects.filter(pk__in=list(pages)).values_list(
            "pk", "path", "url_path", "live"
        ):
            if not live or path.startswith(self.denied_paths):
                continue
            if self.root_url_path is None or url_path.startswith(self.root_url_path):
                allowed.add(pages[page_pk])
        return allowed

    @cached_property
    def _page_content_types(self) -> set[int]:
        models = [m for m in registry.registered_models() if issubclass(m, Page)]
        return {ct.pk for ct in ContentType.objects.get_for_models(*models).values()}
