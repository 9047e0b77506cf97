"""Cache keys for served lists and the per-identity generation that invalidates them.

A served list is cached under a key that already contains everything that should
change it (the identity's last event id, the model version, the arguments), so a
new event or a model swap needs no explicit invalidation. What does not show up
in those (feedback, opt-out, deletion) bumps the identity's *generation*, which
is part of the key too. Changes that concern everyone (an editorial rule, the
admin's tuning, an item unpublished or deleted) bump the site-wide generation,
which every key carries.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.core.cache import BaseCache, caches
from django.db.models.signals import post_delete, post_save

from recommender.conf import recommender_settings

logger = logging.getLogger(__name__)

PREFIX = "recommender"
GENERATION_TIMEOUT = 60 * 60 * 24 * 30


class SafeCache:
    """The configured cache, with an outage turned into cache misses instead of errors.

    Every read of a served list, every content save (the generation bump) and the
    model check go through the cache: a Redis restart must cost speed, never a page or
    a save. A failing ``get`` returns the default, ``set`` and ``delete`` do nothing,
    ``add`` answers True (go ahead: a debounce that can't be recorded must not stop
    the work it guards) and ``incr`` raises ValueError, as for a missing key.
    """

    def __init__(self, backend: BaseCache) -> None:
        self.backend = backend

    def _failed(self, operation: str) -> None:
        logger.warning("recommender cache %s failed; going on without the cache", operation, exc_info=True)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self.backend.get(key, default)
        except Exception:
            self._failed("get")
            return default

    def set(self, key: str, value: Any, timeout: Any = None) -> None:
        try:
            self.backend.set(key, value, timeout)
        except Exception:
            self._failed("set")

    def add(self, key: str, value: Any, timeout: Any = None) -> bool:
        try:
            return self.backend.add(key, value, timeout)
        except Exception:
            self._failed("add")
            return True

    def incr(self, key: str, delta: int = 1) -> int:
        try:
            return self.backend.incr(key, delta)
        except ValueError:
            raise
        except Exception as exc:
            self._failed("incr")
            raise ValueError(key) from exc

    def delete(self, key: str) -> None:
        try:
            self.backend.delete(key)
        except Exception:
            self._failed("delete")

    def clear(self) -> None:
        try:
            self.backend.clear()
        except Exception:
            self._failed("clear")


def cache() -> SafeCache:
    """The cache named by ``CACHE_ALIAS``, safe against an outage (see ``SafeCache``)."""
    return SafeCache(caches[recommender_settings.CACHE_ALIAS])


def identity_key(identity: Any) -> str:
    """A short stable string for an identity: ``u<user id>`` or ``v<visitor id>``."""
    if identity is None:
        return "anon"
    if identity.user_id is not None:
        return f"u{identity.user_id}"
    return f"v{identity.visitor_id}"


def _generation_key(identity: Any) -> str:
    return f"{PREFIX}:gen:{identity_key(identity)}"


def _site_key() -> str:
    return f"{PREFIX}:gen:*"


def generation(identity: Any) -> int:
    """The identity's current generation (0 until something bumped it)."""
    return int(cache().get(_generation_key(identity), 0))


def bump_generation(identity: Any) -> None:
    """Invalidate every cached list of this identity (feedback, opt-out, deletion)."""
    _bump(_generation_key(identity))


def bump_site_generation(**kwargs: Any) -> None:
    """Invalidate every cached list of everyone (a signal receiver, hence **kwargs)."""
    _bump(_site_key())


def _bump(key: str) -> None:
    store = cache()
    if not store.add(key, 1, GENERATION_TIMEOUT):
        try:
            store.incr(key)
        except ValueError:  # expired between add and incr (or the cache is down)
            store.set(key, 1, GENERATION_TIMEOUT)


def site_generation() -> int:
    """The site-wide generation: moves whenever something that shapes everyone's lists changed."""
    return int(cache().get(_site_key(), 0))


def list_key(kind: str, *parts: Any) -> str:
    """A cache key for one served list; the parts are hashed so any value is safe in any backend."""
    site = site_generation()
    digest = hashlib.sha1(repr((site, *parts)).encode()).hexdigest()
    return f"{PREFIX}:{kind}:{digest}"


# Rules and tuning change what everyone is served; an item's save may unpublish it; a tag
# accepted or removed moves items under tag rules and caps. Bulk writes (QuerySet.update,
# bulk_update) send no signal: the code that does them calls bump_site_generation().
_SENDERS = (
    "recommender.EditorialRule",
    "recommender.TuningSettings",
    "recommender.Item",
    "recommender.ItemTag",
)


def connect() -> None:
    """Move the site-wide generation on every save or delete of those models (``AppConfig.ready``)."""
    for sender in _SENDERS:
        post_save.connect(bump_site_generation, sender=sender, dispatch_uid=f"recommender_gen_{sender}")
        post_delete.connect(bump_site_generation, sender=sender, dispatch_uid=f"recommender_gen_d_{sender}")
