"""``for_identity``: the one rule for whose rows are whose, on every model that stores a reader's rows."""

from __future__ import annotations

import pytest

from recommender.identity import Identity
from recommender.models import Feedback, Interaction, Profile, RecommendationLog
from tests.serving import factories

pytestmark = pytest.mark.django_db


def test_a_user_owns_its_rows_whatever_browser_they_came_from():
    item = factories.make_item(topic="climate")
    user = factories.user_identity()
    browser = "shared-browser"
    # A user's event keeps the cookie of the browser it came from; a later anonymous reader of that
    # browser has the same visitor id and must not see it.
    Interaction.objects.create(user_id=user.user_id, visitor_id=browser, item=item, event_type="view")
    anonymous = Identity(user_id=None, visitor_id=browser)
    factories.add_events(anonymous, [item])
    assert Interaction.objects.for_identity(user).count() == 1
    assert Interaction.objects.for_identity(anonymous).count() == 1
    assert Interaction.objects.for_identity(anonymous).get().user_id is None


def test_an_unknown_identity_owns_nothing_even_where_anonymous_rows_have_no_visitor_id():
    item = factories.make_item(topic="climate")
    # Only Interaction forbids rows without an owner; the others can hold such rows.
    Feedback.objects.create(user=None, visitor_id="", item=item, kind=Feedback.Kind.NOT_INTERESTED)
    RecommendationLog.objects.create(recomm_id="r-nobody", visitor_id="", placement="home", items=[])
    Profile.objects.create(visitor_id="")
    unknown = Identity(user_id=None, visitor_id="")
    for model in (Interaction, Feedback, RecommendationLog, Profile):
        assert not model.objects.for_identity(unknown).exists()
        assert not model.objects.for_identity(None).exists()
    assert Interaction.objects.newest_id(unknown) == 0
    assert list(Interaction.objects.last_events_for(unknown)) == []
