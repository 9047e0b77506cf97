"""Similar, trending and fresh lists."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from recommender.models import EditorialRule, Feedback, Item, ModelVersion, RecommendationLog
from recommender.serving import model_store
from recommender.serving.candidates import content_similar, fresh_candidates, model_similar
from recommender.serving.recommend import RecommendationError
from recommender.serving.related import fresh, similar, trending
from tests.serving import factories

pytestmark = pytest.mark.usefixtures("serving_settings")


def _topics(recs) -> set[str | None]:
    return {factories.topic_of(r.item.pk) for r in recs}


def test_similar_uses_the_model_and_never_returns_the_item_itself(session):
    item = session.items["technology"][2]
    recs = similar(item, limit=5)
    assert recs.model_version == session.version.name
    assert [r.reason for r in recs] == ["similar_to_context"] * 5
    assert item.pk not in [r.item.pk for r in recs] and _topics(recs) == {"technology"}
    assert RecommendationLog.objects.get(recomm_id=recs.recomm_id).placement == "article"


def test_similar_ranks_by_the_mean_of_model_space_and_text_similarity(session):
    """Each source's [0, 1] score counts half: the list is what both sources agree on most."""
    item = session.items["climate"][1]
    by_model = model_similar(model_store.get_active(), item.pk, k=200, exclude={item.pk})
    by_text = content_similar([item.pk], k=200, exclude={item.pk})
    combined: dict[int, float] = {}
    for c in by_model + by_text:
        combined[c.item_id] = combined.get(c.item_id, 0.0) + c.score / 2
    expected = sorted(combined, key=lambda pk: (-combined[pk], pk))[:5]
    assert [r.item.pk for r in similar(item, limit=5)] == expected
    assert expected != [c.item_id for c in by_model[:5]] or expected != [c.item_id for c in by_text[:5]]


def test_similar_without_a_model_uses_content_embeddings(session):
    ModelVersion.objects.update(is_active=False)
    model_store.invalidate()
    recs = similar(session.items["football"][1].pk, limit=4)
    assert recs.model_version is None and _topics(recs) == {"football"}


def test_similar_for_an_item_without_embedding_uses_co_occurrence(session):
    ModelVersion.objects.update(is_active=False)
    model_store.invalidate()
    lonely = factories.make_item(title="No vector", embedded=False)
    partner = session.items["climate"][6]
    for _ in range(3):
        factories.add_events(factories.visitor_identity(), [lonely, partner])
    recs = similar(lonely, limit=3)
    assert recs.items[0].item == partner and recs.items[0].reason == "similar_to_context"


def test_similar_respects_blocks_and_the_identitys_not_interested(session):
    item = session.items["climate"][0]
    blocked, unwanted = session.items["climate"][1], session.items["climate"][2]
    EditorialRule.objects.create(action=EditorialRule.Action.BLOCK, item=blocked, placement="article")
    user = factories.user_identity()
    Feedback.objects.create(user_id=user.user_id, item=unwanted, kind=Feedback.Kind.NOT_INTERESTED)
    served = [r.item for r in similar(item, limit=10, identity=user)]
    assert blocked not in served and unwanted not in served
    assert unwanted in [r.item for r in similar(item, limit=10)]


def test_similar_leaves_out_what_the_identity_has_seen(session):
    item = session.items["climate"][0]
    user = factories.user_identity()
    first = similar(item, limit=3, identity=user)
    factories.add_events(user, [first.items[0].item])
    assert first.items[0].item not in [r.item for r in similar(item, limit=3, identity=user)]


def test_unknown_item_raises(db):
    with pytest.raises(RecommendationError):
        similar(987654321)


def test_trending_orders_by_the_decayed_score(session):
    hot = session.items["football"][:3]
    for n, item in enumerate(hot):
        item.trending_score = 30.0 - n
        item.save()
    recs = trending(limit=3)
    assert [r.item for r in recs] == hot and {r.reason for r in recs} == {"trending"}


def test_trending_in_a_window_counts_recent_events(session):
    recent, old = session.items["technology"][0], session.items["technology"][1]
    for _ in range(3):
        factories.add_events(factories.visitor_identity(), [recent], "like")
        factories.add_events(factories.visitor_identity(), [old], start=timezone.now() - timedelta(days=5))
    recs = trending(limit=2, window_hours=24)
    assert recs.items[0].item == recent and old not in [r.item for r in recs]


def test_trending_is_cached_for_anonymous_callers(session):
    assert trending(limit=3).recomm_id == trending(limit=3).recomm_id


def test_fresh_is_newest_first_and_skips_scheduled_items(session):
    newest = factories.make_item(
        topic="climate", title="Newest", published_at=timezone.now() - timedelta(minutes=1)
    )
    factories.make_item(topic="climate", title="Tomorrow", published_at=timezone.now() + timedelta(days=1))
    recs = fresh(limit=5)
    assert recs.items[0].item == newest and recs.items[0].reason == "fresh"
    assert "Tomorrow" not in [r.item.title for r in recs]


def test_fresh_leaves_out_undated_and_inactive_items(session):
    """fresh's query is one date range (for its index): items with no date must still fall out."""
    undated = factories.make_item(topic="climate", title="Undated")
    Item.objects.filter(pk=undated.pk).update(published_at=None)
    retired = factories.make_item(topic="climate", title="Retired", published_at=timezone.now())
    Item.objects.filter(pk=retired.pk).update(is_active=False)
    dated = factories.make_item(
        topic="climate", title="Dated", published_at=timezone.now() - timedelta(hours=1)
    )
    titles = [r.item.title for r in fresh(limit=50)]
    assert "Dated" in titles
    assert "Undated" not in titles and "Retired" not in titles
    assert dated.pk in {c.item_id for c in fresh_candidates(k=50)}
