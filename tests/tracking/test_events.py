"""Server-side tracking: idempotent storage, counters for new events only, and the login merge."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from recommender.identity import Identity
from recommender.models import Feedback, Interaction, Item, Profile, RecommendationLog
from recommender.signals import events_ingested, identity_merged
from recommender.tracking.events import (
    EventInput,
    IngestResult,
    TrackingError,
    ingest,
    merge_visitor_into_user,
    track,
)
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def received():
    """Keyword arguments of every ``events_ingested`` and ``identity_merged`` sent."""
    calls: list[tuple[str, dict]] = []

    def on_ingested(sender, **kwargs):
        calls.append(("ingested", kwargs))

    def on_merged(sender, **kwargs):
        calls.append(("merged", kwargs))

    events_ingested.connect(on_ingested, sender=Interaction, dispatch_uid="test-ingested")
    identity_merged.connect(on_merged, sender=Interaction, dispatch_uid="test-merged")
    yield calls
    events_ingested.disconnect(sender=Interaction, dispatch_uid="test-ingested")
    identity_merged.disconnect(sender=Interaction, dispatch_uid="test-merged")


def counters(item: Item) -> tuple[int, int, int, int]:
    item.refresh_from_db()
    return item.impression_count, item.view_count, item.click_count, item.like_count


def test_track_stores_once_per_event_id_and_counts_once(user):
    item = factories.make_item()
    assert track(user, item, "click", event_id="evt-1", placement="home", recomm_id="r1")
    assert not track(user, item, "click", event_id="evt-1")
    row = Interaction.objects.get()
    assert (row.user_id, row.visitor_id, row.event_type, row.placement) == (user.pk, "", "click", "home")
    assert counters(item) == (0, 0, 1, 0)


def test_track_accepts_a_host_object_and_a_visitor_identity():
    article = factories.make_article("Host object")
    visitor = factories.visitor_identity()
    assert track(visitor, article, "read", value=0.5)
    row = Interaction.objects.get()
    assert (row.user_id, row.visitor_id, row.item_id, row.value) == (
        None, visitor.visitor_id, factories.item_for(article).pk, 0.5,
    )  # fmt: skip
    assert len(row.event_id) == 32  # server-made uuid4 hex


@pytest.mark.parametrize(
    ("identity", "event_type", "value", "message"),
    [
        (Identity(None, "v1"), "teleport", None, "Unknown event type"),
        (Identity(None, "v1"), "read", 1.5, "between 0 and 1"),
        (Identity(None, "v1"), "read", None, "between 0 and 1"),
        (Identity(None, "v1"), "view", float("nan"), "finite"),
        (AnonymousUser(), "view", None, "needs an Identity"),
        (Identity(None, ""), "view", None, "needs an Identity"),
    ],
)
def test_track_rejects_bad_events(identity, event_type, value, message):
    item = factories.make_item()
    with pytest.raises(TrackingError, match=message):
        track(identity, item, event_type, value=value)
    assert not Interaction.objects.exists()


def test_unknown_items_store_nothing(user):
    with pytest.raises(TrackingError, match="Unknown item"):
        track(user, 999_999, "view")
    assert not Interaction.objects.exists()


def test_host_defined_event_types_are_accepted(user, settings):
    settings.RECOMMENDER = {**getattr(settings, "RECOMMENDER", {}), "EXTRA_EVENT_TYPES": {"bookmark": 1.5}}
    assert track(user, factories.make_item(), "bookmark")


def test_ingest_batches_deduplicates_and_announces_new_events(
    user, received, django_capture_on_commit_callbacks
):
    a, b = factories.make_item("A"), factories.make_item("B")
    track(user, a, "view", event_id="old")
    received.clear()
    visitor = factories.new_visitor_id()
    events = [
        EventInput(item_id=a.pk, event_type="view", user_id=user.pk, event_id="old"),  # stored before
        EventInput(item_id=a.pk, event_type="view", user_id=user.pk, event_id="e1"),
        EventInput(item_id=a.pk, event_type="view", user_id=user.pk, event_id="e1"),  # twice in one batch
        EventInput(item_id=a.pk, event_type="impression", visitor_id=visitor, event_id="e2"),
        EventInput(item_id=b.pk, event_type="like", visitor_id=visitor, event_id="e3"),
        EventInput(item_id=b.pk, event_type="like", visitor_id=visitor),
        EventInput(item_id=b.pk, event_type="share", visitor_id=visitor),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        result = ingest(events, batch_size=3)
    assert result == IngestResult(created=5, duplicates=2)
    assert Interaction.objects.count() == 6
    assert counters(a) == (1, 2, 0, 0)
    assert counters(b) == (0, 0, 0, 2)
    assert received == [
        ("ingested", {"signal": events_ingested, "user_ids": {user.pk}, "visitor_ids": {visitor},
                      "item_ids": {a.pk, b.pk}}),
    ]  # fmt: skip

    with django_capture_on_commit_callbacks(execute=True):
        assert ingest(events[:5]) == IngestResult(created=0, duplicates=5)  # the ones with an event_id
    assert counters(a) == (1, 2, 0, 0)
    assert len(received) == 1  # nothing new, nothing announced


def test_merge_moves_the_visitor_history_into_the_account(user, received, django_capture_on_commit_callbacks):
    item = factories.make_item()
    visitor, stranger = factories.new_visitor_id(), factories.new_visitor_id()
    track(Identity(None, visitor), item, "view")
    track(Identity(None, visitor), item, "like")
    track(Identity(None, stranger), item, "view")
    Feedback.objects.create(visitor_id=visitor, item=item, kind=Feedback.Kind.NOT_INTERESTED)
    RecommendationLog.objects.create(recomm_id="r-1", visitor_id=visitor, placement="home")
    Profile.objects.create(visitor_id=visitor, personalization_enabled=False)
    received.clear()

    with django_capture_on_commit_callbacks(execute=True):
        moved = merge_visitor_into_user(visitor, user)
    assert moved == {"interactions": 2, "feedback": 1, "recommendation_logs": 1, "profiles": 1}
    assert Interaction.objects.filter(user=user).count() == 2
    assert Interaction.objects.filter(visitor_id=stranger, user=None).count() == 1
    assert Feedback.objects.get().user == user
    assert RecommendationLog.objects.get().user == user
    assert Profile.objects.get(user=user).personalization_enabled is False
    assert received == [("merged", {"signal": identity_merged, "user_id": user.pk, "visitor_id": visitor})]


def test_merge_keeps_the_account_profile_and_the_stricter_opt_out(user):
    Profile.objects.create(user=user, interests={"football": 1.0})
    Profile.objects.create(visitor_id="v-opted-out", personalization_enabled=False)
    merge_visitor_into_user("v-opted-out", user)
    profile = Profile.objects.get()
    assert (profile.user, profile.interests, profile.personalization_enabled) == (
        user,
        {"football": 1.0},
        False,
    )


def test_merging_an_empty_visitor_does_nothing(user, received):
    assert merge_visitor_into_user("", user) == {}
    assert merge_visitor_into_user("never-seen", user) == {
        "interactions": 0, "feedback": 0, "recommendation_logs": 0, "profiles": 0,
    }  # fmt: skip
    assert received == []
