"""Fixtures every test folder may use: users and API clients (anonymous visitor, signed-in user).

Folder-specific fixtures live in that folder's conftest; builders in tests/factories.py.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from recommender.serving.candidates import row_cache
from tests import factories


@pytest.fixture(autouse=True)
def _empty_cache():
    """Throttle counters, cached lists and cached item rows: no test may inherit another's."""
    cache.clear()
    row_cache.clear()
    yield
    cache.clear()
    row_cache.clear()


@pytest.fixture
def user(db):
    return factories.make_user()


@pytest.fixture
def staff_user(db):
    return factories.make_user(is_staff=True)


@pytest.fixture
def api_client() -> APIClient:
    """A client with no cookies: the visitor middleware gives it a new visitor id per request."""
    return APIClient()


@pytest.fixture
def visitor_client() -> APIClient:
    """An anonymous client holding a signed visitor cookie; its id is ``client.visitor_id``."""
    return factories.visitor_client()


@pytest.fixture
def user_client(user) -> APIClient:
    """A client signed in as ``user`` (session auth; CSRF not enforced, as in DRF's APIClient)."""
    client = APIClient()
    client.force_login(user)
    client.user = user
    return client
