"""A page editor panel: how the page does in recommendations, with a link to pin or block it.

Add ``RecommendationPanel()`` to a page type's panels (the demo's articles do);
every page also gets a "Recommendations" button in its header without it.
"""

from __future__ import annotations

from typing import Any

from wagtail.admin.panels import Panel

from recommender.contrib.wagtail.performance import PagePerformance, page_performance


class RecommendationPanel(Panel):
    """Impressions, clicks and CTR of the page in recommendation lists, and its pin/block rules."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("heading", "Recommendations")
        super().__init__(**kwargs)

    class BoundPanel(Panel.BoundPanel):
        template_name = "recommender_wagtail/panel.html"

        def get_context_data(self, parent_context: Any = None) -> dict[str, Any]:
            context = super().get_context_data(parent_context)
            page = self.instance
            saved = page is not None and page.pk is not None
            context["stats"] = page_performance(page) if saved else PagePerformance(item=None)
            context["page_id"] = page.pk if saved else None
            return context
