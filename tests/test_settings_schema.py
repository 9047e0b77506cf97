"""One declaration per setting: the defaults, checks, tuning form, API bounds and docs agree with it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from django.core.checks import registry
from django.test import override_settings

from recommender.admin import tuning_forms
from recommender.admin.tuning_forms import TuningForm
from recommender.api.serializers import LimitQuerySerializer, TrendingQuerySerializer
from recommender.checks import check_settings
from recommender.conf import DEFAULTS, IMPORT_STRINGS, recommender_settings
from recommender.settings_schema import SETTINGS, TUNABLE, Setting, render_markdown
from recommender.tuning import Tuning

DOCS = Path(__file__).resolve().parent.parent / "docs" / "settings.md"
BOUNDED = [s for s in SETTINGS.values() if s.min is not None or s.max is not None]
TUNABLE_BOUNDED = [s for s in TUNABLE if s in BOUNDED]


def edges(setting: Setting) -> list[tuple[float, bool]]:
    """(value, valid) pairs on each side of each bound: at it, and a step beyond it."""
    step = 1 if setting.type is int else 1e-6
    pairs = []
    if setting.min is not None:
        if setting.exclusive_min:
            pairs += [(setting.min, False), (setting.min + step, True)]
        else:
            pairs += [(setting.min, True), (setting.min - step, False)]
    if setting.max is not None:
        pairs += [(setting.max, True), (setting.max + step, False)]
    return [(setting.type(value), valid) for value, valid in pairs]


def test_defaults_and_import_strings_are_the_declaration() -> None:
    assert {name: s.default for name, s in SETTINGS.items()} == DEFAULTS
    assert list(DEFAULTS) == list(SETTINGS)
    assert IMPORT_STRINGS == ("ADAPTER",)
    for name in ("DIVERSITY_LAMBDA", "SCHEDULE", "TAG_GRAPH_NEIGHBOURS"):
        assert name in SETTINGS
        assert not callable(getattr(recommender_settings, name))
    assert not SETTINGS["SCHEDULE"].tunable  # edited in django-celery-beat's admin, not the tuning page


@pytest.mark.parametrize("setting", SETTINGS.values(), ids=list(SETTINGS))
def test_every_default_fits_its_own_declaration(setting: Setting) -> None:
    assert setting.problem(setting.default) is None
    assert setting.help
    if setting.tunable:
        assert setting.label and setting.group


def test_every_tunable_is_in_the_tuning_snapshot() -> None:
    """An admin edit that no ``Tuning`` field carries would never reach the serving code."""
    fields = {f.name.upper() for f in dataclasses.fields(Tuning)}
    assert {s.name for s in TUNABLE} <= fields <= set(SETTINGS)


def test_the_checks_are_registered() -> None:
    assert check_settings in registry.registry.get_checks()


@pytest.mark.parametrize("setting", BOUNDED, ids=[s.name for s in BOUNDED])
def test_a_value_just_outside_a_bound_is_an_e005_and_one_at_it_is_not(setting: Setting) -> None:
    for value, valid in edges(setting):
        with override_settings(RECOMMENDER={setting.name: value}):
            messages = [
                m
                for m in check_settings()
                if m.id == "recommender.E005" and m.msg.startswith(f"RECOMMENDER[{setting.name!r}] = ")
            ]
        assert bool(messages) is not valid, (value, messages)


@pytest.mark.django_db
def test_every_tunable_setting_has_its_fields_in_the_tuning_form() -> None:
    fields = TuningForm().fields
    for setting in TUNABLE:
        if setting.type is dict:
            entries = tuning_forms.setting_defaults()[setting.name]
            assert {f"{setting.name}__{e}" for e in entries} <= set(fields)
        else:
            field = fields[setting.name]
            assert setting.help in field.help_text
            assert field.label == setting.label


@pytest.mark.django_db
@pytest.mark.parametrize("setting", TUNABLE_BOUNDED, ids=[s.name for s in TUNABLE_BOUNDED])
def test_the_tuning_form_refuses_a_value_just_outside_a_bound(setting: Setting) -> None:
    field = TuningForm().fields[setting.name]
    assert field.max_value == setting.max
    assert field.min_value == (None if setting.exclusive_min else setting.min)
    data = TuningForm.initial_from(tuning_forms.effective_values())
    data = {k: ("on" if v is True else v) for k, v in data.items() if v is not False}
    for value, valid in edges(setting):
        form = TuningForm({**data, setting.name: str(value)})
        assert form.is_valid() is valid, (value, form.errors)
        if not valid:
            assert list(form.errors) == [setting.name]


def docs_rows() -> dict[str, list[str]]:
    rows = {}
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        if match := re.match(r"\| `([A-Z_]+)` \| (.*) \|$", line):
            rows[match[1]] = [cell.strip() for cell in match[2].split(" | ")]
    return rows


def test_the_docs_are_what_the_renderer_produces_now() -> None:
    assert DOCS.read_text(encoding="utf-8") == render_markdown(), (
        "docs/settings.md is stale: python -m recommender.settings_schema > docs/settings.md"
    )


def test_the_docs_list_every_setting_with_its_bounds_and_whether_it_is_tuned() -> None:
    rows = docs_rows()
    assert list(rows) == list(SETTINGS)
    for name, setting in SETTINGS.items():
        _type, _default, bounds, tunable, _help = rows[name]
        assert (tunable == "admin") is setting.tunable, name
        if setting.min is None and setting.max is None:
            assert bounds == "", name
            continue
        match = re.fullmatch(r"`([\[(])(-∞|[-\d.e+]+), (∞|[-\d.e+]+)([\])])`", bounds)
        assert match, (name, bounds)
        low = None if match[2] == "-∞" else float(match[2])
        high = None if match[3] == "∞" else float(match[3])
        assert (low, high, match[1] == "(") == (setting.min, setting.max, setting.exclusive_min), name


@pytest.mark.django_db
def test_the_api_bounds_come_from_the_declaration() -> None:
    limit = LimitQuerySerializer().fields["limit"]
    assert limit.min_value == SETTINGS["DEFAULT_LIMIT"].min
    assert (
        limit.max_value == recommender_settings.MAX_LIMIT
    )  # what the schema publishes and validation applies
    window = TrendingQuerySerializer().fields["window_hours"]
    hours = SETTINGS["TRENDING_WINDOW_HOURS"]
    assert window.choices and all(hours.min <= w <= hours.max for w in window.choices)  # a fixed set
    assert LimitQuerySerializer(data={"limit": recommender_settings.MAX_LIMIT}).is_valid()
    assert not LimitQuerySerializer(data={"limit": recommender_settings.MAX_LIMIT + 1}).is_valid()
