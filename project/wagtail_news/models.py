"""Page models of the Wagtail demo: the recommender reads them with no ``register()`` call.

Articles have a StreamField body (so they are content by default), taggit tags and
the editor's recommendation blocks; the home and section pages have a StreamField of
those blocks only, and ``RECOMMENDER_WAGTAIL["PAGE_TYPES"]`` keeps them out of the items.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.http import HttpRequest
from modelcluster.contrib.taggit import ClusterTaggableManager
from modelcluster.fields import ParentalKey
from taggit.models import TaggedItemBase
from wagtail import blocks
from wagtail.admin.panels import FieldPanel
from wagtail.fields import StreamField
from wagtail.models import Page
from wagtail.search import index

from recommender.contrib.wagtail.blocks import RECOMMENDATION_BLOCKS
from recommender.contrib.wagtail.panels import RecommendationPanel


class HomePage(Page):
    """The site root: the editor's recommendation blocks and the newest articles."""

    body = StreamField(RECOMMENDATION_BLOCKS, blank=True, use_json_field=True)

    content_panels = [*Page.content_panels, FieldPanel("body")]
    subpage_types = ["wagtail_news.SectionPage"]

    def get_context(self, request: HttpRequest, *args: Any, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context(request, *args, **kwargs)
        context["sections"] = SectionPage.objects.child_of(self).live().public()
        context["latest"] = (
            ArticlePage.objects.descendant_of(self).live().public().order_by("-first_published_at")[:8]
        )
        return context


class SectionPage(Page):
    """A topic: its articles, newest first."""

    intro = models.CharField(max_length=250, blank=True)
    body = StreamField(RECOMMENDATION_BLOCKS, blank=True, use_json_field=True)

    content_panels = [*Page.content_panels, FieldPanel("intro"), FieldPanel("body")]
    parent_page_types = ["wagtail_news.HomePage"]
    subpage_types = ["wagtail_news.ArticlePage"]

    def get_context(self, request: HttpRequest, *args: Any, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context(request, *args, **kwargs)
        context["articles"] = (
            ArticlePage.objects.child_of(self).live().public().order_by("-first_published_at")[:20]
        )
        return context


class ArticlePageTag(TaggedItemBase):
    """The through model of article tags."""

    content_object = ParentalKey("ArticlePage", on_delete=models.CASCADE, related_name="tagged_items")


class ArticlePage(Page):
    """A news article: summary, a body of paragraphs and recommendation blocks, tags."""

    summary = models.CharField(max_length=500, blank=True)
    body = StreamField(
        [("paragraph", blocks.TextBlock()), *RECOMMENDATION_BLOCKS], blank=True, use_json_field=True
    )
    tags = ClusterTaggableManager(through=ArticlePageTag, blank=True)

    search_fields = [*Page.search_fields, index.SearchField("summary"), index.SearchField("body")]
    content_panels = [
        *Page.content_panels,
        FieldPanel("summary"),
        FieldPanel("body"),
        FieldPanel("tags"),
        RecommendationPanel(),
    ]
    parent_page_types = ["wagtail_news.SectionPage"]
    subpage_types: list[str] = []
