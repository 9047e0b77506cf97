"""Feedback changes the very next list, without retraining: dislikes push a topic down, likes pull one up.

Also: like and dislike of one item are exclusive (the newest wins, ``clear_reaction``
undoes either), and a disliked item is never cited as the reason for another.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from recommender.identity import Identity
from recommender.models import Feedback
from recommender.serving.recommend import recommend
from recommender.tracking.feedback import record_feedback
from recommender.tracking.reactions import current_reactions, reaction_to
from tests.serving import factories

pytestmark = pytest.mark.usefixtures("serving_settings")


def _topics(recs) -> list[str | None]:
    return [factories.topic_of(r.item.pk) for r in recs]


def _later(minutes: int):
    return timezone.now() + timedelta(minutes=minutes)


def test_three_dislikes_of_a_topic_halve_its_share_of_the_next_list(session):
    user = factories.user_identity()
    climate, football = session.items["climate"], session.items["football"]
    factories.add_events(user, [climate[0], football[0], climate[1], football[1], climate[2]])
    before = _topics(recommend(user, limit=6))
    assert before.count("climate") >= 2

    factories.add_events(user, climate[:3], "dislike", start=_later(1))
    after = recommend(user, limit=6)
    assert _topics(after).count("climate") <= before.count("climate") / 2
    assert not {r.item.pk for r in after} & {c.pk for c in climate[:3]}
    assert all(r.because is None or r.because.pk not in {c.pk for c in climate[:3]} for r in after)


def test_three_likes_of_a_topic_raise_its_share_of_the_next_list(session):
    user = factories.user_identity()
    factories.add_events(user, session.items["football"][:4])
    before = _topics(recommend(user, limit=6)).count("technology")

    technology = session.items["technology"]
    factories.add_events(user, technology[:3], "like", start=_later(1))
    after = _topics(recommend(user, limit=6)).count("technology")
    assert after > before and after >= 2


def test_items_like_a_disliked_one_move_down_even_with_the_same_history(session, settings):
    """The push works on the blend, for an item whose own reads stay in the history."""
    user = factories.user_identity()
    climate, technology = session.items["climate"], session.items["technology"]
    factories.add_events(user, [technology[0], climate[0], technology[1], climate[1]])
    before = _topics(recommend(user, limit=8))
    assert before.count("climate") >= 2
    for item in climate[5:7]:
        record_feedback(user, item, Feedback.Kind.NOT_INTERESTED)
    after = _topics(recommend(user, limit=8))
    assert after.count("climate") < before.count("climate")


def test_like_and_dislike_are_exclusive_and_clear_reaction_undoes_them(session):
    user = factories.user_identity()
    item = session.items["climate"][0]
    assert reaction_to(user, item.pk) is None
    factories.add_events(user, [item], "like", start=_later(1))
    assert reaction_to(user, item.pk) == "like" and current_reactions(user).liked == (item.pk,)
    factories.add_events(user, [item], "dislike", start=_later(2))
    assert reaction_to(user, item.pk) == "dislike"
    assert current_reactions(user).disliked == (item.pk,) and current_reactions(user).liked == ()
    factories.add_events(user, [item], "clear_reaction", start=_later(3))
    assert reaction_to(user, item.pk) is None and current_reactions(user).disliked == ()
    assert reaction_to(Identity(user_id=None), item.pk) is None  # nobody: no state


def test_an_undone_dislike_lets_the_item_back(session, settings):
    settings.RECOMMENDER = {**settings.RECOMMENDER, "EXCLUDE_SEEN": False}
    user = factories.user_identity()
    climate = session.items["climate"]
    factories.add_events(user, climate[:3])
    factories.add_events(user, [climate[3]], "dislike", start=_later(1))
    assert climate[3].pk not in {r.item.pk for r in recommend(user, limit=20)}
    factories.add_events(user, [climate[3]], "clear_reaction", start=_later(2))
    assert climate[3].pk in {r.item.pk for r in recommend(user, limit=20)}
