"""The serving API with a real trained tiny model: list shape, pages, feedback, personal data, model ops."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from recommender.identity import Identity
from recommender.ml.inference import Recommender
from recommender.models import Feedback, Interaction, Item, ModelVersion, Profile, RecommendationLog
from tests.serving import conftest as serving
from tests.serving import factories
from tests.serving.conftest import activate_model

# The service tests' fixtures: a tiny model trained once per session; settings and storage per test.
serving_settings = serving.serving_settings
trained_models = serving.trained_models

ITEM_KEYS = {
    "id",
    "title",
    "url",
    "score",
    "reason",
    "because",
    "because_tag",
    "topic",
    "fresh",
    "popular",
    "position",
}


@pytest.fixture(autouse=True)
def fast_passwords(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class Catalogue:
    """The trained catalogue in the database, the first model active and a second one to swap in."""

    items: dict[str, list[Item]]
    version: ModelVersion
    spare: Recommender


@pytest.fixture
def session(db, trained_models, serving_settings) -> Catalogue:
    return Catalogue(factories.make_catalogue(), activate_model(trained_models[0]), trained_models[1])


def signed_in(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def reader(session, topic: str = "climate", n: int = 4):
    """A user whose history is ``n`` items of one topic."""
    user = factories.make_user()
    factories.add_events(Identity(user_id=user.pk), session.items[topic][:n])
    return user


def test_recommendations_for_a_user_are_personalized_and_explained(session):
    user = reader(session)
    response = signed_in(user).get(reverse("recommender:recommendations"), {"limit": 4, "placement": "home"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {"recomm_id", "placement", "model_version", "next_page_token", "items"}
    assert body["placement"] == "home" and body["model_version"] == session.version.name
    assert len(body["items"]) == 4
    history = {i.pk: i.title for i in session.items["climate"][:4]}
    for position, entry in enumerate(body["items"]):
        assert set(entry) == ITEM_KEYS
        assert entry["position"] == position and entry["reason"] == "personalized"
        assert factories.topic_of(entry["id"]) == "climate"
        because, tag = entry["because"], entry["because_tag"]
        if because is None:  # no single read explains it: the climate reads together do
            assert tag["slug"] == "climate"
        else:
            assert because["id"] in history and because["title"] == history[because["id"]] and tag is None
        assert entry["url"].startswith("/articles/")
    log = RecommendationLog.objects.get(recomm_id=body["recomm_id"])
    assert log.user_id == user.pk and [e["item"] for e in log.items] == [e["id"] for e in body["items"]]


def test_anonymous_visitor_gets_trending_and_fresh(session):
    response = APIClient().get(reverse("recommender:recommendations"), {"limit": 3})
    assert response.status_code == 200
    assert {e["reason"] for e in response.json()["items"]} <= {"trending", "fresh"}


def test_next_page_token_returns_the_next_items_without_repeats(session):
    client = signed_in(reader(session))
    url = reverse("recommender:recommendations")
    first = client.get(url, {"limit": 3}).json()
    second = client.get(url, {"limit": 3, "page_token": first["next_page_token"]})
    assert second.status_code == 200
    second = second.json()
    assert len(second["items"]) == 3
    assert not {e["id"] for e in first["items"]} & {e["id"] for e in second["items"]}


def test_context_item_recommends_around_it(session):
    context = session.items["football"][0]
    url = reverse("recommender:recommendations")
    response = APIClient().get(url, {"context_item": context.pk, "limit": 3})
    assert response.status_code == 200
    items = response.json()["items"]
    assert context.pk not in [e["id"] for e in items]
    assert {e["reason"] for e in items} == {"similar_to_context"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "abc"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"limit": "-3"}, "limit"),
        ({"limit": "51"}, "limit"),
        ({"limit": "2.5"}, "limit"),
        ({"placement": "nowhere"}, "placement"),
        ({"placement": "home/../x"}, "placement"),
        ({"page_token": "garbage"}, "detail"),
        ({"page_token": "0123456789abcdef0123456789abcdef.1"}, "detail"),  # well-formed, never served
        ({"page_token": "0123456789abcdef0123456789abcdef.999"}, "detail"),
        ({"context_item": "abc"}, "context_item"),
        ({"context_item": "0"}, "context_item"),
        ({"context_item": "99999999999999999999999"}, "context_item"),
    ],
)
def test_malformed_recommendation_parameters_answer_400_with_a_message(session, params, field):
    response = APIClient().get(reverse("recommender:recommendations"), params)
    assert response.status_code == 400, response.content
    message = response.json()[field]
    messages = [message] if isinstance(message, str) else message
    assert messages and all(isinstance(m, str) and m for m in messages)


def test_a_page_token_of_another_user_is_refused(session):
    owner = signed_in(reader(session)).get(reverse("recommender:recommendations"), {"limit": 3}).json()
    thief = signed_in(factories.make_user())
    response = thief.get(reverse("recommender:recommendations"), {"page_token": owner["next_page_token"]})
    assert response.status_code == 400


def test_similar_items_leave_out_the_item_itself(session):
    item = session.items["technology"][0]
    response = APIClient().get(reverse("recommender:similar-items", args=[item.pk]), {"limit": 4})
    assert response.status_code == 200
    ids = [e["id"] for e in response.json()["items"]]
    assert len(ids) == 4 and item.pk not in ids
    assert {factories.topic_of(pk) for pk in ids} == {"technology"}


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("items/99999999/similar/", {}, 404),
        ("items/abc/similar/", {}, 404),
        ("items/{pk}/similar/", {"limit": "many"}, 400),
        ("items/{pk}/similar/", {"limit": "1000"}, 400),
        ("trending/", {"limit": "0"}, 400),
        ("trending/", {"window_hours": "abc"}, 400),
        ("trending/", {"window_hours": "0"}, 400),
        ("trending/", {"window_hours": "48"}, 400),  # only the fixed windows
        ("trending/", {"window_hours": "24.5"}, 400),
        ("me/history/", {"page": "0"}, 400),
        ("me/history/", {"page": "x"}, 400),
        ("me/history/", {"page_size": "1000"}, 400),
        ("me/history/", {"page_size": "0"}, 400),
        ("me/interests/", {"limit": "x"}, 400),
    ],
)
def test_malformed_parameters_of_other_endpoints(session, path, params, status):
    pk = session.items["football"][0].pk
    response = APIClient().get(f"/api/recommender/{path.format(pk=pk)}", params)
    assert response.status_code == status, response.content


def test_trending_lists_the_most_engaged_items(session):
    hot = session.items["football"][2]
    Item.objects.filter(pk=hot.pk).update(trending_score=50.0)
    response = APIClient().get(reverse("recommender:trending"), {"limit": 3})
    assert response.status_code == 200
    items = response.json()["items"]
    assert items[0]["id"] == hot.pk and items[0]["reason"] == "trending"


def test_trending_counts_events_in_one_of_the_fixed_windows(session):
    """window_hours counts events instead of the stored score; a window outside the set is a 400."""
    reader_id = factories.user_identity()
    factories.add_events(reader_id, [session.items["climate"][4]])
    response = APIClient().get(reverse("recommender:trending"), {"limit": 3, "window_hours": "24"})
    assert response.status_code == 200
    assert response.json()["items"][0]["id"] == session.items["climate"][4].pk
    refused = APIClient().get(reverse("recommender:trending"), {"window_hours": "25"})
    assert refused.status_code == 400 and "window_hours" in refused.json()


def test_not_interested_removes_the_item_from_the_next_call(session):
    client = signed_in(reader(session))
    url = reverse("recommender:recommendations")
    first = client.get(url, {"limit": 4}).json()
    rejected = first["items"][0]["id"]
    response = client.post(
        reverse("recommender:feedback"),
        {"item": rejected, "kind": "not_interested", "recomm_id": first["recomm_id"], "placement": "default"},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["kind"] == "not_interested"
    stored = Feedback.objects.get()
    assert stored.item_id == rejected and stored.recomm_id == first["recomm_id"]
    assert rejected not in [e["id"] for e in client.get(url, {"limit": 4}).json()["items"]]


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "not_interested"},
        {"item": 99999999, "kind": "not_interested"},
        {"item": "abc", "kind": "not_interested"},
        {"item": "{pk}", "kind": "love_it"},
        {"item": "{pk}", "kind": "report", "reason": "x" * 2001},
    ],
)
def test_malformed_feedback_answers_400(session, body):
    pk = session.items["football"][0].pk
    body = {k: (pk if v == "{pk}" else v) for k, v in body.items()}
    response = signed_in(factories.make_user()).post(reverse("recommender:feedback"), body, format="json")
    assert response.status_code == 400, response.content
    assert not Feedback.objects.exists()


def test_history_pages_through_the_users_own_events(session):
    user = reader(session, n=5)
    client = signed_in(user)
    first = client.get(reverse("recommender:history"), {"page_size": 2}).json()
    assert first["count"] == 5 and first["previous"] is None and len(first["results"]) == 2
    newest = session.items["climate"][4]
    assert first["results"][0]["item"]["id"] == newest.pk
    last = client.get(first["next"].replace("http://testserver", "").replace("page=2", "page=3")).json()
    assert last["next"] is None and len(last["results"]) == 1
    assert last["results"][0]["item"]["id"] == session.items["climate"][0].pk
    beyond = client.get(reverse("recommender:history"), {"page_size": 2, "page": 4})
    assert beyond.status_code == 404 and "detail" in beyond.json()


def test_export_is_a_json_attachment_with_all_their_data(session):
    user = reader(session, n=2)
    response = signed_in(user).get(reverse("recommender:export"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"].startswith("attachment;")
    data = response.json()
    assert data["identity"]["user_id"] == user.pk
    assert [e["item_id"] for e in data["interactions"]] == [i.pk for i in session.items["climate"][:2]]


def test_delete_me_removes_interactions_feedback_logs_and_profile(session):
    user = reader(session)
    client = signed_in(user)
    recs = client.get(reverse("recommender:recommendations"), {"limit": 2}).json()
    report = {"item": recs["items"][0]["id"], "kind": "report"}
    client.post(reverse("recommender:feedback"), report, format="json")
    client.post(reverse("recommender:personalization"), {"enabled": False}, format="json")
    response = client.delete(reverse("recommender:me"))
    assert response.status_code == 200
    counts = {"interactions": 4, "feedback": 1, "recommendations": 1, "profiles": 1}
    assert response.json()["deleted"] == counts
    for model in (Interaction, Feedback, RecommendationLog, Profile):
        assert not model.objects.filter(user=user).exists()


def test_personalization_opt_out_serves_non_personal_lists(session):
    client = signed_in(reader(session))
    response = client.post(reverse("recommender:personalization"), {"enabled": False}, format="json")
    assert response.status_code == 200 and response.json() == {"enabled": False}
    items = client.get(reverse("recommender:recommendations"), {"limit": 3}).json()["items"]
    assert {e["reason"] for e in items} <= {"trending", "fresh"}
    for bad in ({"enabled": "maybe"}, {}):
        assert client.post(reverse("recommender:personalization"), bad, format="json").status_code == 400


def test_interests_list_the_users_tags(session):
    user = factories.make_user()
    Profile.objects.create(user=user, interests={"climate": 2.0, "football": 1.0})
    response = signed_in(user).get(reverse("recommender:interests"))
    assert response.status_code == 200
    assert response.json() == [
        {"tag": {"slug": "climate", "name": "Climate"}, "score": 1.0},
        {"tag": {"slug": "football", "name": "Football"}, "score": 0.5},
    ]


def test_staff_list_activate_and_roll_back_models(session):
    staff = signed_in(factories.staff_user("ops", "change_modelversion"))
    listed = staff.get(reverse("recommender:models")).json()
    assert [v["name"] for v in listed] == [session.version.name] and listed[0]["is_active"]
    second = activate_model(session.spare, name="second")
    for version in (session.version, second):
        response = staff.post(reverse("recommender:model-activate", args=[version.pk]))
        assert response.status_code == 200 and response.json()["is_active"]
        assert ModelVersion.objects.active() == version
    response = staff.post(reverse("recommender:model-rollback"))
    assert response.status_code == 200 and response.json()["name"] == session.version.name
    assert ModelVersion.objects.active() == session.version


def test_activating_an_unusable_or_unknown_version_is_refused(session):
    staff = signed_in(factories.staff_user("ops", "change_modelversion"))
    failed = ModelVersion.objects.create(name="broken", status=ModelVersion.Status.FAILED)
    response = staff.post(reverse("recommender:model-activate", args=[failed.pk]))
    assert response.status_code == 400 and "broken" in response.json()["detail"]
    assert staff.post(reverse("recommender:model-activate", args=[99999999])).status_code == 404
    assert ModelVersion.objects.active() == session.version


def test_list_length_defaults_and_bounds_follow_the_admin_tuning(session):
    """DEFAULT_LIMIT and MAX_LIMIT are tunables: the API reads them from the tuning row, not settings."""
    from recommender.models import TuningSettings

    TuningSettings.objects.create(values={"DEFAULT_LIMIT": 2, "MAX_LIMIT": 3})
    client = signed_in(reader(session))
    url = reverse("recommender:recommendations")
    assert len(client.get(url).json()["items"]) == 2
    assert client.get(url, {"limit": 3}).status_code == 200
    refused = client.get(url, {"limit": 4})
    assert refused.status_code == 400 and "3" in str(refused.json())


@pytest.mark.parametrize("state", ["inactive", "scheduled"])
def test_an_unservable_item_is_as_unknown_as_a_missing_one(session, state):
    """No similar list, no context and no explanation is ever built on a withdrawn or future item."""
    item = session.items["climate"][2]
    change = (
        {"is_active": False} if state == "inactive" else {"published_at": timezone.now() + timedelta(days=1)}
    )
    Item.objects.filter(pk=item.pk).update(**change)
    missing = APIClient().get(reverse("recommender:similar-items", args=[99999999]))
    hidden = APIClient().get(reverse("recommender:similar-items", args=[item.pk]))
    assert hidden.status_code == missing.status_code == 404 and hidden.json() == missing.json()
    url = reverse("recommender:recommendations")
    as_context = APIClient().get(url, {"context_item": item.pk})
    unknown = APIClient().get(url, {"context_item": 99999999})
    assert as_context.status_code == unknown.status_code == 404
    assert "Unknown context item" in as_context.json()["detail"]
    user = factories.make_user()
    factories.add_events(Identity(user.pk), [item])  # a one-read history: that read explains every pick
    client = APIClient()
    client.force_authenticate(user)
    served = client.get(url, {"limit": 6}).json()["items"]
    assert served and all(entry["id"] != item.pk and entry["because"] is None for entry in served)
