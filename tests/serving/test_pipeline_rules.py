"""Exclusions, editorial rules, blending and diversity in the recommend pipeline."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from recommender.models import EditorialRule, Feedback, TuningSettings
from recommender.serving.candidates import Candidate, ItemRow
from recommender.serving.ranking import diversify, freshness
from recommender.serving.recommend import recommend
from recommender.tuning import get_tuning
from tests.serving import factories
from tests.serving.conftest import TEST_SETTINGS

pytestmark = pytest.mark.usefixtures("serving_settings")


def _climate_reader(session, n: int = 2):
    user = factories.user_identity()
    factories.add_events(user, session.items["climate"][:n])
    return user


def _ids(recs) -> list[int]:
    return [r.item.pk for r in recs]


def test_seen_disliked_not_interested_inactive_unpublished_and_blocked_items_never_appear(session):
    climate = session.items["climate"]
    user = _climate_reader(session, 2)  # climate[0], climate[1] seen
    factories.add_events(user, [climate[2]], "dislike")
    Feedback.objects.create(user_id=user.user_id, item=climate[3], kind=Feedback.Kind.NOT_INTERESTED)
    climate[4].is_active = False
    climate[4].save()
    climate[5].published_at = timezone.now() + timedelta(days=1)
    climate[5].save()
    EditorialRule.objects.create(action=EditorialRule.Action.BLOCK, item=climate[6])
    EditorialRule.objects.create(action=EditorialRule.Action.BLOCK, tag=factories.make_tag("football"))
    served = _ids(recommend(user, limit=20))
    assert len(served) == 9  # what is left: climate[7] and the 8 technology items
    assert not set(served) & {c.pk for c in climate[:7]}
    assert not set(served) & {i.pk for i in session.items["football"]}
    assert climate[7].pk in served


def test_seen_items_come_back_when_exclude_seen_is_off(session, settings):
    settings.RECOMMENDER = {**TEST_SETTINGS, "EXCLUDE_SEEN": False}
    user = _climate_reader(session, 3)
    assert set(_ids(recommend(user, limit=20))) & {c.pk for c in session.items["climate"][:3]}


def test_pin_puts_an_item_at_its_position_only_in_its_placement(session):
    user = _climate_reader(session)
    pinned = session.items["football"][0]
    EditorialRule.objects.create(action=EditorialRule.Action.PIN, item=pinned, position=1, placement="home")
    home = recommend(user, placement="home", limit=4)
    assert home.items[1].item == pinned and home.items[1].reason == "editorial"
    assert pinned.pk not in _ids(recommend(user, placement="default", limit=4))


def test_tag_pin_takes_the_newest_item_of_the_tag(session):
    user = _climate_reader(session)
    newest = session.items["technology"][5]
    newest.published_at = timezone.now() - timedelta(hours=1)
    newest.save()
    EditorialRule.objects.create(
        action=EditorialRule.Action.PIN, tag=factories.make_tag("technology"), position=0
    )
    recs = recommend(user, limit=3)
    assert recs.items[0].item == newest and recs.items[0].reason == "editorial"


def test_pin_never_overrides_a_personal_exclusion(session):
    user = _climate_reader(session)
    seen = session.items["climate"][0]
    EditorialRule.objects.create(action=EditorialRule.Action.PIN, item=seen, position=0)
    assert seen.pk not in _ids(recommend(user, limit=4))


def test_boost_lifts_an_item_and_bury_sinks_one(session):
    user = _climate_reader(session)
    baseline = _ids(recommend(user, limit=22))  # every unseen item
    boosted, buried = session.items["technology"][0], baseline[0]
    EditorialRule.objects.create(action=EditorialRule.Action.BOOST, item=boosted, factor=5.0)
    EditorialRule.objects.create(
        action=EditorialRule.Action.BURY, item_id=buried, factor=5.0, placement="default"
    )
    after = recommend(user, limit=22, use_cache=False)
    assert after.items[0].item == boosted
    assert _ids(after)[-1] == buried


def test_boost_of_a_tag_lifts_its_items(session):
    user = _climate_reader(session)
    EditorialRule.objects.create(
        action=EditorialRule.Action.BOOST, tag=factories.make_tag("technology"), factor=5.0
    )
    recs = recommend(user, limit=3)
    assert {factories.topic_of(pk) for pk in _ids(recs)} == {"technology"}


def test_expired_and_disabled_rules_do_not_apply(session):
    user = _climate_reader(session)
    blocked = recommend(user, limit=1).items[0].item
    EditorialRule.objects.create(
        action=EditorialRule.Action.BLOCK, item=blocked, ends_at=timezone.now() - timedelta(hours=1)
    )
    EditorialRule.objects.create(action=EditorialRule.Action.BLOCK, item=blocked, is_enabled=False)
    assert recommend(user, limit=1, use_cache=False).items[0].item == blocked


def test_max_per_tag_caps_hold(session, settings):
    settings.RECOMMENDER = {**TEST_SETTINGS, "MAX_PER_TAG": 2}
    user = _climate_reader(session)
    recs = recommend(user, limit=6)
    per_topic = Counter(factories.topic_of(pk) for pk in _ids(recs))
    assert len(recs) == 6 and max(per_topic.values()) == 2


def test_the_tag_cap_never_makes_a_list_shorter():
    """Candidates all on one topic: the cap spreads nothing, so the capped ones fill the list in order."""
    rows = {pk: ItemRow(pk, None, 0.0, None, (7,)) for pk in range(1, 9)}
    other = {9: ItemRow(9, None, 0.0, None, (8,))}
    tier = [Candidate(pk, 1.0, "personalized", final=1.0 - pk / 100) for pk in range(1, 10)]
    picked = diversify([tier], rows | other, limit=5, diversity_lambda=1.0, max_per_tag=2)
    assert [c.item_id for c in picked] == [1, 2, 9, 3, 4]  # the other topic first, then the cap relents


def test_mmr_lambda_trades_relevance_for_diversity(session, settings):
    user = _climate_reader(session)
    assert {factories.topic_of(pk) for pk in _ids(recommend(user, limit=3))} == {"climate"}
    settings.RECOMMENDER = {**TEST_SETTINGS, "DIVERSITY_LAMBDA": 0.0}
    diverse = recommend(user, limit=3)
    assert {factories.topic_of(pk) for pk in _ids(diverse)} == {"climate", "football", "technology"}
    assert factories.topic_of(diverse.items[0].item.pk) == "climate"  # the first pick is still the best


def test_popularity_weight_blends_in_trending(session, settings):
    user = _climate_reader(session)
    hot = session.items["football"][3]
    hot.trending_score = 100.0
    hot.save()
    assert hot.pk not in _ids(recommend(user, limit=3))
    settings.RECOMMENDER = {**TEST_SETTINGS, "POPULARITY_WEIGHT": 5.0}
    assert recommend(user, limit=3).items[0].item == hot


def test_freshness_weight_blends_in_recency(session, settings):
    user = _climate_reader(session)
    new = session.items["football"][2]
    new.published_at = timezone.now()
    new.save()
    settings.RECOMMENDER = {**TEST_SETTINGS, "FRESHNESS_WEIGHT": 5.0}
    assert recommend(user, limit=3).items[0].item == new
    now = timezone.now()
    assert freshness(now - timedelta(hours=48), now, 48.0) == pytest.approx(0.5)


def test_tuning_row_overrides_settings(session):
    user = _climate_reader(session)
    TuningSettings.objects.create(values={"MAX_PER_TAG": "1", "DIVERSITY_LAMBDA": 1})
    tuning = get_tuning()
    assert (tuning.max_per_tag, tuning.diversity_lambda) == (1, 1.0)
    recs = recommend(user, limit=3)
    assert len({factories.topic_of(pk) for pk in _ids(recs)}) == 3


def test_a_new_rule_or_tuning_change_invalidates_cached_lists(session):
    """Cached lists carry a site-wide generation: editors see their change on the next request."""
    user = _climate_reader(session)
    first = recommend(user, limit=1).items[0].item
    assert recommend(user, limit=1).items[0].item == first  # served from the cache
    EditorialRule.objects.create(action=EditorialRule.Action.BLOCK, item=first)
    second = recommend(user, limit=1).items[0].item
    assert second != first
    seen = {c.pk for c in session.items["climate"][:2]}
    assert not set(_ids(recommend(user, limit=20))) & seen  # cached now
    TuningSettings.objects.create(values={"EXCLUDE_SEEN": False})
    assert set(_ids(recommend(user, limit=20))) & seen
