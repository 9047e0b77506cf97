"""Interest profiles (tag affinities) and the tag graph, including real tag-name embeddings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from recommender.models import Interaction, ItemTag, ModelVersion, Profile
from recommender.serving import model_store
from recommender.serving.recommend import recommend
from recommender.signals import events_ingested
from recommender.tracking.interests import (
    interest_profile,
    rebuild_tag_graph,
    recompute_interests,
    recompute_profile,
    related_tags,
    update_interests,
    update_interests_many,
)
from recommender.tracking.privacy import set_personalization
from tests.serving import factories

pytestmark = pytest.mark.usefixtures("serving_settings")


def test_ingested_events_update_the_profile_through_the_signal(session):
    user = factories.user_identity()
    factories.add_events(user, session.items["climate"][:4] + session.items["football"][:1])
    events_ingested.send(sender=Interaction, user_ids={user.user_id}, visitor_ids=set(), item_ids=set())
    profile = interest_profile(user)
    assert (profile[0][0].slug, profile[0][1]) == ("climate", 1.0)
    assert dict((t.slug, s) for t, s in profile)["football"] == pytest.approx(0.25, abs=0.01)


def test_incremental_update_adds_only_new_events_and_matches_a_recompute(session):
    visitor = factories.visitor_identity()
    factories.add_events(visitor, session.items["technology"][:2])
    update_interests(visitor)
    factories.add_events(visitor, session.items["football"][:2], "like")
    Interaction.objects.filter(visitor_id=visitor.visitor_id, event_type="like").update(
        created_at=timezone.now() + timedelta(seconds=1)
    )
    before = dict(Profile.objects.get(visitor_id=visitor.visitor_id).interests)
    updated = update_interests(visitor).interests
    assert updated["football"] > updated["technology"] and "football" not in before
    assert recompute_profile(visitor).interests == pytest.approx(updated, rel=1e-3)


def test_many_profiles_update_at_once_as_they_would_one_by_one(session):
    """The bulk path (a big batch's readers) gives each profile what update_interests gives it."""
    pairs = [
        (factories.user_identity(), factories.user_identity()),
        (factories.visitor_identity(), factories.visitor_identity()),
    ]
    for first, second in pairs:
        for identity in (first, second):
            factories.add_events(identity, session.items["technology"][:2])
    fresh = update_interests_many([identity for pair in pairs for identity in pair])  # no profile yet
    assert fresh == 4
    for first, second in pairs:
        for identity in (first, second):
            factories.add_events(identity, session.items["football"][:3], "like")
            Interaction.objects.filter(event_type="like").update(
                created_at=timezone.now() + timedelta(seconds=1)
            )
    by_one = [update_interests(first).interests for first, _ in pairs]
    assert update_interests_many([second for _, second in pairs]) == 2
    for (_, second), expected in zip(pairs, by_one, strict=True):
        got = Profile.objects.for_identity(second).get().interests
        assert set(got) == {"technology", "football"} and got == pytest.approx(expected, rel=1e-3)


def test_older_events_weigh_less_and_dislikes_subtract(session):
    user = factories.user_identity()
    factories.add_events(user, session.items["football"][:2], start=timezone.now() - timedelta(days=60))
    factories.add_events(user, session.items["climate"][:2])
    factories.add_events(user, session.items["technology"][:1])
    factories.add_events(user, session.items["technology"][1:2], "dislike")
    interests = recompute_profile(user).interests
    assert interests["climate"] > interests["football"] > 0
    assert "technology" not in interests


def test_recompute_interests_covers_every_recent_identity(session):
    factories.add_events(factories.user_identity(), session.items["climate"][:1])
    factories.add_events(factories.visitor_identity(), session.items["climate"][:1])
    assert recompute_interests() == 2
    assert Profile.objects.exclude(interests={}).count() == 2


def test_opted_out_profiles_are_not_shown(session):
    user = factories.user_identity()
    factories.add_events(user, session.items["climate"][:2])
    recompute_profile(user)
    set_personalization(user, False)
    assert interest_profile(user) == []


def test_non_model_items_name_their_own_topic_not_an_invented_reason(session):
    ModelVersion.objects.update(is_active=False)
    model_store.invalidate()
    hot = session.items["climate"][5]
    hot.trending_score = 9.0
    hot.save()
    user = factories.user_identity()
    factories.add_events(user, session.items["climate"][:3])
    recompute_profile(user)
    recs = recommend(user, limit=3)
    assert recs.items[0].item == hot and recs.items[0].reason == "trending"
    assert recs.items[0].because is None and recs.items[0].because_tag is None  # nothing measured
    assert recs.items[0].topic.slug == "climate"  # "Trending in Climate"


def test_tag_graph_from_co_occurrence(session):
    for item in session.items["climate"][:4]:
        ItemTag.objects.create(item=item, tag=factories.make_tag("energy"))
    assert rebuild_tag_graph(use_embeddings=False) == 2
    [(tag, score)] = related_tags(factories.make_tag("energy"))
    assert tag.slug == "climate" and score == pytest.approx(4 / (4 * 8) ** 0.5)


def test_tag_graph_relates_tags_by_their_names_with_the_real_embedder(db):
    for name in ("Football", "Soccer", "Climate change", "Global warming", "Smartphones"):
        factories.make_tag(name)
    assert rebuild_tag_graph() > 0
    assert related_tags(factories.make_tag("Global warming"))[0][0].name == "Climate Change"
    assert related_tags(factories.make_tag("Football"))[0][0].name == "Soccer"
    assert factories.make_tag("Football").embedding is not None
