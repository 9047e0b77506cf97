"""The adapter a Wagtail site names in ``RECOMMENDER["ADAPTER"]`` so page privacy holds in every list."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from recommender.adapter import DefaultRecommenderAdapter, Visibility
from recommender.contrib.wagtail.visibility import page_visibility


class WagtailRecommenderAdapter(DefaultRecommenderAdapter):
    """The default policies, plus Wagtail's: view restrictions and the request's site (see ``visibility``).

    A host with its own adapter subclasses this one instead of the default.
    """

    def visibility(self, request: HttpRequest | None, identity: Any) -> Visibility:
        return page_visibility(request, identity)
