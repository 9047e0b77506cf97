"""Request rates for the recommender API: per IP for anonymous visitors, per account for users.

Rates come from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (scopes ``recommender_anon``
and ``recommender_user``); a host that sets neither still gets sane defaults instead
of DRF's ImproperlyConfigured on the first request.
"""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


class _RateWithDefault:
    default_rate = ""

    def get_rate(self) -> str | None:
        return self.THROTTLE_RATES.get(self.scope, self.default_rate)  # type: ignore[attr-defined]


class RecommenderAnonThrottle(_RateWithDefault, AnonRateThrottle):
    """Anonymous requests, keyed by client IP (a visitor id is free to drop, an IP is not)."""

    scope = "recommender_anon"
    default_rate = "120/min"


class RecommenderUserThrottle(_RateWithDefault, UserRateThrottle):
    """Signed-in users, keyed by user id; anonymous requests are left to the anon throttle."""

    scope = "recommender_user"
    default_rate = "600/min"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not (request.user and request.user.is_authenticated):
            return None
        return super().get_cache_key(request, view)
