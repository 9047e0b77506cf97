"""The OpenAPI schema served at ``schema/`` documents every serving endpoint, its parameters and responses."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

PREFIX = "/api/recommender/"
OPERATIONS = {
    "recommendations/": {"get"},
    "items/{item_id}/similar/": {"get"},
    "trending/": {"get"},
    "feedback/": {"post"},
    "me/": {"delete"},
    "me/history/": {"get"},
    "me/export/": {"get"},
    "me/personalization/": {"post"},
    "me/interests/": {"get"},
    "models/": {"get"},
    "models/{version_id}/activate/": {"post"},
    "models/rollback/": {"post"},
}


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        response = APIClient().get(reverse("recommender:schema"), {"format": "json"})
    assert response.status_code == 200
    return response.json()


def test_schema_is_valid_openapi(schema):
    validate_schema(schema)  # raises on an invalid document
    assert schema["openapi"].startswith("3.")


def test_schema_has_every_serving_path_and_method(schema):
    for path, methods in OPERATIONS.items():
        assert PREFIX + path in schema["paths"], path
        assert methods <= set(schema["paths"][PREFIX + path]), path


def test_recommendations_document_their_parameters_and_responses(schema):
    operation = schema["paths"][PREFIX + "recommendations/"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert set(params) == {"placement", "limit", "context_item", "page_token"}
    assert params["limit"]["schema"]["minimum"] == 1
    assert {"200", "400"} <= set(operation["responses"])
    item = schema["components"]["schemas"]["RecommendedItem"]["properties"]
    assert set(item) == {"id", "title", "url", "score", "reason", "because", "because_tag", "position"}
    assert item["because"]["nullable"] is True


def test_trending_and_history_document_their_query_parameters(schema):
    trending = {p["name"] for p in schema["paths"][PREFIX + "trending/"]["get"]["parameters"]}
    assert trending == {"limit", "window_hours"}
    history = schema["paths"][PREFIX + "me/history/"]["get"]
    assert {p["name"] for p in history["parameters"]} == {"page", "page_size"}
    page = history["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(schema["components"]["schemas"][page]["properties"]) == {
        "count",
        "next",
        "previous",
        "results",
    }


def test_feedback_documents_its_body(schema):
    content = schema["paths"][PREFIX + "feedback/"]["post"]["requestBody"]["content"]
    body = content["application/json"]["schema"]
    component = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert set(component["required"]) == {"item", "kind"}


def test_documentation_pages_render():
    client = APIClient()
    for name in ("recommender:swagger", "recommender:redoc"):
        response = client.get(reverse(name))
        assert response.status_code == 200 and reverse("recommender:schema") in response.content.decode()


def test_documentation_pages_load_their_scripts_from_our_static_files():
    """No CDN: the docs must work on an intranet with no internet access."""
    client = APIClient()
    for name in ("recommender:swagger", "recommender:redoc"):
        page = client.get(reverse(name)).content.decode()
        scripts = re.findall(r'<script[^>]+src="([^"]+)"', page)
        assert scripts and all(src.startswith("/static/") for src in scripts), scripts
