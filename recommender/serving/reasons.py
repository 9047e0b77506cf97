"""The sentence that tells a reader why an item is in their list.

Only what is true: the read the model's pick depends on most ("Because you read …"),
else the topic whose reads it depends on ("Because you read about …"), else the
item's age when that is what the model's pick depends on most ("New in Climate"), else
that a typical reader would be given it too ("Popular in Climate"), else why a
non-personal item is there ("Trending in Football", "New in Climate"). The template
tag and the admin's tuning preview both show this text.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _


def reason_text(rec: Any) -> str:
    """The explanation of one ``RecommendedItem``, translated."""
    if rec.because is not None:
        return _("Because you read “%(title)s”") % {"title": rec.because.title}
    if rec.because_tag is not None:
        return _("Because you read about %(tag)s") % {"tag": rec.because_tag.name}
    # a model pick for being new, or one that any reader would get
    reason = "fresh" if rec.fresh else "popular" if rec.popular else rec.reason
    if rec.topic is not None and reason in ("trending", "fresh", "popular"):
        text = {
            "trending": _("Trending in %(tag)s"),
            "fresh": _("New in %(tag)s"),
            "popular": _("Popular in %(tag)s"),
        }[reason]
        return text % {"tag": rec.topic.name}
    return {
        "trending": _("Trending"),
        "fresh": _("New"),
        "editorial": _("Editor's pick"),
        "similar_to_context": _("Related"),
        "personalized": _("Recommended for you"),
    }.get(reason, _("Popular"))
