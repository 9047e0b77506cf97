"""System checks: page privacy only holds with the Wagtail adapter and the core app installed first.

E001 the adapter does not apply page visibility · E002 ``recommender`` is not installed before this app.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from recommender.conf import recommender_settings

APP = "recommender.contrib.wagtail"


@register()
def check_wagtail_integration(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Errors, not warnings: either mistake would serve restricted pages to anybody."""
    from recommender.contrib.wagtail.adapter import WagtailRecommenderAdapter

    adapter_path = f"{WagtailRecommenderAdapter.__module__}.{WagtailRecommenderAdapter.__name__}"

    errors: list[CheckMessage] = []
    adapter = recommender_settings.ADAPTER
    if not (isinstance(adapter, type) and issubclass(adapter, WagtailRecommenderAdapter)):
        errors.append(
            Error(
                "The recommender's adapter ignores Wagtail's view restrictions and sites.",
                hint=f'Set RECOMMENDER["ADAPTER"] = "{adapter_path}" (or a subclass of it).',
                id="recommender_wagtail.E001",
            )
        )
    apps_ = list(settings.INSTALLED_APPS)
    if "recommender" not in apps_ or apps_.index("recommender") > apps_.index(APP):
        errors.append(
            Error(
                f'"recommender" must be in INSTALLED_APPS before "{APP}".',
                hint="The core app's receivers must be connected before pages are registered.",
                id="recommender_wagtail.E002",
            )
        )
    return errors
