"""Ranking rows are cached per process and per site generation: every write that changes one moves it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from recommender.admin import actions
from recommender.models import EditorialRule, Interaction, ItemTag
from recommender.serving.candidates import load_rows
from recommender.serving.recommend import recommend, recommend_rendered
from recommender.training import maintenance
from tests.serving import factories
from tests.serving.conftest import TEST_SETTINGS

pytestmark = pytest.mark.usefixtures("serving_settings")


def _queries(call) -> tuple[object, int]:
    with CaptureQueriesContext(connection) as queries:
        result = call()
    return result, len(queries)


def test_rows_are_read_once_per_generation_and_again_after_an_item_save(db):
    item = factories.make_item(topic="climate")
    rows, n = _queries(lambda: load_rows([item.pk]))
    assert n == 2 and rows[item.pk].tag_ids
    again, n = _queries(lambda: load_rows([item.pk]))
    assert n == 0 and again == rows
    item.is_active = False
    item.save()  # a signal moves the site generation
    assert load_rows([item.pk]) == {}


def test_a_bulk_tag_review_reaches_the_cached_rows(db):
    item = factories.make_item(topic="climate")
    sport = factories.make_tag("sport")
    ItemTag.objects.create(
        item=item, tag=sport, source=ItemTag.Source.AUTOMATIC, status=ItemTag.Status.PENDING
    )
    assert sport.pk not in load_rows([item.pk])[item.pk].tag_ids
    assert actions.review_tag_suggestions(ItemTag.objects.filter(tag=sport), ItemTag.Status.ACCEPTED)
    assert sport.pk in load_rows([item.pk])[item.pk].tag_ids


def test_recomputed_trending_reaches_the_cached_rows(db):
    item = factories.make_item(topic="climate")
    assert load_rows([item.pk])[item.pk].trending_score == 0.0
    user = factories.user_identity()
    factories.add_events(user, [item], event_type=Interaction.EventType.LIKE)
    maintenance.compute_trending()
    assert load_rows([item.pk])[item.pk].trending_score > 0.0


def test_a_rule_enabled_in_bulk_invalidates_cached_lists(session, admin_client):
    user = factories.user_identity()
    factories.add_events(user, session.items["climate"][:2])
    first = recommend(user, limit=1).items[0].item
    rule = EditorialRule.objects.create(action=EditorialRule.Action.BLOCK, item=first, is_enabled=False)
    assert recommend(user, limit=1).items[0].item == first
    response = admin_client.post(
        "/admin/recommender/editorialrule/", {"action": "enable", "_selected_action": [rule.pk]}
    )
    assert response.status_code == 302 and EditorialRule.objects.get(pk=rule.pk).is_enabled
    assert recommend(user, limit=1).items[0].item != first


def ids_of(recs) -> list[int]:
    """A module-level render function, as ``recommend_rendered`` requires."""
    return [r.item.pk for r in recs]


def test_a_rendered_list_is_cached_and_renewed_by_a_new_event(session, settings):
    settings.RECOMMENDER = {**TEST_SETTINGS, "TUNING_CACHE_SECONDS": 60, "MODEL_CHECK_INTERVAL": 60}
    user = factories.user_identity()
    factories.add_events(user, session.items["football"][:3])
    rendered = recommend_rendered(ids_of, user, limit=3)
    assert rendered == ids_of(recommend(user, limit=3))
    with CaptureQueriesContext(connection) as queries:
        assert recommend_rendered(ids_of, user, limit=3) == rendered
    assert len(queries) == 1, [q["sql"] for q in queries.captured_queries]  # the newest event id
    factories.add_events(user, [next(i for i in session.items["football"] if i.pk == rendered[0])])
    assert rendered[0] not in recommend_rendered(ids_of, user, limit=3)


def test_the_newest_event_id_is_the_first_of_the_last_events(db):
    """The raw query every cache hit runs agrees with the ORM's ``last_events_for``, ties included."""
    items = [factories.make_item(topic="climate") for _ in range(3)]
    user, visitor, nobody = factories.user_identity(), factories.visitor_identity(), factories.user_identity()
    start = timezone.now() - timedelta(hours=1)
    factories.add_events(user, items, start=start)
    factories.add_events(user, items[:1], start=start + timedelta(minutes=2))  # ties the newest
    factories.add_events(visitor, items[::-1])
    for who in (user, visitor, nobody):
        newest = Interaction.objects.last_events_for(who, 1).first()
        assert Interaction.objects.newest_id(who) == (newest.pk if newest else 0)
    assert Interaction.objects.newest_id(user) == max(
        Interaction.objects.filter(user_id=user.user_id).values_list("pk", flat=True)
    )
