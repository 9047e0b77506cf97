"""The demo's pages: home, article, tag. Recommendation blocks come from the templates' tags."""

from __future__ import annotations

import logging

from django.contrib.contenttypes.models import ContentType
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from project.news.models import Article, Topic
from recommender.identity import identity_from_request
from recommender.models import Item
from recommender.tracking.reactions import reaction_to

logger = logging.getLogger(__name__)

LATEST_ON_HOME = 12
PER_PAGE = 20


def _listing():
    tags = Prefetch("tags", queryset=Topic.objects.order_by("name"))
    return Article.objects.published().prefetch_related(tags)


def home(request: HttpRequest) -> HttpResponse:
    """Latest articles, with the "Recommended for you" and trending blocks beside them."""
    return render(
        request,
        "news/home.html",
        {
            "latest": _listing()[:LATEST_ON_HOME],
            "topics": Topic.objects.all(),
        },
    )


def article(request: HttpRequest, slug: str) -> HttpResponse:
    """One article; drafts and scheduled articles are 404 except for staff.

    ``reaction`` ("like", "dislike" or None) is the reader's current reaction, so the
    buttons show it and a second press undoes it.
    """
    articles = Article.objects.all() if request.user.is_staff else Article.objects.published()
    obj = get_object_or_404(articles.select_related("previous").prefetch_related("tags"), slug=slug)
    item_id, reaction = _tracking(request, obj)
    return render(
        request,
        "news/article.html",
        {
            "article": obj,
            "continuations": obj.continuations.published().order_by("published_at"),
            "item_id": item_id,
            "reaction": reaction,
            "topics": Topic.objects.all(),
        },
    )


def tag(request: HttpRequest, slug: str) -> HttpResponse:
    """All articles of one topic, newest first, paginated."""
    topic = get_object_or_404(Topic, slug=slug)
    page = Paginator(_listing().filter(tags=topic), PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "news/tag.html",
        {
            "topic": topic,
            "current_topic": topic,
            "page": page,
            "topics": Topic.objects.all(),
        },
    )


def _tracking(request: HttpRequest, article: Article) -> tuple[int | None, str | None]:
    """(Item id, the reader's reaction) for the tracker and the buttons; (None, None) on failure.

    The article is the page; tracking is an extra that must never cost it.
    """
    try:
        item_id = _item_id(article)
        return item_id, reaction_to(identity_from_request(request), item_id) if item_id else None
    except Exception:
        logger.exception("recommender unavailable; the article renders without tracking")
        return None, None


def _item_id(article: Article) -> int | None:
    """The recommender Item mirroring ``article``: the tracker reports reads against it."""
    content_type = ContentType.objects.get_for_model(Article)
    items = Item.objects.filter(content_type=content_type, object_id=str(article.pk))
    return items.values_list("pk", flat=True).first()
