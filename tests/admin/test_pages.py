"""What the admin pages say: tools on the index, people by name, rounded numbers, registered types only.

Layout at a given screen width is checked in Chromium (tests/integration/test_admin_browser.py).
"""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from recommender.admin import display
from recommender.models import Feedback, ModelVersion, RecommendationLog
from tests.admin import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_hasher(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def client_for(account) -> Client:
    client = Client()
    client.force_login(account)
    return client


def tools(html: str) -> dict[str, str]:
    """Link text -> href of the recommender tools module."""
    module = re.search(r'<div class="module" id="recommender-tools">(.*?)</div>', html, re.S)
    links = re.findall(r'<th scope="row"><a href="([^"]+)">([^<]+)</a>', module.group(1))
    return {text: href for href, text in links}


def test_the_admin_index_links_to_the_dashboard_tuning_and_model_registry() -> None:
    html = client_for(factories.user("boss", superuser=True)).get(reverse("admin:index")).content.decode()
    links = tools(html)
    assert links["Dashboard"] == reverse("admin:recommender_dashboard")
    assert links["Tuning and live preview"] == reverse("admin:recommender_tuningsettings_changelist")
    assert links["Model registry"] == reverse("admin:recommender_modelversion_changelist")
    assert 'class="app-recommender module' in html  # the usual app list is still there


def test_the_index_offers_only_the_tools_one_may_open() -> None:
    analyst = factories.user("analyst", perms=("view_recommendationlog",))
    assert set(tools(client_for(analyst).get(reverse("admin:index")).content.decode())) == {"Dashboard"}
    nobody = factories.user("nobody")
    assert 'id="recommender-tools"' not in client_for(nobody).get(reverse("admin:index")).content.decode()


def test_served_lists_and_feedback_name_people_by_username() -> None:
    reader = factories.user("ada_reader", staff=False)
    item = factories.article_item("Story")
    RecommendationLog.objects.create(recomm_id="a" * 32, user=reader, placement="home", items=[])
    RecommendationLog.objects.create(recomm_id="b" * 32, visitor_id="f" * 32, placement="home", items=[])
    Feedback.objects.create(item=item, kind=Feedback.Kind.REPORT, user=reader)
    boss = client_for(factories.user("boss", superuser=True))
    logs = boss.get(reverse("admin:recommender_recommendationlog_changelist")).content.decode()
    assert "ada_reader" in logs and f"user {reader.pk}" not in logs
    assert f'title="{"f" * 32}">visitor ffffffff…' in logs  # a visitor token is cut, whole in the tooltip
    feedback = boss.get(reverse("admin:recommender_feedback_changelist")).content.decode()
    assert "ada_reader" in feedback and f"user {reader.pk}" not in feedback


def test_identity_and_number_formats() -> None:
    assert display.identity(None, "") == "-"
    assert display.identity(None, "short") == "visitor short"
    assert display.number(0.0823456789) == "0.08235"
    assert display.number(17107) == "17,107"
    assert display.number(1234.5678) == "1,235"
    assert display.number("cpu") == "cpu" and display.number(True) == "True"


def test_model_detail_rounds_metrics_and_explains_its_event_count() -> None:
    version = ModelVersion.objects.create(
        name="train-20241201-140501-abc123",
        status="succeeded",
        metrics={"val_ndcg@10": 0.0823456789, "val_hr@10": 0.1666666666},
        data_summary={"users": 3333, "items": 812, "events": 17107, "epochs_run": 12, "seconds": 61.25},
        config={"d_model": 64, "lr": 0.001},
        finished_at=timezone.now(),
    )
    boss = client_for(factories.user("boss", superuser=True))
    html = boss.get(reverse("admin:recommender_modelversion_change", args=[version.pk])).content.decode()
    assert "<td>0.08235</td>" in html and "0.0823456789" not in html
    assert "<td>0.1667</td>" in html
    assert "3,333 training sequences from 17,107 events" in html
    assert "training sequences (one per reader)</th><td>3,333</td>" in html


def test_model_list_dates_are_compact() -> None:
    finished = timezone.now()
    ModelVersion.objects.create(name="v1", status="succeeded", finished_at=finished)
    boss = client_for(factories.user("boss", superuser=True))
    html = boss.get(reverse("admin:recommender_modelversion_changelist")).content.decode()
    assert f"{timezone.localtime(finished):%Y-%m-%d %H:%M}" in html
    assert "column-finished" in html and "column-finished_at" not in html


def test_items_filter_by_registered_content_types_only() -> None:
    factories.article_item("Story")
    boss = client_for(factories.user("boss", superuser=True))
    html = boss.get(reverse("admin:recommender_item_changelist")).content.decode()
    block = html.split("By content type", 1)[1].split("</details>", 1)[0]
    choices = re.findall(r'<a href="[^"]*content_type=\d+[^"]*"[^>]*>([^<]+)</a>', block)
    assert choices == ["Articles"]  # not users, sessions, log entries...
    article = re.search(r"content_type=(\d+)", block).group(1)
    filtered = boss.get(reverse("admin:recommender_item_changelist"), {"content_type": article})
    assert "Story" in filtered.content.decode()


@pytest.mark.parametrize(
    "path", ["/", "/admin/login/", "/admin/", "/admin/recommender/recommendationlog/dashboard/"]
)
def test_pages_declare_a_favicon_that_exists(path: str) -> None:
    """Without one, every page view logs a 404 for /favicon.ico."""
    client = Client() if path == "/admin/login/" else client_for(factories.user("boss", superuser=True))
    response = client.get(path)
    assert response.status_code == 200
    href = re.search(r'<link rel="icon" href="([^"]+)"', response.content.decode()).group(1)
    static_url = "/" + settings.STATIC_URL.lstrip("/")
    assert href.startswith(static_url) and finders.find(href[len(static_url) :])
