"""Editing run-time tuning: what may be tuned, validation, saving with an audit row, and previews.

``TuningSettings.values`` holds only the keys that differ from ``RECOMMENDER``
settings, so a key an editor sets back to the settings value falls back to
settings again (and follows them when the host changes its defaults).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from recommender.conf import recommender_settings
from recommender.identity import Identity
from recommender.models import Interaction, Item, TuningChange, TuningSettings
from recommender.serving.recommend import recommend
from recommender.tuning import override_tuning

FALLBACK_SOURCES = ("trending", "fresh")


@dataclass(frozen=True)
class Tunable:
    """One knob of the tuning page: its ``RECOMMENDER`` key, type, bounds and the help an editor reads."""

    key: str
    label: str
    kind: str  # float | int | bool | order | weights | schedule
    group: str
    minimum: float | None = None
    maximum: float | None = None
    help: str = ""


TUNABLES: tuple[Tunable, ...] = (
    Tunable("MODEL_WEIGHT", "Model score weight", "float", "Blend", 0, 100, "Weight of the model's score."),
    Tunable(
        "FRESHNESS_WEIGHT", "Freshness weight", "float", "Blend", 0, 100, "Weight of the item's recency."
    ),
    Tunable(
        "FRESHNESS_HALF_LIFE_HOURS",
        "Freshness half-life (hours)",
        "float",
        "Blend",
        0.1,
        24 * 365,
        "Age at which the freshness bonus has halved.",
    ),
    Tunable(
        "POPULARITY_WEIGHT", "Popularity weight", "float", "Blend", 0, 100, "Weight of trending engagement."
    ),
    Tunable(
        "DIVERSITY_LAMBDA",
        "Diversity λ",
        "float",
        "Diversity",
        0,
        1,
        "1 = relevance only; lower values trade relevance for variety (MMR).",
    ),
    Tunable(
        "MAX_PER_TAG",
        "Max items per tag",
        "int",
        "Diversity",
        1,
        50,
        "Cap on items sharing a tag in one list.",
    ),
    Tunable(
        "EXCLUDE_SEEN", "Exclude seen items", "bool", "Filtering", help="Never show items the person opened."
    ),
    Tunable(
        "FALLBACK_ORDER",
        "Fallback order",
        "order",
        "Filtering",
        help=f"Comma-separated, first used first; from: {', '.join(FALLBACK_SOURCES)}.",
    ),
    Tunable("TRENDING_WINDOW_HOURS", "Trending window (hours)", "float", "Filtering", 1, 24 * 90),
    Tunable(
        "EVENT_TYPES",
        "Event-type weights",
        "weights",
        "Training",
        -10,
        10,
        "Weight of each event type in training and interest profiles; 0 or less = not a positive signal.",
    ),
    Tunable(
        "SCHEDULE",
        "Retraining schedule (seconds)",
        "schedule",
        "Training",
        60,
        60 * 60 * 24 * 30,
        "Seconds between runs of each periodic job.",
    ),
    Tunable(
        "GATE_TOLERANCE",
        "Gate tolerance",
        "float",
        "Training",
        0,
        1,
        "Largest drop in validation NDCG@10 a new version may show and still be activated.",
    ),
)
TUNABLES_BY_KEY = {t.key: t for t in TUNABLES}


def setting_defaults() -> dict[str, Any]:
    """The value of each tunable in ``RECOMMENDER`` settings (what an unset key falls back to)."""
    defaults = {t.key: getattr(recommender_settings, t.key) for t in TUNABLES}
    defaults["EVENT_TYPES"] = recommender_settings.event_weights()
    defaults["FALLBACK_ORDER"] = list(defaults["FALLBACK_ORDER"])
    return defaults


def tuning_row() -> TuningSettings:
    """The single tuning row (created empty the first time)."""
    row = TuningSettings.objects.order_by("pk").first()
    return row or TuningSettings.objects.create(values={})


def effective_values(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Settings with the overrides laid over them, key by key (event weights merged per type)."""
    if overrides is None:
        overrides = tuning_row().values or {}
    values = setting_defaults()
    for key, value in overrides.items():
        if key not in TUNABLES_BY_KEY:
            continue
        if isinstance(values[key], dict) and isinstance(value, dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return values


def validate_tuning(values: dict[str, Any]) -> dict[str, Any]:
    """Check a complete set of values (types, bounds, known names); return them normalised.

    Raises ``ValidationError`` with a dict of messages per key, as a form expects.
    """
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    defaults = setting_defaults()
    for tunable in TUNABLES:
        if tunable.key not in values:
            clean[tunable.key] = defaults[tunable.key]
            continue
        try:
            clean[tunable.key] = _clean_value(tunable, values[tunable.key], defaults[tunable.key])
        except (TypeError, ValueError) as exc:
            errors.setdefault(tunable.key, []).append(str(exc))
    if errors:
        raise ValidationError(errors)
    return clean


def _in_bounds(tunable: Tunable, value: float, name: str = "") -> None:
    label = f"{name}: " if name else ""
    if tunable.minimum is not None and value < tunable.minimum:
        raise ValueError(f"{label}must be at least {tunable.minimum:g}")
    if tunable.maximum is not None and value > tunable.maximum:
        raise ValueError(f"{label}must be at most {tunable.maximum:g}")


def _clean_value(tunable: Tunable, value: Any, default: Any) -> Any:
    if tunable.kind == "bool":
        if not isinstance(value, bool):
            raise TypeError("must be true or false")
        return value
    if tunable.kind in ("float", "int"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError("must be a number")
        if tunable.kind == "int" and int(value) != value:
            raise ValueError("must be a whole number")
        _in_bounds(tunable, value)
        return int(value) if tunable.kind == "int" else float(value)
    if tunable.kind == "order":
        names = [str(n).strip() for n in value if str(n).strip()]
        unknown = [n for n in names if n not in FALLBACK_SOURCES]
        if unknown:
            raise ValueError(
                f"unknown fallback {', '.join(unknown)}; choose from {', '.join(FALLBACK_SOURCES)}"
            )
        if len(set(names)) != len(names):
            raise ValueError("each fallback may appear once")
        if not names:
            raise ValueError("give at least one fallback")
        return names
    if not isinstance(value, dict):
        raise TypeError("must be a mapping")
    unknown = sorted(set(value) - set(default))  # event types and jobs are the ones settings define
    if unknown:
        raise ValueError(f"unknown name {', '.join(unknown)}")
    cleaned = {}
    for name, number in value.items():
        if number == default.get(name):
            continue  # the settings value stands as it is (it may be a crontab or None)
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise TypeError(f"{name}: must be a number")
        _in_bounds(tunable, number, name)
        cleaned[name] = int(number) if tunable.kind == "schedule" else float(number)
    return {**default, **cleaned}


def overrides_from(values: dict[str, Any]) -> dict[str, Any]:
    """Only what differs from settings (for mappings, only the entries that differ)."""
    defaults = setting_defaults()
    overrides: dict[str, Any] = {}
    for key, value in values.items():
        default = defaults[key]
        if isinstance(default, dict):
            changed = {k: v for k, v in value.items() if default.get(k) != v}
            if changed:
                overrides[key] = changed
        elif value != default:
            overrides[key] = value
    return overrides


@transaction.atomic
def save_tuning(values: dict[str, Any], *, by: Any = None) -> TuningChange | None:
    """Validate and store new values; record who changed what from what to what.

    Returns the ``TuningChange`` written, or None when nothing changed.
    """
    new = validate_tuning(values)
    row = TuningSettings.objects.select_for_update().filter(pk=tuning_row().pk).get()
    old = effective_values(row.values or {})
    before, after = {}, {}
    for key in sorted(k for k in new if new[k] != old[k]):
        if isinstance(new[key], dict):  # only the entries that changed (a crontab entry is not JSON)
            entries = [e for e in new[key] if new[key][e] != old[key].get(e)]
            before[key] = {e: old[key].get(e) for e in entries}
            after[key] = {e: new[key][e] for e in entries}
        else:
            before[key], after[key] = old[key], new[key]
    if not after:
        return None
    kept = {k: v for k, v in (row.values or {}).items() if k not in TUNABLES_BY_KEY}  # set outside this page
    row.values = {**kept, **overrides_from(new)}
    row.updated_by = by if getattr(by, "pk", None) else None
    row.save()
    return TuningChange.objects.create(changed_by=row.updated_by, before=before, after=after)


@dataclass(frozen=True)
class PreviewRow:
    """One line of a previewed list, ready for JSON."""

    position: int
    item_id: int
    title: str
    url: str
    admin_url: str
    score: float
    reason: str
    because: str


def _rows(recommendations: Any) -> list[dict[str, Any]]:
    rows = []
    for rec in recommendations:
        if rec.because is not None:
            because = f"Because you read {rec.because}"
        elif rec.because_tag is not None:
            because = f"Because you follow {rec.because_tag}"
        else:
            because = ""
        try:
            admin_url = reverse("admin:recommender_item_change", args=[rec.item.pk])
        except NoReverseMatch:
            admin_url = ""
        row = PreviewRow(
            position=rec.position,
            item_id=rec.item.pk,
            title=str(rec.item),
            url=rec.item.url,
            admin_url=admin_url,
            score=round(float(rec.score), 4),
            reason=rec.reason,
            because=because,
        )
        rows.append(asdict(row))
    return rows


class _Rollback(Exception):
    """Raised to undo everything a preview wrote (pasted history, log rows)."""


def preview(
    values: dict[str, Any],
    *,
    user_id: int | None = None,
    item_ids: list[int] | None = None,
    placement: str = "default",
    limit: int = 10,
    include_current: bool = True,
) -> dict[str, Any]:
    """The list someone gets now and the list they would get under ``values``, without side effects.

    The subject is a user, or a pasted sequence of item ids played as a fresh
    visitor's history (oldest first). Both lists are computed in a transaction that
    is rolled back, so neither the pasted history nor the ``RecommendationLog``
    rows ``recommend()`` writes survive; ``use_cache=False`` keeps the result cache
    out of it (nothing read from it, nothing written to it).
    ``include_current=False`` skips the saved-tuning list (the page already shows it
    while only the edited values change), halving the work of a keystroke.
    """
    new = validate_tuning(values)
    current = effective_values()
    result: dict[str, Any] = {}
    try:
        with transaction.atomic():
            if user_id is not None:
                identity = Identity(user_id=user_id, visitor_id="")
            else:
                identity = Identity(user_id=None, visitor_id=f"preview-{uuid.uuid4().hex}")
                _play_history(identity.visitor_id, item_ids or [])
            history = (
                Interaction.objects.for_identity(identity.user_id, identity.visitor_id)
                .exclude(event_type=Interaction.EventType.IMPRESSION)
                .order_by("-timestamp", "-id")
                .select_related("item")[:10]
            )
            result["history"] = [
                {"item_id": e.item_id, "title": str(e.item), "event": e.event_type} for e in history
            ]
            runs = [("current", current)] if include_current else []
            for name, tuning_values in [*runs, ("edited", new)]:
                with override_tuning(tuning_values):
                    recs = recommend(identity, placement=placement, limit=limit, use_cache=False)
                result[name] = {"items": _rows(recs), "model_version": recs.model_version}
            raise _Rollback
    except _Rollback:
        pass
    return result


def _play_history(visitor_id: str, item_ids: list[int]) -> None:
    """Store the pasted sequence as views of a throwaway visitor, one minute apart, ending now."""
    known = set(Item.objects.filter(pk__in=item_ids).values_list("pk", flat=True))
    missing = [pk for pk in item_ids if pk not in known]
    if missing:
        raise ValidationError({"items": [f"Unknown item id(s): {', '.join(map(str, missing))}"]})
    now = timezone.now()
    Interaction.objects.bulk_create(
        Interaction(
            event_id=uuid.uuid4().hex,
            visitor_id=visitor_id,
            item_id=pk,
            event_type=Interaction.EventType.VIEW,
            timestamp=now - timedelta(minutes=len(item_ids) - n),
        )
        for n, pk in enumerate(item_ids)
    )
