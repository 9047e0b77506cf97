"""The consent hook: until the adapter's ``tracking_allowed`` says yes, no visitor cookie and no event."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from recommender.adapter import DefaultRecommenderAdapter
from recommender.models import Interaction
from tests import factories

pytestmark = pytest.mark.django_db
URL = "/api/recommender/events/"


class ConsentCookieAdapter(DefaultRecommenderAdapter):
    """Tracks only browsers that carry the site's consent cookie."""

    def tracking_allowed(self, request) -> bool:
        return request.COOKIES.get("consent") == "yes"


@pytest.fixture(autouse=True)
def consent_adapter(settings):
    settings.RECOMMENDER = {**settings.RECOMMENDER, "ADAPTER": "tests.test_consent.ConsentCookieAdapter"}


def test_no_visitor_cookie_until_the_visitor_agrees():
    client = Client()
    assert client.get("/").status_code == 200
    assert "rec_vid" not in client.cookies  # nothing set, the page still renders
    client.cookies["consent"] = "yes"
    client.get("/")
    assert "rec_vid" in client.cookies


def test_no_event_is_stored_without_consent_signed_in_or_not(user):
    item = factories.make_item()
    body = {"events": [{"item": item.pk, "event_type": "view"}]}
    visitor = factories.visitor_client()  # holds a visitor cookie from before consent was withdrawn
    refused = visitor.post(URL, body, format="json")
    assert refused.status_code == 403 and "until they agree" in refused.json()["detail"]
    signed_in = APIClient()
    signed_in.force_login(user)
    assert signed_in.post(URL, body, format="json").status_code == 403
    assert not Interaction.objects.exists()
    signed_in.cookies["consent"] = "yes"
    assert signed_in.post(URL, body, format="json").status_code == 201
    assert Interaction.objects.get().user_id == user.pk
