"""Editing run-time tuning: the form generated from the declaration, saving with an audit row, and previews.

What may be tuned, with its type, bounds and help, is declared once in
:mod:`recommender.settings_schema` (``tunable=True``); the form's fields and the
validation of saved values are derived from it. ``TuningSettings.values`` holds
only the keys that differ from ``RECOMMENDER`` settings, so a key an editor sets
back to the settings value falls back to settings again (and follows them when the
host changes its defaults).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from recommender.conf import recommender_settings
from recommender.identity import Identity
from recommender.models import Interaction, Item, TuningChange, TuningSettings
from recommender.serving.reasons import reason_text
from recommender.serving.recommend import recommend
from recommender.settings_schema import TUNABLE, Setting
from recommender.tuning import override_tuning

TUNABLE_NAMES = frozenset(s.name for s in TUNABLE)


def setting_defaults() -> dict[str, Any]:
    """The value of each tunable in ``RECOMMENDER`` settings (what an unset key falls back to)."""
    defaults = {s.name: getattr(recommender_settings, s.name) for s in TUNABLE}
    defaults["EVENT_TYPES"] = recommender_settings.event_weights()
    return {k: list(v) if isinstance(v, tuple) else v for k, v in defaults.items()}


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
        if key not in TUNABLE_NAMES:
            continue
        if isinstance(values[key], dict) and isinstance(value, dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return values


def validate_tuning(values: dict[str, Any]) -> dict[str, Any]:
    """Check a complete set of values against the declaration; return them normalised.

    The form checks what an editor typed; this checks the Python values that reach
    ``save_tuning`` and ``preview`` by any road, with the same declared rules. Mappings
    may name only the entries settings define. Raises ``ValidationError`` with a dict
    of messages per key, as a form expects.
    """
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    defaults = setting_defaults()
    for setting in TUNABLE:
        key, default = setting.name, defaults[setting.name]
        value = values.get(key, default)
        if isinstance(default, dict) and isinstance(value, dict):
            unknown = sorted(set(value) - set(default))  # event types are the ones settings define
            if unknown:
                errors[key] = [f"unknown name {', '.join(map(str, unknown))}"]
                continue
            value = {**default, **value}
        if problem := setting.problem(value):
            errors[key] = [problem]
            continue
        clean[key] = _normalised(setting, value)
    if errors:
        raise ValidationError(errors)
    return clean


def _normalised(setting: Setting, value: Any) -> Any:
    if setting.type in (int, float):
        return setting.type(value)
    if setting.type is list:
        return list(value)
    if setting.type is dict and setting.entries:
        return {k: setting.entries(v) for k, v in value.items()}
    return value


class GreaterThanValidator(MinValueValidator):
    """``value > limit``: for an exclusive lower bound (a half-life is divided by, 0 is no half-life)."""

    message = "Ensure this value is greater than %(limit_value)s."

    def compare(self, a: Any, b: Any) -> bool:
        return a <= b


def form_field(setting: Setting, **options: Any) -> forms.Field:
    """The field of one tunable (or of one entry of a tunable mapping): type and bounds as declared."""
    kind = setting.entries if setting.type is dict else setting.type
    if kind is bool:
        return forms.BooleanField(required=False, **options)
    if kind is list:
        return forms.CharField(**options)  # comma-separated names, checked against the choices in clean()
    field_class = forms.IntegerField if kind is int else forms.FloatField
    field = field_class(
        min_value=None if setting.exclusive_min else setting.min, max_value=setting.max, **options
    )
    if setting.exclusive_min:
        field.validators.append(GreaterThanValidator(setting.min))
    return field


class TuningForm(forms.Form):
    """One field per tunable setting; a mapping (event weights) gets one field per entry.

    Field names are the ``RECOMMENDER`` keys, ``KEY__entry`` for mapping entries, so
    the JSON preview and the saved record speak the same names. Fieldsets follow the
    declared groups, alphabetically; fields keep the declaration's order within one.
    ``values`` holds the validated values once the form is valid.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        defaults = setting_defaults()
        self.values: dict[str, Any] = {}
        self.groups: dict[str, list[str]] = {}
        for setting in sorted(TUNABLE, key=lambda s: s.group):
            default = defaults[setting.name]
            names = []
            if isinstance(default, dict):
                for entry, value in default.items():
                    name = f"{setting.name}__{entry}"
                    self.fields[name] = form_field(
                        setting, label=f"{setting.label}: {entry}", help_text=f"Setting: {value}"
                    )
                    names.append(name)
            else:
                shown = ", ".join(default) if isinstance(default, list) else default
                self.fields[setting.name] = form_field(
                    setting, label=setting.label, help_text=f"{setting.help} Setting: {shown}"
                )
                names.append(setting.name)
            self.groups.setdefault(setting.group, []).extend(names)

    @classmethod
    def initial_from(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Form initial data from effective values (mappings spread over their entry fields)."""
        initial: dict[str, Any] = {}
        for key, value in values.items():
            if isinstance(value, dict):
                initial.update({f"{key}__{entry}": v for entry, v in value.items()})
            elif isinstance(value, list | tuple):
                initial[key] = ", ".join(value)
            else:
                initial[key] = value
        return initial

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        values: dict[str, Any] = {}
        for setting in TUNABLE:
            key = setting.name
            if setting.type is dict:
                prefix = f"{key}__"
                values[key] = {k[len(prefix) :]: v for k, v in data.items() if k.startswith(prefix)}
            elif setting.type is list:
                values[key] = [n.strip() for n in data[key].split(",") if n.strip()]
            else:
                values[key] = data[key]
        try:
            self.values = validate_tuning(values)
        except ValidationError as exc:
            for key, errors in exc.message_dict.items():
                self.add_error(key if key in self.fields else None, errors)
        return data

    def fieldsets(self) -> list[tuple[str, list[forms.BoundField]]]:
        """(group, bound fields) pairs, for the template's fieldsets."""
        return [(group, [self[name] for name in names]) for group, names in self.groups.items()]


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
        if isinstance(new[key], dict):  # only the entries that changed
            entries = [e for e in new[key] if new[key][e] != old[key].get(e)]
            before[key] = {e: old[key].get(e) for e in entries}
            after[key] = {e: new[key][e] for e in entries}
        else:
            before[key], after[key] = old[key], new[key]
    if not after:
        return None
    kept = {k: v for k, v in (row.values or {}).items() if k not in TUNABLE_NAMES}  # set outside this page
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
        explained = rec.because is not None or rec.because_tag is not None or rec.fresh or rec.popular
        because = reason_text(rec) if explained else ""
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
                Interaction.objects.for_identity(identity)
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
