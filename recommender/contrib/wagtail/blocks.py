"""StreamField blocks editors drop into a page: "Recommended for you", "Related pages", "Trending".

Each renders the core template tag of the same list in the page's context, so it
uses the same overridable templates (``recommender/blocks/<placement>/<block>.html``
first), leaves out what earlier blocks on the page showed, applies the page
visibility of the request, and never breaks the page: a failing list renders the
trending fallback or nothing, as the tags do.
"""

from __future__ import annotations

import logging
from typing import Any

from django.template import Context, Engine
from django.utils.safestring import SafeString, mark_safe
from wagtail import blocks

from recommender.conf import recommender_settings

logger = logging.getLogger(__name__)


def placement_choices() -> list[tuple[str, str]]:
    """The configured placements, read when the editor opens (so a new placement needs no migration)."""
    return [(name, name) for name in recommender_settings.PLACEMENTS]


class RecommendationListBlock(blocks.StructBlock):
    """A list of recommendations; subclasses name the core tag that fetches and renders it."""

    count = blocks.IntegerBlock(default=5, min_value=1, max_value=20, help_text="How many items to show.")
    placement = blocks.ChoiceBlock(
        choices=placement_choices,
        default="default",
        help_text="Where the list is shown: editorial rules and templates are per placement.",
    )
    tag_source = ""  # the tag call, with the block's count and placement

    def get_searchable_content(self, value: Any) -> list[str]:
        """Nothing: a list of other pages is no text of this page (for search, nor for its embedding)."""
        return []

    def render(self, value: Any, context: dict[str, Any] | None = None) -> SafeString:
        try:
            # Compiled per render (tens of microseconds): the engine must be the current one,
            # whose template directories the block's overridable templates are looked up in.
            template = Engine.get_default().from_string("{% load recommender %}" + self.tag_source)
            values = dict(context or {})
            values.update(count=int(value["count"]), placement=str(value["placement"]))
            return mark_safe(template.render(Context(values)))
        except Exception:  # the tags catch their own failures; this guards the block itself
            logger.exception("recommender: the %s block failed; rendering nothing", type(self).__name__)
            return mark_safe("")


class RecommendedForYouBlock(RecommendationListBlock):
    """Personal recommendations for the reader (trending for a new visitor)."""

    tag_source = "{% recommended_for_you limit=count placement=placement %}"

    class Meta:
        label = "Recommended for you"
        icon = "pick"


class RelatedPagesBlock(RecommendationListBlock):
    """Pages like the page the block is on."""

    tag_source = "{% similar_items page limit=count placement=placement %}"

    class Meta:
        label = "Related pages"
        icon = "link"


class TrendingBlock(RecommendationListBlock):
    """What readers engage with most right now."""

    tag_source = "{% trending limit=count placement=placement %}"

    class Meta:
        label = "Trending"
        icon = "pick"


RECOMMENDATION_BLOCKS = [
    ("recommended_for_you", RecommendedForYouBlock()),
    ("related_pages", RelatedPagesBlock()),
    ("trending", TrendingBlock()),
]
"""The three blocks as StreamField children: ``StreamField([..., *RECOMMENDATION_BLOCKS])``."""
