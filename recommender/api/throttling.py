"""Request rates for the recommender API: per account, per visitor id, and per IP as a ceiling.

Rates come from ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (scopes ``recommender_user``,
``recommender_visitor`` and ``recommender_anon``); a host that sets none still gets sane
defaults instead of DRF's ImproperlyConfigured on the first request.

Readers behind one office NAT or one load balancer share an IP, so the IP bucket is a
wide ceiling (a visitor id is free to drop, an IP is not) and each visitor id has a
bucket of its own. Behind a proxy, set ``REST_FRAMEWORK["NUM_PROXIES"]`` to the number
of proxies in front of Django: the client IP is then read from ``X-Forwarded-For``.
Left unset, the IP is REMOTE_ADDR (never a header a client can forge), so behind a
proxy every request seems to come from the proxy and all share one IP bucket.
"""

from __future__ import annotations

import logging
from typing import Any

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle

from recommender.identity import identity_from_request

logger = logging.getLogger(__name__)


class _RateWithDefault:
    default_rate = ""

    def get_rate(self) -> str | None:
        return self.THROTTLE_RATES.get(self.scope, self.default_rate)  # type: ignore[attr-defined]

    def allow_request(self, request: Request, view: Any) -> bool:
        """Let the request through when the cache that keeps the counts is down: an outage is no 500."""
        try:
            return super().allow_request(request, view)  # type: ignore[misc]
        except Exception:
            logger.warning("throttle cache unavailable; request allowed", exc_info=True)
            return True


class RecommenderAnonThrottle(_RateWithDefault, AnonRateThrottle):
    """Anonymous requests, keyed by client IP: the ceiling for everyone behind one address."""

    scope = "recommender_anon"
    default_rate = "1200/min"

    def get_ident(self, request: Request) -> str:
        """The client IP: REMOTE_ADDR unless ``NUM_PROXIES`` says which X-Forwarded-For entry to trust.

        DRF with ``NUM_PROXIES`` unset keys on the whole X-Forwarded-For header, which any
        client can set: a fresh value per request would be a fresh bucket.
        """
        if api_settings.NUM_PROXIES is None:
            return request.META.get("REMOTE_ADDR", "")
        return super().get_ident(request)


class RecommenderVisitorThrottle(_RateWithDefault, SimpleRateThrottle):
    """Anonymous requests of one visitor id, so neighbours behind one IP keep their own bucket."""

    scope = "recommender_visitor"
    default_rate = "120/min"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        visitor_id = identity_from_request(request).visitor_id
        if not visitor_id:
            return None  # no id: the IP bucket alone applies
        return self.cache_format % {"scope": self.scope, "ident": visitor_id}


class RecommenderUserThrottle(_RateWithDefault, UserRateThrottle):
    """Signed-in users, keyed by user id; anonymous requests are left to the anon throttle."""

    scope = "recommender_user"
    default_rate = "600/min"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not (request.user and request.user.is_authenticated):
            return None
        return super().get_cache_key(request, view)
