"""The visitor cookie, identity resolution and the merge of a visitor's history at login."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import HttpResponse
from django.test import Client, RequestFactory, override_settings

from recommender.identity import Identity, identity_from_request
from recommender.middleware import VisitorIdMiddleware
from recommender.models import Interaction
from recommender.tracking.events import track
from recommender.visitor_cookie import signed_visitor_cookie
from tests import factories

COOKIE = "rec_vid"


def run(request):
    """Pass ``request`` through the middleware; returns (visitor id seen by the view, response)."""
    seen = {}

    def view(req):
        seen["visitor_id"] = req.recommender_visitor_id
        return HttpResponse("ok")

    response = VisitorIdMiddleware(view)(request)
    return seen["visitor_id"], response


def test_a_new_visitor_gets_a_signed_httponly_lax_cookie():
    visitor_id, response = run(RequestFactory().get("/"))
    assert len(visitor_id) == 32 and int(visitor_id, 16) >= 0
    cookie = response.cookies[COOKIE]
    assert cookie.value == signed_visitor_cookie(visitor_id)
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == 60 * 60 * 24 * 365


def test_a_known_visitor_keeps_its_id_without_a_new_cookie():
    request = RequestFactory().get("/")
    request.COOKIES[COOKIE] = signed_visitor_cookie("0123456789abcdef0123456789abcdef")
    visitor_id, response = run(request)
    assert visitor_id == "0123456789abcdef0123456789abcdef"
    assert COOKIE not in response.cookies


def test_a_tampered_cookie_is_replaced():
    request = RequestFactory().get("/")
    request.COOKIES[COOKIE] = signed_visitor_cookie("someone").replace("someone", "victim")
    visitor_id, response = run(request)
    assert visitor_id not in ("someone", "victim")
    assert response.cookies[COOKIE].value == signed_visitor_cookie(visitor_id)


@override_settings(RECOMMENDER={"VISITOR_COOKIE_NAME": "who", "VISITOR_COOKIE_AGE": 60})
def test_cookie_name_and_age_come_from_settings():
    _, response = run(RequestFactory().get("/"))
    assert COOKIE not in response.cookies
    assert int(response.cookies["who"]["max-age"]) == 60


@pytest.mark.django_db
def test_identity_from_request_for_visitors_and_users(user):
    request = RequestFactory().get("/")
    request.user = AnonymousUser()
    request.recommender_visitor_id = "v1"
    assert identity_from_request(request) == Identity(user_id=None, visitor_id="v1")
    request.user = user
    assert identity_from_request(request) == Identity(user_id=user.pk, visitor_id="v1")

    without_middleware = RequestFactory().get("/")
    without_middleware.user = AnonymousUser()
    assert not identity_from_request(without_middleware).is_known
    without_middleware.COOKIES[COOKIE] = signed_visitor_cookie("v2")
    assert identity_from_request(without_middleware) == Identity(user_id=None, visitor_id="v2")


@pytest.mark.django_db
def test_signing_in_merges_the_visitor_history_and_starts_a_new_visitor_id():
    user = factories.make_user("reader")
    item = factories.make_item()
    visitor_id = factories.new_visitor_id()
    track(Identity(None, visitor_id), item, "view")
    track(Identity(None, visitor_id), item, "like")
    client = Client()
    client.cookies[COOKIE] = signed_visitor_cookie(visitor_id)

    response = client.post("/login/", {"username": "reader", "password": factories.PASSWORD})
    assert response.status_code == 302
    assert Interaction.objects.filter(user=user, visitor_id="").count() == 2
    assert not Interaction.objects.filter(visitor_id=visitor_id).exists()
    new_cookie = response.cookies[COOKIE].value
    assert new_cookie != signed_visitor_cookie(visitor_id)
    assert visitor_id not in new_cookie
