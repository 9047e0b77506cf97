"""The recommender's tools in Wagtail's admin: dashboard, tuning with preview, feedback review, editorial
rules and model registry, opened by a Wagtail editor through group permissions (no Django staff status).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from recommender.admin import tuning_forms
from recommender.admin.tuning_forms import TuningForm
from recommender.contrib.wagtail.wagtail_hooks import TOOLS
from recommender.models import EditorialRule, Feedback, ModelVersion
from recommender.training.artifacts import ARTIFACT_FILES
from tests_wagtail.conftest import client_for, item_for, make_article, make_user

pytestmark = pytest.mark.django_db

VIEW_ONLY = (
    "view_recommendationlog",
    "view_tuningsettings",
    "view_feedback",
    "view_editorialrule",
    "view_modelversion",
)
EDITING = (
    *VIEW_ONLY,
    "change_tuningsettings",
    "change_feedback",
    "add_editorialrule",
    "change_editorialrule",
    "change_modelversion",
)


@pytest.fixture(autouse=True)
def isolated_storage(settings, tmp_path) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = str(tmp_path / "media")


def wagtail_user(name: str, codenames: tuple[str, ...] = ()):
    """A Wagtail admin user (``access_admin``) in a group holding the given recommender permissions."""
    group = Group.objects.create(name=f"{name} group")
    group.permissions.add(Permission.objects.get(codename="access_admin"))
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="recommender", codename__in=codenames)
    )
    user = make_user(name)
    user.groups.add(group)
    assert not user.is_staff and not user.is_superuser
    return user


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def curator(db) -> Client:
    return logged_in(wagtail_user("curator", EDITING))


@pytest.fixture
def viewer(db) -> Client:
    return logged_in(wagtail_user("viewer", VIEW_ONLY))


@pytest.fixture
def outsider(db) -> Client:
    return logged_in(wagtail_user("outsider"))


def stored_version(name: str, **fields) -> ModelVersion:
    """A succeeded version whose artifact files exist in storage (their contents are not read)."""
    for filename in ARTIFACT_FILES:
        storages["default"].save(f"models/{name}/{filename}", ContentFile(b"x"))
    return ModelVersion.objects.create(
        name=name, status="succeeded", artifact_name=f"models/{name}", metrics={"val_ndcg@10": 0.1}, **fields
    )


def feedback_on(article, **fields) -> Feedback:
    return Feedback.objects.create(item=item_for(article), kind="report", reason="Off topic", **fields)


def tool_urls(section) -> list[str]:
    """Every page of the tools: the menu's entries and the detail pages behind them."""
    feedback = feedback_on(make_article(section))
    version = stored_version("v1")
    return [
        *(reverse(url_name) for _, url_name, _, _ in TOOLS),
        reverse("recommender_feedback:inspect", args=[feedback.pk]),
        reverse("recommender_rules:add"),
        reverse("recommender_models:inspect", args=[version.pk]),
    ]


def test_a_permitted_editor_opens_every_tool_in_wagtails_look(curator, section):
    for url in tool_urls(section):
        response = curator.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert "wagtailadmin" in html and 'id="main"' in html, url  # Wagtail's shell, not Django admin's


def test_the_menu_lists_the_wagtail_views_to_a_permitted_editor(curator, home):
    html = curator.get(reverse("wagtailadmin_home")).content.decode()
    for label, url_name, _, _ in TOOLS:
        assert reverse(url_name) in html, label
    assert reverse("admin:recommender_dashboard") not in html  # no link into the Django admin


def test_without_permissions_no_menu_and_every_url_is_refused(outsider, section):
    home_html = outsider.get(reverse("wagtailadmin_home")).content.decode()
    for url in tool_urls(section):
        assert url not in home_html
        response = outsider.get(url)  # Wagtail's admin redirects home with a message; a script gets 403
        assert response.status_code == 302 and response.url == reverse("wagtailadmin_home"), url
        assert outsider.get(url, headers={"x-requested-with": "XMLHttpRequest"}).status_code == 403, url


def test_activation_through_wagtail_changes_the_active_version_then_rolls_back(curator):
    first = stored_version("v1", is_active=True, activated_at=timezone.now() - timedelta(hours=1))
    second = stored_version("v2")
    page = curator.get(reverse("recommender_models:inspect", args=[second.pk])).content.decode()
    assert 'id="rec-activate"' in page
    response = curator.post(reverse("recommender_models:activate", args=[second.pk]))
    assert response.status_code == 302
    assert ModelVersion.objects.active() == second
    curator.post(reverse("recommender_models:rollback"))
    assert ModelVersion.objects.active() == first


def test_activation_is_refused_without_change_permission(viewer):
    active = stored_version("v1", is_active=True, activated_at=timezone.now())
    other = stored_version("v2")
    page = viewer.get(reverse("recommender_models:inspect", args=[other.pk])).content.decode()
    assert 'id="rec-activate"' not in page
    index = viewer.get(reverse("recommender_models:index")).content.decode()
    assert 'id="rec-train-now"' not in index
    for url in (
        reverse("recommender_models:activate", args=[other.pk]),
        reverse("recommender_models:rollback"),
        reverse("recommender_models:train"),
    ):
        assert viewer.post(url).url == reverse("wagtailadmin_home"), url
    assert ModelVersion.objects.active() == active
    assert ModelVersion.objects.count() == 2  # "train now" queued nothing


def test_a_failed_activation_is_a_message(curator):
    failed = ModelVersion.objects.create(name="broken", status="failed", error="boom")
    response = curator.post(reverse("recommender_models:activate", args=[failed.pk]), follow=True)
    assert response.status_code == 200
    assert any("Could not activate broken" in str(m) for m in response.context["messages"])
    assert ModelVersion.objects.active() is None


def test_the_registry_progress_reports_the_active_version(viewer):
    stored_version("served", is_active=True)
    assert viewer.get(reverse("recommender_models:progress")).json() == {"jobs": [], "active": "served"}


def listed(limit: int = 4) -> list[str]:
    response = client_for().get(f"/api/recommender/trending/?limit={limit}")
    return [entry["title"] for entry in response.json()["items"]]


def test_a_rule_created_in_wagtail_takes_effect_in_a_served_list(curator, section):
    pages = [make_article(section, f"Story {n}") for n in range(4)]
    assert listed()[0] != "Story 0"  # the oldest story: not first on its own
    form = {"action": "pin", "item": item_for(pages[0]).pk, "placement": "", "position": 0, "factor": 1}
    response = curator.post(reverse("recommender_rules:add"), {**form, "is_enabled": "on"})
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = EditorialRule.objects.get()
    assert rule.created_by.get_username() == "curator"
    assert listed()[0] == "Story 0"
    index = curator.get(reverse("recommender_rules:index")).content.decode()
    assert "item: Story 0" in index


def test_the_rules_form_keeps_the_cores_validation(curator, section):
    article = make_article(section)
    response = curator.post(
        reverse("recommender_rules:add"), {"action": "pin", "item": item_for(article).pk, "factor": 1}
    )
    assert response.status_code == 200
    assert "A pin needs a position" in response.content.decode()
    assert not EditorialRule.objects.exists()


def test_a_viewer_cannot_add_rules(viewer, section):
    article = make_article(section)
    response = viewer.post(
        reverse("recommender_rules:add"), {"action": "block", "item": item_for(article).pk, "factor": 1}
    )
    assert response.status_code == 302 and response.url == reverse("wagtailadmin_home")
    assert not EditorialRule.objects.exists()


def test_blocking_from_feedback_review_removes_the_item_and_actions_the_feedback(curator, section):
    pages = [make_article(section, f"Story {n}") for n in range(3)]
    feedback = feedback_on(pages[2])
    queue = curator.get(reverse("recommender_feedback:index")).content.decode()
    assert "Off topic" in queue
    url = reverse("recommender_feedback:inspect", args=[feedback.pk])
    assert curator.post(url, {"action": "block"}).status_code == 302
    feedback.refresh_from_db()
    assert feedback.status == Feedback.Status.ACTIONED and feedback.reviewed_by.get_username() == "curator"
    assert EditorialRule.objects.filter(item=item_for(pages[2]), action="block").exists()
    assert "Story 2" not in listed()


def test_a_viewer_may_read_feedback_but_not_act_on_it(viewer, section):
    feedback = feedback_on(make_article(section))
    url = reverse("recommender_feedback:inspect", args=[feedback.pk])
    assert "data-recommender-feedback-actions" not in viewer.get(url).content.decode()
    viewer.post(url, {"action": "reviewed"})
    feedback.refresh_from_db()
    assert feedback.status == Feedback.Status.NEW


def tuning_form_data(**changes) -> dict:
    """The tuning form as the page posts it, from the effective values, with ``changes`` applied."""
    data = {**TuningForm.initial_from(tuning_forms.effective_values()), **changes}
    return {k: ("on" if v is True else v) for k, v in data.items() if v is not False}


def test_tuning_preview_returns_both_lists(curator, section):
    pages = [make_article(section, f"Story {n}") for n in range(4)]
    subject = {"items": str(item_for(pages[0]).pk), "placement": "default", "limit": 3}
    response = curator.post(reverse("recommender_wagtail:tuning_preview"), {**tuning_form_data(), **subject})
    assert response.status_code == 200, response.content
    body = response.json()
    edited = [row["title"] for row in body["edited"]["items"]]
    assert len(edited) == 3 and "Story 0" not in edited  # the pasted history counts as seen
    assert [row["title"] for row in body["current"]["items"]] == edited  # nothing edited yet


def test_tuning_saves_for_an_editor_with_change_permission_only(curator, viewer):
    url = reverse("recommender_wagtail:tuning")
    assert 'id="rec-preview"' not in viewer.get(url).content.decode()
    before = tuning_forms.effective_values()["FRESHNESS_WEIGHT"]
    weight = before + 1
    assert viewer.post(url, tuning_form_data(FRESHNESS_WEIGHT=weight)).url == reverse("wagtailadmin_home")
    assert tuning_forms.effective_values()["FRESHNESS_WEIGHT"] == before
    assert 'id="rec-preview"' in curator.get(url).content.decode()
    assert curator.post(url, tuning_form_data(FRESHNESS_WEIGHT=weight)).status_code == 302
    assert tuning_forms.effective_values()["FRESHNESS_WEIGHT"] == weight
    assert "FRESHNESS_WEIGHT" in curator.get(url).content.decode()  # the history of changes


def test_the_dashboard_shows_its_charts(viewer):
    html = viewer.get(reverse("recommender_wagtail:dashboard") + "?days=30").content.decode()
    assert "data-recommender-dashboard" in html and "<svg" in html and "<strong>30 days</strong>" in html


def test_listings_search_and_filter_and_a_rule_is_disabled_by_editing(curator, section):
    article = make_article(section, "Searchable story")
    feedback_on(article)
    stored_version("v1")
    rule = EditorialRule.objects.create(action="bury", item=item_for(article), factor=0.5, note="too loud")
    for url, shown in (
        (reverse("recommender_rules:index") + "?q=Searchable&action=bury", "item: Searchable story"),
        (reverse("recommender_feedback:index") + "?q=Searchable&status=new", "Off topic"),
        (reverse("recommender_models:index") + "?q=v1&status=succeeded", "v1"),
    ):
        response = curator.get(url)
        assert response.status_code == 200 and shown in response.content.decode(), url
    pins = curator.get(reverse("recommender_rules:index") + "?action=pin").content.decode()
    assert "Searchable" not in pins
    form = {"action": "bury", "item": rule.item_id, "placement": "", "factor": 0.5, "note": "too loud"}
    assert curator.post(reverse("recommender_rules:edit", args=[rule.pk]), form).status_code == 302
    rule.refresh_from_db()
    assert not rule.is_enabled


def test_wagtails_group_editor_offers_the_recommender_permissions(home):
    admin = logged_in(make_user("root", is_staff=True, is_superuser=True))
    html = admin.get(reverse("wagtailusers_groups:add")).content.decode()
    for codename in ("change_modelversion", "add_editorialrule", "change_feedback", "view_recommendationlog"):
        permission = Permission.objects.get(content_type__app_label="recommender", codename=codename)
        assert f'value="{permission.pk}"' in html, codename
