"""Tuning: validation, saving with an audit trail, settings fallback, and the side-effect-free preview."""

from __future__ import annotations

import pytest
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from recommender.admin import tuning_forms
from recommender.models import HistoryAccess, Interaction, RecommendationLog, TuningChange, TuningSettings
from recommender.tuning import get_tuning, override_tuning
from tests.admin import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hasher(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def catalogue() -> list:
    """Old-but-trending first by popularity, newest first by freshness: the two orders differ."""
    return [
        factories.article_item("Old hit", topics=("Football",), hours_ago=240, trending=10.0),
        factories.article_item("Fresh story", topics=("Climate",), hours_ago=1, trending=2.0),
        factories.article_item("Middle piece", topics=("Space",), hours_ago=48, trending=5.0),
    ]


def form_data(**changes) -> dict:
    """The tuning form as the page posts it, from the effective values, with ``changes`` applied."""
    from recommender.admin.tuning import TuningForm

    data = TuningForm.initial_from(tuning_forms.effective_values())
    data.update(changes)
    return {k: ("on" if v is True else v) for k, v in data.items() if v is not False}


def test_save_records_only_changed_keys_and_falls_back_to_settings() -> None:
    staff = factories.user("tuner", perms=("view_tuningsettings", "change_tuningsettings"))
    values = tuning_forms.effective_values()
    assert tuning_forms.save_tuning(values, by=staff) is None  # nothing changed, nothing recorded

    values["DIVERSITY_LAMBDA"] = 0.5
    values["EVENT_TYPES"] = {**values["EVENT_TYPES"], "like": 3.0}
    change = tuning_forms.save_tuning(values, by=staff)
    assert change.changed_by == staff
    assert set(change.after) == {"DIVERSITY_LAMBDA", "EVENT_TYPES"}
    assert change.before["DIVERSITY_LAMBDA"] == 0.8
    assert (change.before["EVENT_TYPES"], change.after["EVENT_TYPES"]) == ({"like": 2.0}, {"like": 3.0})
    row = TuningSettings.objects.get()
    assert row.values == {"DIVERSITY_LAMBDA": 0.5, "EVENT_TYPES": {"like": 3.0}}
    assert get_tuning().diversity_lambda == 0.5

    TuningSettings.objects.filter(pk=row.pk).update(
        values={**row.values, "CANDIDATES": 300}
    )  # set in a shell
    values["DIVERSITY_LAMBDA"] = 0.8  # back to the setting: the override disappears
    tuning_forms.save_tuning(values, by=staff)
    row.refresh_from_db()
    assert row.values == {"EVENT_TYPES": {"like": 3.0}, "CANDIDATES": 300}  # keys not on the page are kept
    assert TuningChange.objects.count() == 2


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DIVERSITY_LAMBDA", 1.5),
        ("MAX_PER_TAG", -1),  # 0 is valid: no cap
        ("MAX_PER_TAG", 2.5),
        ("MODEL_WEIGHT", "heavy"),
        ("FALLBACK_ORDER", ["trending", "astrology"]),
        ("FALLBACK_ORDER", []),
        ("EVENT_TYPES", {"teleport": 1.0}),
        ("EVENT_TYPES", {"like": float("nan")}),
        ("FRESHNESS_HALF_LIFE_HOURS", 0.0),  # an exclusive bound: the half-life is divided by
        ("EXCLUDE_SEEN", "maybe"),
    ],
)
def test_invalid_values_are_refused_with_a_message_on_the_key(key: str, value) -> None:
    values = tuning_forms.effective_values()
    values[key] = value
    with pytest.raises(ValidationError) as excinfo:
        tuning_forms.validate_tuning(values)
    assert key in excinfo.value.message_dict


def test_admin_page_saves_and_lists_the_change_with_its_author() -> None:
    staff = factories.user("editor", perms=("view_tuningsettings", "change_tuningsettings"))
    client = Client()
    client.force_login(staff)
    url = reverse("admin:recommender_tuningsettings_changelist")
    response = client.post(url, form_data(FRESHNESS_WEIGHT=0.7, FALLBACK_ORDER="fresh, trending"))
    assert response.status_code == 302
    assert TuningSettings.objects.get().values == {
        "FRESHNESS_WEIGHT": 0.7,
        "FALLBACK_ORDER": ["fresh", "trending"],
    }
    page = client.get(url).content.decode()
    assert "editor" in page and "FALLBACK_ORDER, FRESHNESS_WEIGHT" in page

    bad = client.post(url, form_data(DIVERSITY_LAMBDA=3))
    assert bad.status_code == 200
    assert "at most 1" in bad.content.decode().lower() or "less than or equal to 1" in bad.content.decode()
    assert TuningChange.objects.count() == 1


def test_override_tuning_is_scoped_to_its_block() -> None:
    before = get_tuning().popularity_weight
    with override_tuning({"POPULARITY_WEIGHT": 7.0}) as tuning:
        assert tuning.popularity_weight == 7.0
        assert get_tuning().popularity_weight == 7.0
    assert get_tuning().popularity_weight == before


def test_preview_shows_both_lists_and_writes_nothing(catalogue) -> None:
    cache = caches["default"]
    cache.clear()
    client = Client()
    client.force_login(factories.user("previewer", perms=("view_tuningsettings", "change_tuningsettings")))
    subject = {"items": str(catalogue[2].pk), "placement": "default", "limit": 2}
    # Edited tuning: popularity off, freshness dominant -> the fresh story first.
    data = {**form_data(MODEL_WEIGHT=0, POPULARITY_WEIGHT=0, FRESHNESS_WEIGHT=5), **subject}
    logs, events = RecommendationLog.objects.count(), Interaction.objects.count()
    response = client.post(reverse("admin:recommender_tuningsettings_preview"), data)
    assert response.status_code == 200, response.content
    body = response.json()
    current = [row["item_id"] for row in body["current"]["items"]]
    edited = [row["item_id"] for row in body["edited"]["items"]]
    assert current[0] == catalogue[0].pk  # the saved tuning favours the trending old hit
    assert edited[0] == catalogue[1].pk
    assert catalogue[2].pk not in current + edited  # the pasted history counts as seen
    assert body["history"][0]["item_id"] == catalogue[2].pk
    assert {row["reason"] for row in body["edited"]["items"]} <= {"trending", "fresh"}
    assert RecommendationLog.objects.count() == logs
    assert Interaction.objects.count() == events
    assert not [k for k in cache._cache if "recommender:rec:" in k]
    assert TuningSettings.objects.filter(values__has_key="FRESHNESS_WEIGHT").count() == 0  # nothing saved

    again = client.post(
        reverse("admin:recommender_tuningsettings_preview"), {**data, "include_current": "0"}
    ).json()
    assert "current" not in again  # the page keeps the saved-tuning list it already has
    assert [row["item_id"] for row in again["edited"]["items"]] == edited


def test_preview_for_a_user_and_its_errors(catalogue) -> None:
    reader = factories.user("reader", staff=False)
    Interaction.objects.create(event_id="e1", user=reader, item=catalogue[0], event_type="view")
    client = Client()
    client.force_login(factories.user("previewer", perms=("view_tuningsettings", "change_tuningsettings")))
    url = reverse("admin:recommender_tuningsettings_preview")
    ok = client.post(url, {**form_data(), "user": "reader", "placement": "home", "limit": 5})
    assert ok.status_code == 200
    assert catalogue[0].pk not in [row["item_id"] for row in ok.json()["current"]["items"]]

    assert "__all__" in client.post(url, {**form_data(), "placement": "home"}).json()["errors"]
    assert "user" in client.post(url, {**form_data(), "user": "nobody"}).json()["errors"]
    assert "items" in client.post(url, {**form_data(), "items": "999999"}).json()["errors"]
    invalid = client.post(url, {**form_data(DIVERSITY_LAMBDA=2), "user": "reader"})
    assert invalid.status_code == 400 and "DIVERSITY_LAMBDA" in invalid.json()["errors"]
    assert client.get(url).status_code == 405


def test_looking_at_a_readers_history_is_recorded_and_the_record_is_read_only(catalogue) -> None:
    reader = factories.user("reader", staff=False)
    previewer = factories.user("previewer", perms=("view_tuningsettings", "change_tuningsettings"))
    client = Client()
    client.force_login(previewer)
    url = reverse("admin:recommender_tuningsettings_preview")
    assert client.post(url, {**form_data(), "user": "reader", "limit": 3}).status_code == 200
    client.post(url, {**form_data(), "items": str(catalogue[0].pk), "limit": 3})  # pasted items: nobody's
    [access] = HistoryAccess.objects.all()
    assert (access.viewed_by, access.subject, access.subject_label) == (previewer, reader, "reader")
    assert access.where == "tuning preview" and access.viewed_at is not None
    auditor = Client()
    auditor.force_login(factories.user("auditor", perms=("view_historyaccess",)))
    listing = auditor.get(reverse("admin:recommender_historyaccess_changelist"))
    assert listing.status_code == 200 and "reader" in listing.content.decode()
    assert auditor.get(reverse("admin:recommender_historyaccess_add")).status_code == 403
    superuser = Client()
    superuser.force_login(factories.user("root", superuser=True))
    delete = reverse("admin:recommender_historyaccess_delete", args=[access.pk])
    assert superuser.post(delete, {"post": "yes"}).status_code == 403
    assert HistoryAccess.objects.count() == 1


def test_preview_errors_name_fields_by_their_labels(catalogue) -> None:
    client = Client()
    client.force_login(factories.user("previewer", perms=("view_tuningsettings", "change_tuningsettings")))
    url = reverse("admin:recommender_tuningsettings_preview")
    body = client.post(url, {**form_data(FRESHNESS_WEIGHT=-1), "user": "nobody"}).json()
    assert set(body["errors"]) == {"FRESHNESS_WEIGHT", "user"}  # keys still say which inputs to mark
    assert body["messages"] == [
        "Freshness weight: Ensure this value is greater than or equal to 0.",
        "User (id or username): No such user.",
    ]
    unknown = client.post(url, {**form_data(), "items": "999999"}).json()
    assert unknown["messages"] == ["Or item ids, oldest first: Unknown item id(s): 999999"]
    neither = client.post(url, form_data()).json()
    assert neither["messages"] == ["Pick a user or paste item ids."]


def test_the_schedule_is_not_tuned_here() -> None:
    """Periodic tasks are edited in django-celery-beat's admin; an old SCHEDULE override is left alone."""
    from recommender.admin.tuning import TuningForm

    assert not [name for name in TuningForm().fields if name.startswith("SCHEDULE")]
    TuningSettings.objects.create(values={"SCHEDULE": {"refresh": 1800}})
    assert not hasattr(get_tuning(), "schedule")
    change = tuning_forms.save_tuning({**tuning_forms.effective_values(), "DIVERSITY_LAMBDA": 0.5})
    assert set(change.after) == {"DIVERSITY_LAMBDA"}
    assert TuningSettings.objects.get().values == {"SCHEDULE": {"refresh": 1800}, "DIVERSITY_LAMBDA": 0.5}
