"""The OpenAPI schema served at ``schema/`` documents every serving endpoint, its parameters and responses."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from recommender.conf import recommender_settings
from tests.api.test_recommendations import ITEM_KEYS

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
    assert set(item) == ITEM_KEYS  # the schema documents exactly what the endpoint returns
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


def descriptions(node) -> list[str]:
    """Every description and summary in the schema, however deep."""
    if isinstance(node, dict):
        own = [v for k, v in node.items() if k in ("description", "summary") and isinstance(v, str)]
        return own + [text for value in node.values() for text in descriptions(value)]
    if isinstance(node, list):
        return [text for value in node for text in descriptions(value)]
    return []


def test_event_batches_document_each_event_and_the_batch_limits(schema):
    batch = schema["components"]["schemas"]["EventBatch"]["properties"]["events"]
    assert batch["type"] == "array" and batch["minItems"] == 1
    assert batch["maxItems"] == recommender_settings.MAX_EVENTS_PER_BATCH
    event = schema["components"]["schemas"][batch["items"]["$ref"].rsplit("/", 1)[1]]
    assert set(event["required"]) == {"item", "event_type"}
    fields = event["properties"]
    assert fields["item"] == {**fields["item"], "type": "integer", "minimum": 1}
    assert fields["event_id"]["maxLength"] == 64 and fields["event_id"]["pattern"]
    assert fields["value"]["type"] == "number" and fields["timestamp"]["format"] == "date-time"
    event_type = fields["event_type"]
    enum = schema["components"]["schemas"][event_type["allOf"][0]["$ref"].rsplit("/", 1)[1]]["enum"]
    assert {"view", "click", "impression"} <= set(enum) and event_type["maxLength"] == 32
    assert all(field.get("description") for field in fields.values()), fields


def test_descriptions_are_plain_text_for_api_users(schema):
    texts = descriptions(schema)
    assert len(texts) > 30
    rst = [t for t in texts if "``" in t or re.search(r":(class|func|meth|mod|attr):`", t)]
    assert rst == []
    internal = ("validated_data", "for the view", "recommend service", "RecommendedItem")
    assert [t for t in texts if any(word in t for word in internal)] == []
