"""System checks report a misconfigured RECOMMENDER setting with ids and hints."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from recommender.checks import check_middleware, check_settings


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def test_the_demo_settings_pass():
    assert check_settings() == []
    assert check_middleware() == []


@pytest.mark.parametrize(
    ("recommender", "expected", "text"),
    [
        (["PLACEMENTS"], "recommender.E001", "must be a dict"),
        ({"DIVERSITY_LAMBA": 0.5}, "recommender.E002", "Did you mean 'DIVERSITY_LAMBDA'?"),
        ({"EXTRA_EVENT_TYPES": {"bookmark": "high"}}, "recommender.E003", "'bookmark'"),
        ({"EVENT_TYPES": ["view"]}, "recommender.E003", "must map event type"),
        ({"EXTRA_EVENT_TYPES": {"vote": True}}, "recommender.E003", "numeric weight"),
        ({"PLACEMENTS": []}, "recommender.E004", "non-empty list"),
        ({"PLACEMENTS": ["home", 3]}, "recommender.E004", "non-empty list"),
        ({"DIVERSITY_LAMBDA": 1.5}, "recommender.E005", "between 0 and 1"),
        ({"DEFAULT_LIMIT": 0}, "recommender.E005", "DEFAULT_LIMIT"),
        ({"DEFAULT_LIMIT": 20, "MAX_LIMIT": 10}, "recommender.E005", "smaller than DEFAULT_LIMIT"),
        ({"GATE_TOLERANCE": -0.1}, "recommender.E005", "GATE_TOLERANCE"),
        ({"NEW_ITEM_BOOST": "high"}, "recommender.E005", "between -20 and 20"),
        ({"NEW_ITEM_BOOST": float("nan")}, "recommender.E005", "between -20 and 20"),
        ({"MAX_EVENTS_PER_BATCH": 2.5}, "recommender.E005", "an integer"),
        ({"MAX_PER_TAG": None}, "recommender.E005", "an integer >= 0"),  # 0 is "no cap", None breaks ranking
        ({"FRESHNESS_HALF_LIFE_HOURS": 0}, "recommender.E005", "a number > 0"),
        ({"GATE_TOLERANCE": float("inf")}, "recommender.E005", "between 0 and 1"),
        ({"FALLBACK_ORDER": ["trending", "astrology"]}, "recommender.E009", "from trending, fresh"),
        ({"EXCLUDE_SEEN": "yes"}, "recommender.E009", "true or false"),
        ({"QUEUES": {"train": 3}}, "recommender.E009", "a mapping of names to strings"),
        ({"ARTIFACT_STORAGE": "s3"}, "recommender.E006", "not a STORAGES alias"),
        ({"ADAPTER": "nowhere.Adapter"}, "recommender.E007", "can't be imported"),
        ({"CACHE_ALIAS": "redis"}, "recommender.E008", "not an alias in CACHES"),
    ],
)
def test_bad_settings_are_reported(recommender, expected, text):
    with override_settings(RECOMMENDER=recommender):
        messages = check_settings()
    assert expected in ids(messages)
    message = next(m for m in messages if m.id == expected)
    assert text in message.msg + (message.hint or "")


def test_every_bad_key_is_reported_at_once():
    with override_settings(RECOMMENDER={"DIVERSITY_LAMBDA": -1, "MAX_LIMIT": 0, "COLOUR": "red"}):
        assert sorted(ids(check_settings())) == ["recommender.E002", "recommender.E005", "recommender.E005",
                                                 "recommender.E005"]  # fmt: skip


def test_missing_middleware_is_a_warning(settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "recommender" not in m]
    assert ids(check_middleware()) == ["recommender.W001"]


def test_manage_check_fails_on_bad_settings():
    with (
        override_settings(RECOMMENDER={"DIVERSITY_LAMBDA": "high"}),
        pytest.raises(SystemCheckError, match="E005"),
    ):
        call_command("check")
