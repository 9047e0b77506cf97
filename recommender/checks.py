"""System checks for the ``RECOMMENDER`` setting and the middleware.

E001 not a dict · E002 unknown key · E003 bad event types/weights · E004 bad
PLACEMENTS · E005 a number out of bounds (or MAX_LIMIT < DEFAULT_LIMIT) · E006
ARTIFACT_STORAGE not in STORAGES · E007 ADAPTER not importable · E008 CACHE_ALIAS
not in CACHES · W001 VisitorIdMiddleware missing.

They read ``settings.RECOMMENDER`` directly rather than through
``recommender_settings``, so a broken value is reported with a hint instead of
raising at first use.
"""

from __future__ import annotations

import difflib
import math
import numbers
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.utils.module_loading import import_string

from recommender.conf import DEFAULTS

MIDDLEWARE_PATH = "recommender.middleware.VisitorIdMiddleware"

# key -> (minimum, maximum); None means unbounded. Integers where the default is one.
BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "EMBED_BATCH_SIZE": (1, None),
    "TAG_SUGGESTION_THRESHOLD": (0, 1),
    "TAG_SUGGESTIONS_PER_ITEM": (0, None),
    "MAX_EVENTS_PER_BATCH": (1, None),
    "HISTORY_LENGTH": (1, None),
    "VISITOR_COOKIE_AGE": (1, None),
    "DEFAULT_LIMIT": (1, None),
    "MAX_LIMIT": (1, None),
    "CANDIDATES": (1, None),
    "MODEL_WEIGHT": (0, None),
    "FRESHNESS_WEIGHT": (0, None),
    "FRESHNESS_HALF_LIFE_HOURS": (0.001, None),
    "POPULARITY_WEIGHT": (0, None),
    "DIVERSITY_LAMBDA": (0, 1),
    "MAX_PER_TAG": (1, None),
    "TRENDING_WINDOW_HOURS": (1, None),
    "CACHE_TIMEOUT": (0, None),
    "MODEL_CHECK_INTERVAL": (0, None),
    "MIN_INTERACTIONS_TO_TRAIN": (0, None),
    "GATE_TOLERANCE": (0, None),
    "LOG_RETENTION_DAYS": (1, None),
    "KEEP_INACTIVE_VERSIONS": (0, None),
    "SERVING_THREADS": (1, None),
    "NEW_ITEM_BOOST": (-20, 20),
}


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Validate ``RECOMMENDER``: its type, its keys and each value that has a rule."""
    user = getattr(settings, "RECOMMENDER", {})
    if user is None:
        user = {}
    if not isinstance(user, dict):
        return [
            Error(
                f"RECOMMENDER must be a dict, got {type(user).__name__}.",
                hint='Write RECOMMENDER = {"PLACEMENTS": [...], ...} in your settings.',
                id="recommender.E001",
            )
        ]
    merged = {**DEFAULTS, **user}
    return [
        *_unknown_keys(user),
        *_event_types(merged),
        *_placements(merged),
        *_bounds(merged),
        *_storage_and_cache(merged),
        *_adapter(merged),
    ]


@register()
def check_middleware(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Without the visitor middleware anonymous visitors have no history."""
    for path in getattr(settings, "MIDDLEWARE", None) or []:
        if path == MIDDLEWARE_PATH or _is_visitor_middleware(path):
            return []
    return [
        Warning(
            f"{MIDDLEWARE_PATH} is not in MIDDLEWARE.",
            hint="Add it after AuthenticationMiddleware: visitors then get a history, merged at login.",
            id="recommender.W001",
        )
    ]


def _is_visitor_middleware(path: str) -> bool:
    from recommender.middleware import VisitorIdMiddleware

    try:
        cls = import_string(path)
    except ImportError:
        return False
    return isinstance(cls, type) and issubclass(cls, VisitorIdMiddleware)


def _unknown_keys(user: dict[str, Any]) -> list[CheckMessage]:
    errors = []
    for key in user:
        if key not in DEFAULTS:
            close = difflib.get_close_matches(str(key), DEFAULTS, n=1)
            hint = f"Did you mean {close[0]!r}?" if close else "See recommender/conf.py for the settings."
            errors.append(Error(f"RECOMMENDER has an unknown key {key!r}.", hint=hint, id="recommender.E002"))
    return errors


def _is_number(value: Any) -> bool:
    """A real number that compares: NaN passes every bound check unnoticed."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isnan(value)


def _event_types(merged: dict[str, Any]) -> list[CheckMessage]:
    errors = []
    for key in ("EVENT_TYPES", "EXTRA_EVENT_TYPES"):
        value = merged[key]
        if not isinstance(value, dict):
            errors.append(
                Error(
                    f"RECOMMENDER[{key!r}] must map event type -> weight, not {type(value).__name__}.",
                    hint='For example {"bookmark": 1.5}.',
                    id="recommender.E003",
                )
            )
            continue
        for name, weight in value.items():
            if not isinstance(name, str) or not name or len(name) > 32 or not _is_number(weight):
                errors.append(
                    Error(
                        f"RECOMMENDER[{key!r}][{name!r}] = {weight!r}: an event type is a name of at most "
                        "32 characters with a numeric weight.",
                        hint="A weight <= 0 keeps the event for analytics only.",
                        id="recommender.E003",
                    )
                )
    return errors


def _placements(merged: dict[str, Any]) -> list[CheckMessage]:
    value = merged["PLACEMENTS"]
    if isinstance(value, list | tuple) and value and all(isinstance(p, str) and p for p in value):
        return []
    return [
        Error(
            f"RECOMMENDER['PLACEMENTS'] must be a non-empty list of names, got {value!r}.",
            hint='For example ["default", "home", "article"].',
            id="recommender.E004",
        )
    ]


def _bounds(merged: dict[str, Any]) -> list[CheckMessage]:
    errors = []
    for key, (low, high) in BOUNDS.items():
        value = merged.get(key)
        integral = isinstance(DEFAULTS.get(key), int) and not isinstance(DEFAULTS.get(key), bool)
        if key in ("MAX_PER_TAG", "SERVING_THREADS") and value is None:
            continue
        wrong_type = not _is_number(value) or (integral and not isinstance(value, int))
        if wrong_type or (low is not None and value < low) or (high is not None and value > high):
            kind = "an integer" if integral else "a number"
            rule = f"between {low} and {high}" if high is not None else f">= {low}"
            errors.append(
                Error(
                    f"RECOMMENDER[{key!r}] = {value!r} is invalid: it must be {kind} {rule}.",
                    hint=f"The default is {DEFAULTS.get(key)!r}.",
                    id="recommender.E005",
                )
            )
    default_limit, max_limit = merged["DEFAULT_LIMIT"], merged["MAX_LIMIT"]
    if _is_number(default_limit) and _is_number(max_limit) and max_limit < default_limit:
        errors.append(
            Error(
                f"RECOMMENDER['MAX_LIMIT'] ({max_limit}) is smaller than DEFAULT_LIMIT ({default_limit}).",
                hint="MAX_LIMIT >= DEFAULT_LIMIT >= 1.",
                id="recommender.E005",
            )
        )
    return errors


def _storage_and_cache(merged: dict[str, Any]) -> list[CheckMessage]:
    errors = []
    storages = getattr(settings, "STORAGES", {}) or {}
    if merged["ARTIFACT_STORAGE"] not in storages:
        errors.append(
            Error(
                f"RECOMMENDER['ARTIFACT_STORAGE'] = {merged['ARTIFACT_STORAGE']!r} is not a STORAGES alias.",
                hint=f"Use one of {sorted(storages)} or add it to STORAGES.",
                id="recommender.E006",
            )
        )
    caches = getattr(settings, "CACHES", {}) or {}
    if merged["CACHE_ALIAS"] not in caches:
        errors.append(
            Error(
                f"RECOMMENDER['CACHE_ALIAS'] = {merged['CACHE_ALIAS']!r} is not an alias in CACHES.",
                hint=f"Use one of {sorted(caches)}.",
                id="recommender.E008",
            )
        )
    return errors


def _adapter(merged: dict[str, Any]) -> list[CheckMessage]:
    path = merged["ADAPTER"]
    if not isinstance(path, str):
        return []  # a class given directly is used as is
    try:
        import_string(path)
    except ImportError as exc:
        return [
            Error(
                f"RECOMMENDER['ADAPTER'] = {path!r} can't be imported: {exc}.",
                hint="Give the dotted path of a DefaultRecommenderAdapter subclass.",
                id="recommender.E007",
            )
        ]
    return []
