"""Who may call each serving endpoint: anonymous visitors, a user, another user, staff; CSRF and throttles."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.urls import URLPattern, get_resolver, reverse
from django.utils import timezone
from rest_framework.test import APIClient

from recommender.api.throttling import RecommenderAnonThrottle, RecommenderUserThrottle
from recommender.api.views import ServingView
from recommender.identity import Identity
from recommender.models import Feedback, Interaction, Item, ModelVersion, Profile
from tests.serving import conftest as serving
from tests.serving import factories
from tests.serving.conftest import activate_model

serving_settings = serving.serving_settings  # settings, artifact storage in tmp, fresh model store
trained_models = serving.trained_models

CSRF_SECRET = "a" * 32


@pytest.fixture(autouse=True)
def fast_passwords(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class World:
    """Two users with histories, a staff user, one item to act on, and two models.

    ``active`` is served; ``version`` was served before, so activating it and rolling
    back both have something to do.
    """

    item: Item
    active: ModelVersion
    version: ModelVersion
    alice: object
    bob: object
    staff: object


@pytest.fixture
def world(db, trained_models, serving_settings) -> World:
    items = factories.make_catalogue()
    previous = activate_model(trained_models[1], name="previous")
    ModelVersion.objects.filter(pk=previous.pk).update(is_active=False, activated_at=timezone.now())
    active = activate_model(trained_models[0], name="active")
    alice, bob = factories.make_user("alice"), factories.make_user("bob")
    factories.add_events(Identity(alice.pk), items["climate"][:3])
    factories.add_events(Identity(bob.pk), items["football"][:2])
    staff = factories.staff_user("staff", "change_modelversion")
    return World(items["technology"][0], active, previous, alice, bob, staff)


def client_for(role: str, world: World) -> APIClient:
    client = APIClient()
    if role != "anonymous":
        client.force_authenticate(getattr(world, role))
    return client


def call(client: APIClient, method: str, path: str, world: World, body: dict | None = None):
    url = "/api/recommender/" + path.format(item=world.item.pk, version=world.version.pk)
    if body is not None:
        body = {k: world.item.pk if v == "{item}" else v for k, v in body.items()}
    return getattr(client, method)(url, body, format="json")


PUBLIC = [
    ("get", "recommendations/", None),
    ("get", "items/{item}/similar/", None),
    ("get", "trending/", None),
    ("get", "schema/", None),
]
OWN_DATA = [
    ("post", "feedback/", {"item": "{item}", "kind": "not_interested"}),
    ("get", "me/history/", None),
    ("get", "me/export/", None),
    ("get", "me/interests/", None),
    ("post", "me/personalization/", {"enabled": False}),
    ("delete", "me/", None),
]
STAFF_ONLY = [
    ("get", "models/", None),
    ("post", "models/{version}/activate/", None),
    ("post", "models/rollback/", None),
]
ROLES = ["anonymous", "alice", "staff"]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path", "body"), PUBLIC + OWN_DATA)
def test_anyone_with_an_identity_may_use_the_serving_and_own_data_endpoints(world, role, method, path, body):
    response = call(client_for(role, world), method, path, world, body)
    assert response.status_code in (200, 201), response.content


@pytest.mark.parametrize("role", ["anonymous", "alice"])
@pytest.mark.parametrize(("method", "path", "body"), STAFF_ONLY)
def test_model_operations_are_refused_to_non_staff(world, role, method, path, body):
    response = call(client_for(role, world), method, path, world, body)
    assert response.status_code == 403
    assert ModelVersion.objects.active() == world.active  # nothing changed


@pytest.mark.parametrize(("method", "path", "body"), STAFF_ONLY)
def test_staff_without_the_model_permissions_may_not_run_model_operations(world, method, path, body):
    """As in the admin: staff status alone manages no models."""
    client = APIClient()
    client.force_authenticate(factories.staff_user("editor"))
    response = call(client, method, path, world, body)
    assert response.status_code == 403 and "recommender.change_modelversion" in response.json()["detail"]
    assert ModelVersion.objects.active() == world.active


def test_the_view_permission_lists_models_but_changes_none(world):
    client = APIClient()
    client.force_authenticate(factories.staff_user("viewer", "view_modelversion"))
    assert call(client, "get", "models/", world).status_code == 200
    for path in ("models/{version}/activate/", "models/rollback/"):
        assert call(client, "post", path, world).status_code == 403
    assert ModelVersion.objects.active() == world.active


@pytest.mark.parametrize(("method", "path", "body"), STAFF_ONLY)
def test_staff_with_the_change_permission_may_run_model_operations(world, method, path, body):
    response = call(client_for("staff", world), method, path, world, body)
    assert response.status_code == 200, response.content
    if method == "post":
        assert ModelVersion.objects.active() == world.version


@pytest.mark.parametrize(("method", "path", "body"), OWN_DATA)
def test_own_data_endpoints_need_a_user_or_a_visitor_id(world, settings, method, path, body):
    middleware = "recommender.middleware.VisitorIdMiddleware"
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != middleware]
    response = call(APIClient(), method, path, world, body)
    assert response.status_code == 403
    assert not Feedback.objects.exists()


def test_a_user_sees_only_their_own_history_and_export(world):
    bob = client_for("bob", world)
    for params in ({}, {"user": world.alice.pk}, {"user_id": world.alice.pk}):
        history = bob.get(reverse("recommender:history"), params).json()["results"]
        assert len(history) == 2 and all(factories.topic_of(e["item"]["id"]) == "football" for e in history)
        export = bob.get(reverse("recommender:export"), params).json()
        assert export["identity"]["user_id"] == world.bob.pk
        assert {e["item_id"] for e in export["interactions"]} == {e["item"]["id"] for e in history}


def test_deleting_my_data_leaves_other_users_data_alone(world):
    Profile.objects.create(user=world.alice, personalization_enabled=False)
    response = client_for("bob", world).delete(reverse("recommender:me") + f"?user={world.alice.pk}")
    assert response.status_code == 200 and response.json()["deleted"]["interactions"] == 2
    assert not Interaction.objects.filter(user=world.bob).exists()
    assert Interaction.objects.filter(user=world.alice).count() == 3
    assert Profile.objects.filter(user=world.alice).exists()


def test_feedback_and_opt_out_act_on_the_sender_only(world):
    bob = client_for("bob", world)
    body = {"item": world.item.pk, "kind": "not_interested", "user": world.alice.pk}
    assert bob.post(reverse("recommender:feedback"), body, format="json").status_code == 201
    assert Feedback.objects.get().user_id == world.bob.pk
    response = bob.post(reverse("recommender:personalization"), {"enabled": False, "user": world.alice.pk})
    assert response.status_code == 200
    assert list(Profile.objects.values_list("user_id", "personalization_enabled")) == [(world.bob.pk, False)]


def test_a_visitor_acts_as_its_own_cookie_only(world):
    visitor = APIClient()
    visitor.get(reverse("recommender:recommendations"))  # the middleware issues the visitor cookie
    response = visitor.post(reverse("recommender:feedback"), {"item": world.item.pk, "kind": "report"})
    assert response.status_code == 201
    stored = Feedback.objects.get()
    assert stored.user_id is None and stored.visitor_id
    stranger = APIClient()
    assert stranger.get(reverse("recommender:export")).json()["feedback"] == []
    assert visitor.get(reverse("recommender:export")).json()["feedback"][0]["kind"] == "report"


@pytest.mark.parametrize("role", ["alice", "anonymous"])
def test_unsafe_methods_need_a_csrf_token_with_cookie_identities(world, role):
    client = APIClient(enforce_csrf_checks=True)
    if role == "alice":
        world.alice.set_password("pw")
        world.alice.save()
        assert client.login(username="alice", password="pw")
    else:
        client.get(reverse("recommender:trending"))  # visitor cookie
    body = {"item": world.item.pk, "kind": "not_interested"}
    assert client.post(reverse("recommender:feedback"), body, format="json").status_code == 403
    assert client.delete(reverse("recommender:me")).status_code == 403
    opt_out = client.post(reverse("recommender:personalization"), {"enabled": False}, format="json")
    assert opt_out.status_code == 403
    assert not Feedback.objects.exists() and not Profile.objects.exists()
    client.cookies["csrftoken"] = CSRF_SECRET
    response = client.post(reverse("recommender:feedback"), body, format="json", HTTP_X_CSRFTOKEN=CSRF_SECRET)
    assert response.status_code == 201
    assert client.delete(reverse("recommender:me"), HTTP_X_CSRFTOKEN=CSRF_SECRET).status_code == 200


@pytest.mark.parametrize(
    ("role", "throttle", "scope"),
    [
        ("anonymous", RecommenderAnonThrottle, "recommender_anon"),
        ("alice", RecommenderUserThrottle, "recommender_user"),
    ],
)
def test_requests_over_the_rate_are_throttled(world, monkeypatch, role, throttle, scope):
    monkeypatch.setattr(throttle, "THROTTLE_RATES", {scope: "3/min"})
    client = client_for(role, world)
    codes = [client.get(reverse("recommender:trending")).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert client_for("bob", world).get(reverse("recommender:trending")).status_code == 200


def serving_patterns() -> list[URLPattern]:
    resolver = get_resolver()
    patterns = resolver.url_patterns
    api = next(p for p in patterns if getattr(p, "namespace", None) == "recommender")
    return [p for p in api.url_patterns if issubclass(getattr(p.callback, "view_class", object), ServingView)]


def test_every_serving_view_declares_permissions_and_both_throttles():
    patterns = serving_patterns()
    assert len(patterns) == 12
    for pattern in patterns:
        view = pattern.callback.view_class
        assert any("permission_classes" in vars(cls) for cls in view.__mro__ if cls is not ServingView), view
        assert {RecommenderAnonThrottle, RecommenderUserThrottle} <= set(view.throttle_classes), view
