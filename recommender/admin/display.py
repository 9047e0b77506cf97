"""How the admin pages write people, numbers and times, so every list and detail page reads the same.

Raw values (a user's primary key, a metric with sixteen digits, a 32-character
visitor token) mean little to an editor and widen tables past the screen.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

VISITOR_SHOWN = 8  # characters of a visitor token shown in lists; the whole token is in the tooltip


def identity(user: Any, visitor_id: str) -> str | SafeString:
    """A signed-in person by username; a visitor by the start of their token (the whole in a tooltip)."""
    if user is not None:
        return user.get_username()
    if len(visitor_id) <= VISITOR_SHOWN + 1:
        return f"visitor {visitor_id}" if visitor_id else "-"
    return format_html('<span title="{}">visitor {}…</span>', visitor_id, visitor_id[:VISITOR_SHOWN])


def number(value: Any) -> str:
    """Counts with thousands separators, other numbers to four significant digits; anything else as is."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def moment(value: datetime | None) -> str:
    """A date and time in the current time zone, short enough for a list column: 2024-12-01 14:05."""
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M}" if value else "-"
