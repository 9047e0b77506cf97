"""Feedback changes the next list; a person's data can be exported, deleted and depersonalized."""

from __future__ import annotations

import pytest

from recommender.models import Feedback, Interaction, Profile, RecommendationLog
from recommender.serving.recommend import recommend
from recommender.tracking.feedback import record_feedback
from recommender.tracking.privacy import (
    delete_identity_data,
    export_identity_data,
    history,
    set_personalization,
)
from tests.serving import factories

pytestmark = pytest.mark.usefixtures("serving_settings")


def test_not_interested_removes_the_item_from_the_very_next_call(session):
    user = factories.user_identity()
    factories.add_events(user, session.items["climate"][:2])
    first = recommend(user, limit=3)
    unwanted = first.items[0].item
    feedback = record_feedback(user, unwanted, Feedback.Kind.NOT_INTERESTED, recomm_id=first.recomm_id)
    assert feedback.recomm_id == first.recomm_id
    after = recommend(user, limit=3)
    assert after.recomm_id != first.recomm_id and unwanted not in [r.item for r in after]


def test_more_like_this_steers_the_next_call(session):
    user = factories.user_identity()
    factories.add_events(user, session.items["climate"][:2])
    assert "football" not in {factories.topic_of(r.item.pk) for r in recommend(user, limit=4)}
    record_feedback(user, session.items["football"][0].pk, Feedback.Kind.MORE_LIKE_THIS)
    assert "football" in {factories.topic_of(r.item.pk) for r in recommend(user, limit=4)}


def test_bad_feedback_is_refused(session):
    user = factories.user_identity()
    with pytest.raises(ValueError, match="kind"):
        record_feedback(user, session.items["climate"][0], "hate")
    with pytest.raises(ValueError, match="item"):
        record_feedback(user, 123456789, Feedback.Kind.REPORT)


def test_delete_identity_data_removes_only_that_identitys_data(session):
    user, other = factories.user_identity(), factories.user_identity()
    for who in (user, other):
        factories.add_events(who, session.items["technology"][:3])
        record_feedback(who, session.items["climate"][0], Feedback.Kind.REPORT, reason="spam")
        recommend(who, limit=3)
    set_personalization(user, False)
    counts = delete_identity_data(user)
    assert counts == {"interactions": 3, "feedback": 1, "recommendations": 1, "profiles": 1}
    assert not Interaction.objects.filter(user_id=user.user_id).exists()
    assert not Feedback.objects.filter(user_id=user.user_id).exists()
    assert not RecommendationLog.objects.filter(user_id=user.user_id).exists()
    assert not Profile.objects.filter(user_id=user.user_id).exists()
    assert Interaction.objects.filter(user_id=other.user_id).count() == 3
    assert {r.reason for r in recommend(user, limit=3)} <= {"trending", "fresh"}  # a fresh start


def test_visitor_data_is_deleted_by_cookie_id(session):
    visitor = factories.visitor_identity()
    factories.add_events(visitor, session.items["technology"][:2])
    assert delete_identity_data(visitor)["interactions"] == 2
    assert not Interaction.objects.filter(visitor_id=visitor.visitor_id).exists()


def test_export_contains_everything_stored_about_the_identity(session):
    user = factories.user_identity()
    factories.add_events(user, session.items["climate"][:2])
    record_feedback(user, session.items["climate"][5], Feedback.Kind.NOT_INTERESTED)
    recs = recommend(user, limit=2)
    data = export_identity_data(user)
    assert [e["item_id"] for e in data["interactions"]] == [i.pk for i in session.items["climate"][:2]]
    assert data["feedback"][0]["kind"] == "not_interested"
    assert data["recommendations"][0]["recomm_id"] == recs.recomm_id


def test_history_lists_own_events_without_impressions(session):
    user, other = factories.user_identity(), factories.user_identity()
    factories.add_events(user, session.items["climate"][:2])
    factories.add_events(user, session.items["football"][:2], "impression")
    factories.add_events(other, session.items["technology"][:2])
    assert [e.item for e in history(user)] == session.items["climate"][:2][::-1]


def test_set_personalization_creates_the_profile(session):
    visitor = factories.visitor_identity()
    profile = set_personalization(visitor, False)
    assert profile.visitor_id == visitor.visitor_id and profile.personalization_enabled is False
    assert set_personalization(visitor, True).pk == profile.pk
