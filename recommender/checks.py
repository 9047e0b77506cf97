"""System checks for the ``RECOMMENDER`` setting and the middleware.

E001 not a dict · E002 unknown key · E003 bad event types/weights · E004 bad
PLACEMENTS · E005 a number out of bounds (or MAX_LIMIT < DEFAULT_LIMIT) · E006
ARTIFACT_STORAGE not in STORAGES · E007 ADAPTER not importable · E008 CACHE_ALIAS
not in CACHES · E009 another value of the wrong type (or a name not among its
choices) · W001 VisitorIdMiddleware missing · W002 a SQLite database whose write
transactions are not IMMEDIATE.

Types, bounds and choices come from the declaration in
:mod:`recommender.settings_schema`; rules across settings or outside the value
(MAX_LIMIT >= DEFAULT_LIMIT, an alias that must exist) are written here.

They read ``settings.RECOMMENDER`` directly rather than through
``recommender_settings``, so a broken value is reported with a hint instead of
raising at first use.
"""

from __future__ import annotations

import difflib
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.utils.module_loading import import_string

from recommender.conf import DEFAULTS
from recommender.middleware import VisitorIdMiddleware
from recommender.settings_schema import SETTINGS, is_number

MIDDLEWARE_PATH = "recommender.middleware.VisitorIdMiddleware"

# Settings checked by a rule of their own, with a message that says more than their type.
OWN_CHECKS = frozenset({"EVENT_TYPES", "EXTRA_EVENT_TYPES", "ARTIFACT_STORAGE", "ADAPTER", "CACHE_ALIAS"})


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
        *_declared(merged),
        *_limits(merged),
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


@register()
def check_sqlite_writes(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Concurrent event posts on SQLite fail ("database is locked") unless writes begin IMMEDIATE."""
    return sqlite_write_warnings(settings.DATABASES)


def sqlite_write_warnings(databases: dict[str, dict[str, Any]]) -> list[CheckMessage]:
    """W002 for every SQLite database whose write transactions would not begin IMMEDIATE."""
    return [
        Warning(
            f"DATABASES[{alias!r}] is SQLite without OPTIONS['transaction_mode'] = 'IMMEDIATE'.",
            hint="Two tracker posts at once then fail with 'database is locked'. Set "
            '"OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20, '
            '"init_command": "PRAGMA journal_mode=WAL;"} (see project/settings.py).',
            id="recommender.W002",
        )
        for alias, db in databases.items()
        if db.get("ENGINE") == "django.db.backends.sqlite3"
        and str((db.get("OPTIONS") or {}).get("transaction_mode", "")).upper() != "IMMEDIATE"
    ]


def _is_visitor_middleware(path: str) -> bool:
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
            hint = f"Did you mean {close[0]!r}?" if close else "See docs/settings.md for the settings."
            errors.append(Error(f"RECOMMENDER has an unknown key {key!r}.", hint=hint, id="recommender.E002"))
    return errors


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
            if not isinstance(name, str) or not name or len(name) > 32 or not is_number(weight):
                errors.append(
                    Error(
                        f"RECOMMENDER[{key!r}][{name!r}] = {weight!r}: an event type is a name of at most "
                        "32 characters with a numeric weight.",
                        hint="A weight <= 0 keeps the event for analytics only.",
                        id="recommender.E003",
                    )
                )
    return errors


def _declared(merged: dict[str, Any]) -> list[CheckMessage]:
    """Each value against its declared type, bounds and choices (E004 PLACEMENTS, E005 numbers, else E009)."""
    errors = []
    for name, setting in SETTINGS.items():
        problem = None if name in OWN_CHECKS else setting.problem(merged[name])
        if problem is None:
            continue
        if name == "PLACEMENTS":
            check_id = "recommender.E004"
        elif setting.type in (int, float):
            check_id = "recommender.E005"
        else:
            check_id = "recommender.E009"
        errors.append(
            Error(
                f"RECOMMENDER[{name!r}] = {merged[name]!r} is invalid: it {problem}.",
                hint=f"The default is {setting.default!r}.",
                id=check_id,
            )
        )
    return errors


def _limits(merged: dict[str, Any]) -> list[CheckMessage]:
    default_limit, max_limit = merged["DEFAULT_LIMIT"], merged["MAX_LIMIT"]
    if is_number(default_limit) and is_number(max_limit) and max_limit < default_limit:
        return [
            Error(
                f"RECOMMENDER['MAX_LIMIT'] ({max_limit}) is smaller than DEFAULT_LIMIT ({default_limit}).",
                hint="MAX_LIMIT >= DEFAULT_LIMIT >= 1.",
                id="recommender.E005",
            )
        ]
    return []


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
