"""Policies a host site may change by subclassing one adapter (django-allauth style).

``RECOMMENDER = {"ADAPTER": "mysite.recommender.Adapter"}`` picks the class; each
method is small so an override changes one decision: what text represents an
item, when an item is public, how tags are read, how visitors are identified.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import models
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.text import slugify

from recommender.conf import recommender_settings
from recommender.registry import ContentConfig, resolve
from recommender.visitor_cookie import visitor_id_from_cookie


@dataclass(frozen=True)
class Visibility:
    """Which items one requester may be shown, where that is not every servable item.

    ``allowed(item_ids)`` returns those of the given ids the requester may see;
    ``key`` is the same for any two requesters who may see the same items, so cached
    lists are told apart by it (it joins every list's cache key).
    """

    key: str
    allowed: Callable[[Collection[int]], Collection[int]]


class DefaultRecommenderAdapter:
    """The default policies; override any method in a subclass."""

    # -- content ---------------------------------------------------------

    def item_text(self, obj: Any, config: ContentConfig) -> str:
        """The text the embedder reads: the ``text`` options joined, HTML tags removed.

        Markup carries no meaning for the embedder and would change the content hash
        on purely cosmetic edits.
        """
        parts = (resolve(obj, accessor) for accessor in config.text)
        return "\n\n".join(strip_tags(str(part)).strip() for part in parts if part not in (None, ""))

    def item_title(self, obj: Any, config: ContentConfig) -> str:
        value = resolve(obj, config.title) if config.title is not None else str(obj)
        return str(value or "")

    def item_url(self, obj: Any, config: ContentConfig) -> str:
        if config.url is not None:
            return str(resolve(obj, config.url) or "")
        get_url = getattr(obj, "get_absolute_url", None)
        return str(get_url()) if callable(get_url) else ""

    def item_published_at(self, obj: Any, config: ContentConfig) -> datetime | None:
        value = resolve(obj, config.published)
        return value if isinstance(value, datetime) else None

    def is_public(self, obj: Any, config: ContentConfig) -> bool:
        """Whether anyone may see the object; without an ``is_public`` option, everything is."""
        return True if config.is_public is None else bool(resolve(obj, config.is_public))

    def is_active(self, obj: Any, config: ContentConfig) -> bool:
        """Recommendable now: public and, when a ``published`` option is set, published in the past."""
        if not self.is_public(obj, config):
            return False
        if config.published is None:
            return True
        published_at = self.item_published_at(obj, config)
        return published_at is not None and published_at <= timezone.now()

    def item_tags(self, obj: Any, config: ContentConfig) -> list[tuple[str, str]]:
        """Editorial tags as ``(name, slug)`` pairs.

        ``tags`` may name a many-to-many (each related object's ``name``, else its
        ``str``), a comma-separated string or a list of strings or objects.
        """
        value = resolve(obj, config.tags)
        if value is None:
            return []
        if isinstance(value, models.Manager):
            value = value.all()
        elif isinstance(value, str):
            value = value.split(",")
        return _unique_tags(value)

    def visibility(self, request: HttpRequest | None, identity: Any) -> Visibility | None:
        """What this requester may be shown, for content with per-reader access (None: everything).

        Serving applies it to every list, to context items and to explanations
        ("because you read …"). ``request`` is None outside a request (the admin's
        preview, a task); ``identity`` is the resolved user or visitor. The default
        costs nothing: every servable item is visible to everyone.
        """
        return None

    # -- visitors --------------------------------------------------------

    def visitor_id_for(self, request: HttpRequest) -> str:
        """The visitor id the request carries (a validly signed cookie), or ``""``."""
        return visitor_id_from_cookie(request)

    def new_visitor_id(self) -> str:
        """A fresh, unguessable visitor id (32 hex characters)."""
        return uuid.uuid4().hex

    def tracking_allowed(self, request: HttpRequest) -> bool:
        """Whether this request may be tracked: the consent hook (default: yes).

        Return False until the visitor agreed (your consent banner's cookie, say): no
        visitor cookie is set or read, and the events API stores nothing for the
        request, signed-in or not; recommendations still render, unpersonalized for
        an anonymous visitor.
        """
        return True


def _unique_tags(values: Iterable[Any]) -> list[tuple[str, str]]:
    tags: dict[str, str] = {}
    for value in values:
        name = str(getattr(value, "name", None) or value).strip()[:100]
        slug = slugify(name)[:120]
        if slug and slug not in tags:
            tags[slug] = name
    return [(name, slug) for slug, name in tags.items()]


def get_adapter() -> DefaultRecommenderAdapter:
    """An instance of the adapter class named by the ``ADAPTER`` setting."""
    return recommender_settings.ADAPTER()
