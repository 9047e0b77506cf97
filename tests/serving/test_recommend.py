"""The recommend pipeline with a real trained tiny model: personalization, cold items, fallbacks, pages."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from recommender.identity import Identity
from recommender.models import ModelVersion, RecommendationLog
from recommender.serving import model_store
from recommender.serving import recommend as pipeline
from recommender.serving.reasons import reason_text
from recommender.serving.recommend import RecommendationError, recommend
from recommender.tracking.privacy import set_personalization
from tests.serving import factories
from tests.serving.conftest import activate_model

pytestmark = pytest.mark.usefixtures("serving_settings")


def test_history_in_one_topic_gets_that_topic_explained_by_its_reads(session):
    """Four climate reads share the credit: no single one explains an item, the four together do."""
    user = factories.user_identity()
    history = session.items["climate"][:4]
    factories.add_events(user, history)
    recs = recommend(user, limit=4)
    assert recs.model_version == session.version.name
    assert [r.reason for r in recs] == ["personalized"] * 4
    assert {factories.topic_of(r.item.pk) for r in recs} == {"climate"}
    assert all(r.because in history or r.because_tag.slug == "climate" for r in recs)
    assert all(r.object.title == r.item.title for r in recs)  # host objects, not just ids


@pytest.mark.parametrize(("flag", "text"), [("fresh", "New in"), ("popular", "Popular in")])
def test_a_model_pick_for_being_new_or_popular_is_served_so_in_its_topic(session, monkeypatch, flag, text):
    """The model's `fresh` reason (its item-age logit did most) reaches the reader as "New in …", its
    `popular` one (a typical reader's list holds the item as high) as "Popular in …"."""
    user = factories.user_identity()
    factories.add_events(user, session.items["climate"][:4])
    loaded = model_store.get_active()
    real = loaded.recommender.recommend

    def first_flagged(*args, **kwargs):  # the real list, with the model's reason on its first item
        recs = real(*args, **kwargs)
        first = dataclasses.replace(recs[0], explanation=None, group=None, fresh=False, popular=False)
        return [dataclasses.replace(first, **{flag: True}), *recs[1:]]

    monkeypatch.setattr(loaded.recommender, "recommend", first_flagged)
    recs = recommend(user, limit=4, use_cache=False)
    first = recs.items[0]
    assert getattr(first, flag) and first.reason == "personalized" and first.because is None
    assert reason_text(first) == f"{text} {first.topic.name}"


def test_a_just_published_article_outside_the_model_can_be_recommended(session, trained_models):
    user = factories.user_identity()
    factories.add_events(user, session.items["technology"][:6])
    recommend(user, limit=3)  # the model is loaded now, without the new article
    new = factories.make_item(topic="technology", title="Brand new gadget", published_at=timezone.now())
    assert str(new.pk) not in trained_models[0]  # the model never saw it
    recs = recommend(user, limit=3, use_cache=False)
    assert str(new.pk) in model_store.get_active().recommender
    assert new.pk in [r.item.pk for r in recs]
    assert {factories.topic_of(r.item.pk) for r in recs if r.item.pk != new.pk} <= {"technology"}


def test_recommendation_log_records_positions_reasons_and_model(session):
    user = factories.user_identity()
    factories.add_events(user, session.items["football"][:3])
    recs = recommend(user, placement="home", limit=3)
    log = RecommendationLog.objects.get(recomm_id=recs.recomm_id)
    assert len(recs.recomm_id) == 32 and log.user_id == user.user_id and log.placement == "home"
    assert log.model_version_id == session.version.pk
    assert [e["item"] for e in log.items] == [r.item.pk for r in recs]
    assert [e["position"] for e in log.items] == [0, 1, 2]
    assert {e["reason"] for e in log.items} == {"personalized"}


def test_results_are_cached_until_a_new_event(session):
    user = factories.user_identity()
    factories.add_events(user, session.items["football"][:3])
    first = recommend(user, limit=3)
    assert recommend(user, limit=3).recomm_id == first.recomm_id
    factories.add_events(user, [first.items[0].item])
    again = recommend(user, limit=3)
    assert again.recomm_id != first.recomm_id
    assert first.items[0].item.pk not in [r.item.pk for r in again]


def test_model_swap_mid_test_serves_the_new_version(session, trained_models):
    user = factories.user_identity()
    factories.add_events(user, session.items["climate"][:3])
    assert recommend(user, limit=3).model_version == session.version.name
    second = activate_model(trained_models[1], name="second")
    recs = recommend(user, limit=3)
    assert recs.model_version == "second"
    assert model_store.get_active().version.pk == second.pk
    assert {factories.topic_of(r.item.pk) for r in recs} == {"climate"}


def test_no_active_model_serves_trending(session):
    ModelVersion.objects.update(is_active=False)
    model_store.invalidate()
    for n, item in enumerate(session.items["football"]):
        item.trending_score = 10.0 - n
        item.save()
    user = factories.user_identity()
    factories.add_events(user, session.items["climate"][:3])
    recs = recommend(user, limit=5)
    assert recs.model_version is None
    assert [r.reason for r in recs] == ["trending"] * 5
    assert [r.item for r in recs] == session.items["football"][:5]


def test_new_visitor_gets_trending_and_fresh(session):
    session.items["football"][0].__class__.objects.filter(pk=session.items["football"][0].pk).update(
        trending_score=5.0
    )
    factories.make_item(topic="climate", title="Just in", published_at=timezone.now())
    recs = recommend(factories.visitor_identity(), limit=6)
    assert {r.reason for r in recs} == {"trending", "fresh"}
    assert next(r.item.title for r in recs if r.reason == "fresh") == "Just in"


def test_model_error_falls_back_to_content_similar_to_the_last_items(session, monkeypatch):
    user = factories.user_identity()
    history = session.items["technology"][:3]
    factories.add_events(user, history)
    loaded = model_store.get_active()

    def broken(*args, **kwargs):
        raise RuntimeError("model exploded")

    monkeypatch.setattr(loaded.recommender, "recommend", broken)
    recs = recommend(user, limit=4)
    assert [r.reason for r in recs] == ["fallback"] * 4
    assert {factories.topic_of(r.item.pk) for r in recs} == {"technology"}
    assert all(r.because in history for r in recs)


def test_opted_out_identity_gets_non_personalized_items(session):
    user = factories.user_identity()
    factories.add_events(user, session.items["climate"][:4])
    assert recommend(user, limit=3).items[0].reason == "personalized"
    set_personalization(user, False)
    recs = recommend(user, limit=3)
    assert recs and {r.reason for r in recs} <= {"trending", "fresh"}
    assert all(r.because is None for r in recs)
    set_personalization(user, True)
    assert recommend(user, limit=3).items[0].reason == "personalized"


def test_a_failure_inside_the_pipeline_never_propagates(session, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("rules table unreachable")

    monkeypatch.setattr(pipeline, "editorial_plan", broken)
    user = factories.user_identity()
    factories.add_events(user, session.items["climate"][:2])
    recs = recommend(user, limit=3)
    assert len(recs) == 3 and {r.reason for r in recs} <= {"trending", "fresh"}


def test_context_item_mixes_in_similar_items(session):
    context = session.items["football"][0]
    recs = recommend(factories.visitor_identity(), placement="article", limit=4, context_item=context.pk)
    assert [r.reason for r in recs] == ["similar_to_context"] * 4
    assert context.pk not in [r.item.pk for r in recs]
    assert {factories.topic_of(r.item.pk) for r in recs} == {"football"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"placement": "sidebar"}, "Unknown placement"),
        ({"limit": 0}, "limit"),
        ({"limit": 51}, "limit"),
        ({"limit": "5"}, "limit"),
        ({"context_item": 123456789}, "Unknown context item"),
        ({"page_token": "not-a-token"}, "Malformed page token"),
        ({"page_token": "0" * 32 + ".1"}, "Unknown or expired"),
        ({"exclude": ["x"]}, "exclude"),
    ],
)
def test_bad_arguments_raise_recommendation_error(db, kwargs, message):
    with pytest.raises(RecommendationError, match=message):
        recommend(Identity(user_id=None, visitor_id="v1"), **kwargs)


def test_page_tokens_never_repeat_items_and_belong_to_their_identity(session):
    user = factories.user_identity()
    factories.add_events(user, session.items["climate"][:2])
    first = recommend(user, limit=4)
    second = recommend(user, limit=4, page_token=first.next_page_token)
    third = recommend(user, limit=4, page_token=second.recomm_id)  # a recomm_id asks for the page after it
    pages = [[r.item.pk for r in page] for page in (first, second, third)]
    assert all(len(p) == 4 for p in pages)
    assert len({pk for p in pages for pk in p}) == 12
    assert (second.page, third.page) == (1, 2)
    assert RecommendationLog.objects.filter(recomm_id=f"{first.recomm_id}-2").exists()
    with pytest.raises(RecommendationError):
        recommend(factories.user_identity(), limit=4, page_token=first.next_page_token)


def test_an_unknown_identity_gets_no_page_token_it_could_not_use(session):
    """Its served lists are stored for nobody, so a token would always be refused."""
    for unknown in (None, Identity(user_id=None, visitor_id="")):
        served = recommend(unknown, limit=4)
        assert len(served.items) == 4 and served.next_page_token is None


def test_exclude_argument_and_limit(session):
    user = factories.user_identity()
    factories.add_events(user, session.items["climate"][:2])
    top = recommend(user, limit=2)
    later = recommend(user, limit=2, exclude=[top.items[0].item.pk])
    assert top.items[0].item.pk not in [r.item.pk for r in later]
    assert len(later) == 2


def test_old_events_beyond_the_history_length_are_ignored(session, settings):
    settings.RECOMMENDER = {**settings.RECOMMENDER, "HISTORY_LENGTH": 3}
    user = factories.user_identity()
    long_ago = timezone.now() - timedelta(days=30)
    factories.add_events(user, session.items["football"][:6], start=long_ago)
    factories.add_events(user, session.items["climate"][:3])
    recs = recommend(user, limit=3)
    assert {factories.topic_of(r.item.pk) for r in recs} == {"climate"}


def test_a_request_is_resolved_to_its_user(session, rf):
    user = factories.user_identity()
    factories.add_events(user, session.items["football"][:3])
    request = rf.get("/")
    request.user = get_user_model().objects.get(pk=user.user_id)
    request.recommender_visitor_id = "browser-1"
    recs = recommend(request, limit=2)
    assert {factories.topic_of(r.item.pk) for r in recs} == {"football"}
    assert RecommendationLog.objects.get(recomm_id=recs.recomm_id).user_id == user.user_id
