"""The ``RECOMMENDER_WAGTAIL`` setting: which page types are content.

A setting of its own, not a key of ``RECOMMENDER``: the core app validates its
keys and knows nothing of Wagtail.
"""

from __future__ import annotations

from django.conf import settings

DEFAULTS = {
    # "app_label.ModelName" of the page types that become items; None: every page type
    # that has a text body (a StreamField, a rich text field or a text field).
    "PAGE_TYPES": None,
}


def wagtail_setting(name: str):
    """One ``RECOMMENDER_WAGTAIL`` value, or its default."""
    return (getattr(settings, "RECOMMENDER_WAGTAIL", None) or {}).get(name, DEFAULTS[name])
