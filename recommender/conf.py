"""One settings object for the app, read from ``settings.RECOMMENDER``.

Modelled on DRF's ``api_settings``: defaults come from the declaration of every
setting (:mod:`recommender.settings_schema`), the host overrides any key
in ``RECOMMENDER = {...}``, dotted paths are imported lazily, and the cache is
dropped on ``setting_changed`` so ``override_settings`` works in tests. Run-time
tuning (the admin) is layered on top through :func:`recommender.tuning`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from recommender.settings_schema import SETTINGS

# Derived from the declaration: a default is written once, in recommender.settings_schema.
DEFAULTS: dict[str, Any] = {name: setting.default for name, setting in SETTINGS.items()}
IMPORT_STRINGS: tuple[str, ...] = tuple(name for name, setting in SETTINGS.items() if setting.import_string)


class RecommenderSettings:
    """Attribute access to ``RECOMMENDER`` settings with defaults and lazy imports."""

    def __init__(self, defaults: dict[str, Any] | None = None, import_strings: tuple[str, ...] = ()) -> None:
        self.defaults = defaults or DEFAULTS
        self.import_strings = import_strings
        self._cached: set[str] = set()

    @property
    def user_settings(self) -> dict[str, Any]:
        if not hasattr(self, "_user_settings"):
            self._user_settings = getattr(settings, "RECOMMENDER", {}) or {}
        return self._user_settings

    def __getattr__(self, attr: str) -> Any:
        if attr not in self.defaults:
            raise AttributeError(f"Invalid recommender setting: {attr!r}")
        value = self.user_settings.get(attr, self.defaults[attr])
        if attr in self.import_strings and isinstance(value, str):
            value = import_string(value)
        self._cached.add(attr)
        setattr(self, attr, value)
        return value

    def event_weights(self) -> dict[str, float]:
        """Built-in and host-defined event types with their weights."""
        return {**self.EVENT_TYPES, **self.EXTRA_EVENT_TYPES}

    def reload(self) -> None:
        for attr in self._cached:
            delattr(self, attr)
        self._cached.clear()
        if hasattr(self, "_user_settings"):
            delattr(self, "_user_settings")


recommender_settings = RecommenderSettings(DEFAULTS, IMPORT_STRINGS)


def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "RECOMMENDER":
        recommender_settings.reload()


setting_changed.connect(_reload)
