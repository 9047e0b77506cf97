"""``POST /api/recommender/events/``: idempotent batches, per-event errors, only one's own events."""

from __future__ import annotations

import json

import pytest
from django.test import RequestFactory
from django.urls import reverse
from rest_framework.test import APIClient

from recommender.api.throttling import RecommenderAnonThrottle, RecommenderVisitorThrottle
from recommender.conf import recommender_settings
from recommender.models import Interaction
from recommender.visitor_cookie import visitor_id_from_cookie
from tests import factories

pytestmark = pytest.mark.django_db
URL = "/api/recommender/events/"


def post(client: APIClient, events: list, **kwargs):
    return client.post(URL, {"events": events}, format="json", **kwargs)


@pytest.fixture
def item():
    return factories.make_item()


def test_route_is_named():
    assert reverse("recommender:events") == URL


def test_a_visitor_batch_is_stored_once(visitor_client, item):
    events = [
        {
            "event_id": "a-1",
            "item": item.pk,
            "event_type": "impression",
            "placement": "home",
            "recomm_id": "r9",
        },
        {"event_id": "a-2", "item": item.pk, "event_type": "read", "value": 0.75, "session_id": "s1"},
    ]
    first = post(visitor_client, events)
    assert (first.status_code, first.json()) == (201, {"created": 2, "duplicates": 0})
    again = post(visitor_client, events)
    assert (again.status_code, again.json()) == (200, {"created": 0, "duplicates": 2})
    rows = Interaction.objects.order_by("event_id")
    assert [(r.event_id, r.visitor_id, r.user_id) for r in rows] == [
        ("a-1", visitor_client.visitor_id, None),
        ("a-2", visitor_client.visitor_id, None),
    ]
    assert (rows[0].placement, rows[0].recomm_id, rows[1].value, rows[1].session_id) == (
        "home",
        "r9",
        0.75,
        "s1",
    )
    item.refresh_from_db()
    assert item.impression_count == 1


def test_a_beacon_sends_json_as_text_plain(visitor_client, item):
    body = json.dumps({"events": [{"event_id": "b-1", "item": item.pk, "event_type": "click"}]})
    response = visitor_client.generic("POST", URL, body, content_type="text/plain;charset=UTF-8")
    assert response.status_code == 201
    assert Interaction.objects.get().event_type == "click"


def test_a_new_browser_gets_a_visitor_id_with_its_first_batch(api_client, item):
    response = post(api_client, [{"item": item.pk, "event_type": "view"}])
    assert response.status_code == 201
    cookie = response.cookies[recommender_settings.VISITOR_COOKIE_NAME]
    request = RequestFactory().get("/")
    request.COOKIES[cookie.key] = cookie.value
    assert Interaction.objects.get().visitor_id == visitor_id_from_cookie(request)
    assert cookie["httponly"] and cookie["samesite"] == "Lax"


def test_invalid_events_are_reported_by_index_and_not_stored(visitor_client, item):
    response = post(
        visitor_client,
        [
            {"event_id": "ok-1", "item": item.pk, "event_type": "view"},
            {"event_id": "bad-type", "item": item.pk, "event_type": "teleport"},
            {"event_id": "bad-item", "item": 987654, "event_type": "view"},
            {"event_id": "bad-portion", "item": item.pk, "event_type": "read", "value": 1.5},
            "not an event",
            {"event_id": "no id chars!", "item": "x", "event_type": "view"},
        ],
    )
    assert response.status_code == 400
    body = response.json()
    assert (body["created"], body["duplicates"]) == (1, 0)
    errors = body["errors"]
    assert sorted(errors) == ["1", "2", "3", "4", "5"]
    assert "Unknown event type 'teleport'" in errors["1"]["event_type"][0]
    assert errors["2"] == {"item": ["Unknown item 987654."]}
    assert "between 0 and 1" in errors["3"]["value"][0]
    assert "non_field_errors" in errors["4"]
    assert set(errors["5"]) == {"event_id", "item"}
    assert list(Interaction.objects.values_list("event_id", flat=True)) == ["ok-1"]


@pytest.mark.parametrize(
    "body",
    [
        {"events": []},
        {"events": "nope"},
        {"something": "else"},
        [{"item": 1, "event_type": "view"}],
    ],
)
def test_malformed_batches_are_refused_whole(visitor_client, body):
    response = visitor_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert not Interaction.objects.exists()


def test_a_batch_over_the_limit_stores_nothing(visitor_client, item):
    events = [{"item": item.pk, "event_type": "view"} for _ in range(501)]
    response = post(visitor_client, events)
    assert response.status_code == 400
    assert response.json() == {"events": ["At most 500 events per batch; got 501."]}
    assert not Interaction.objects.exists()


def test_unparseable_json_is_a_400(visitor_client):
    response = visitor_client.generic("POST", URL, "{not json", content_type="application/json")
    assert response.status_code == 400


def test_a_visitor_may_name_itself_but_no_one_else(visitor_client, item, user):
    own = post(
        visitor_client, [{"item": item.pk, "event_type": "view", "visitor_id": visitor_client.visitor_id}]
    )
    assert own.status_code == 201
    other_visitor = post(
        visitor_client,
        [
            {"item": item.pk, "event_type": "like"},
            {"item": item.pk, "event_type": "like", "visitor_id": "victim"},
        ],
    )
    assert other_visitor.status_code == 403
    assert "another visitor" in other_visitor.json()["detail"]
    as_user = post(visitor_client, [{"item": item.pk, "event_type": "like", "user": user.pk}])
    assert as_user.status_code == 403
    assert Interaction.objects.count() == 1


def test_a_user_writes_only_for_itself(user_client, item):
    user = user_client.user
    own = post(user_client, [{"item": item.pk, "event_type": "like", "user": user.pk}])
    assert own.status_code == 201
    assert Interaction.objects.get().user == user
    other = post(user_client, [{"item": item.pk, "event_type": "like", "user": user.pk + 1}])
    assert other.status_code == 403
    assert Interaction.objects.count() == 1


def test_a_forged_visitor_cookie_is_not_accepted(item):
    client = APIClient()
    client.cookies[recommender_settings.VISITOR_COOKIE_NAME] = "victim-visitor-id:forged-signature"
    response = post(client, [{"item": item.pk, "event_type": "view"}])
    assert response.status_code == 201
    assert Interaction.objects.get().visitor_id != "victim-visitor-id"


def test_signed_in_users_need_a_csrf_token_visitors_do_not(user, item):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    refused = post(client, [{"item": item.pk, "event_type": "view"}])
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    token = "a" * 32
    client.cookies["csrftoken"] = token
    assert post(client, [{"item": item.pk, "event_type": "view"}], HTTP_X_CSRFTOKEN=token).status_code == 201

    visitor = factories.visitor_client(enforce_csrf_checks=True)
    assert post(visitor, [{"item": item.pk, "event_type": "view"}]).status_code == 201
    assert Interaction.objects.count() == 2


def test_anonymous_posts_are_throttled(visitor_client, item, monkeypatch):
    monkeypatch.setattr(RecommenderAnonThrottle, "THROTTLE_RATES", {"recommender_anon": "2/min"})
    responses = [post(visitor_client, [{"item": item.pk, "event_type": "view"}]) for _ in range(3)]
    assert [r.status_code for r in responses] == [201, 201, 429]
    assert 0 < int(responses[2]["Retry-After"]) <= 60  # the tracker waits this long, then resends


def _rates(monkeypatch, *, visitor: str, ip: str) -> None:
    monkeypatch.setattr(RecommenderVisitorThrottle, "THROTTLE_RATES", {"recommender_visitor": visitor})
    monkeypatch.setattr(RecommenderAnonThrottle, "THROTTLE_RATES", {"recommender_anon": ip})


def test_visitors_behind_one_ip_have_buckets_of_their_own(item, monkeypatch):
    _rates(monkeypatch, visitor="2/min", ip="100/min")
    first, neighbour = factories.visitor_client(), factories.visitor_client()  # same REMOTE_ADDR
    view = [{"item": item.pk, "event_type": "view"}]
    assert [post(first, view).status_code for _ in range(3)] == [201, 201, 429]
    assert post(neighbour, view).status_code == 201


def test_the_ip_bucket_is_a_ceiling_for_everyone_behind_it(item, monkeypatch):
    _rates(monkeypatch, visitor="100/min", ip="3/min")
    view = [{"item": item.pk, "event_type": "view"}]
    assert [post(factories.visitor_client(), view).status_code for _ in range(4)] == [201, 201, 201, 429]


def test_behind_a_proxy_num_proxies_gives_each_client_its_ip(item, monkeypatch, settings):
    """Without NUM_PROXIES the IP is the proxy's (a forged X-Forwarded-For buys no new bucket);
    with it, each client's own address from X-Forwarded-For."""
    _rates(monkeypatch, visitor="100/min", ip="1/min")
    view = [{"item": item.pk, "event_type": "view"}]

    def from_client(ip: str) -> int:
        return post(
            factories.visitor_client(), view, HTTP_X_FORWARDED_FOR=ip, REMOTE_ADDR="10.0.0.1"
        ).status_code

    assert [from_client("203.0.113.5"), from_client("198.51.100.7")] == [201, 429]  # the proxy's bucket
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    cache = RecommenderAnonThrottle.cache
    cache.clear()
    assert [from_client("203.0.113.5"), from_client("198.51.100.7")] == [201, 201]
    assert from_client("203.0.113.5") == 429


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"HTTP_ORIGIN": "https://evil.example"}, 403),
        ({"HTTP_ORIGIN": "null"}, 403),  # a sandboxed frame elsewhere
        ({"HTTP_SEC_FETCH_SITE": "cross-site"}, 403),
        ({"HTTP_ORIGIN": "https://evil.example", "HTTP_SEC_FETCH_SITE": "cross-site"}, 403),
        ({"HTTP_ORIGIN": "http://testserver", "HTTP_SEC_FETCH_SITE": "same-origin"}, 201),
        ({"HTTP_ORIGIN": "https://shop.example", "HTTP_SEC_FETCH_SITE": "cross-site"}, 201),  # trusted
        ({}, 201),  # not a browser page: a server-side client
    ],
)
def test_events_posted_from_another_site_are_refused(visitor_client, item, settings, headers, status):
    """Another site cannot make its visitors' browsers inject events (and steer Trending)."""
    settings.CSRF_TRUSTED_ORIGINS = ["https://shop.example"]
    response = post(visitor_client, [{"item": item.pk, "event_type": "view"}], **headers)
    assert response.status_code == status, response.content
    assert Interaction.objects.count() == (1 if status == 201 else 0)
    if status == 403:
        assert "this site" in response.json()["detail"]
