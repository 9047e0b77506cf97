"""Who may see and change each recommender admin page, and that every state-changing POST needs CSRF."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from recommender.admin import actions
from recommender.models import EditorialRule, Feedback, ItemTag, ModelVersion, TuningChange, TuningSettings
from tests.admin import factories

pytestmark = pytest.mark.django_db

# page url name -> the one permission that opens it
PAGES = {
    "admin:recommender_item_changelist": "view_item",
    "admin:recommender_tag_changelist": "view_tag",
    "admin:recommender_itemtag_changelist": "view_itemtag",
    "admin:recommender_feedback_changelist": "view_feedback",
    "admin:recommender_editorialrule_changelist": "view_editorialrule",
    "admin:recommender_modelversion_changelist": "view_modelversion",
    "admin:recommender_modelversion_progress": "view_modelversion",
    "admin:recommender_tuningsettings_changelist": "view_tuningsettings",
    "admin:recommender_tuningchange_changelist": "view_tuningchange",
    "admin:recommender_recommendationlog_changelist": "view_recommendationlog",
    "admin:recommender_dashboard": "view_recommendationlog",
}


@pytest.fixture(autouse=True)
def fast_hasher(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def client_for(account, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(account)
    return client


@pytest.mark.parametrize("name", PAGES)
def test_anonymous_and_non_staff_are_sent_to_login(name: str) -> None:
    url = reverse(name)
    assert Client().get(url).status_code == 302
    member = factories.user("member", staff=False, perms=tuple(set(PAGES.values())))
    response = client_for(member).get(url)
    assert response.status_code == 302
    assert "/login/" in response["Location"]


@pytest.mark.parametrize(("name", "perm"), PAGES.items())
def test_staff_needs_the_page_permission(name: str, perm: str) -> None:
    url = reverse(name)
    assert client_for(factories.user("bare")).get(url).status_code == 403
    other = next(p for p in set(PAGES.values()) if p != perm)
    assert client_for(factories.user("other", perms=(other,))).get(url).status_code == 403
    assert client_for(factories.user("allowed", perms=(perm,))).get(url).status_code == 200


def test_superuser_opens_every_page_and_the_app_index_links_the_dashboard() -> None:
    client = client_for(factories.user("root", superuser=True))
    for name in PAGES:
        assert client.get(reverse(name)).status_code == 200, name
    index = client.get(reverse("admin:app_list", args=["recommender"]))
    assert reverse("admin:recommender_dashboard") in index.content.decode()


def test_view_only_staff_cannot_save_tuning_preview_or_run_jobs() -> None:
    viewer = client_for(factories.user("viewer", perms=("view_tuningsettings", "view_modelversion")))
    assert viewer.post(reverse("admin:recommender_tuningsettings_changelist"), {}).status_code == 403
    assert viewer.post(reverse("admin:recommender_tuningsettings_preview"), {}).status_code == 403
    for name in ("train", "refresh", "rollback"):
        assert viewer.post(reverse(f"admin:recommender_modelversion_{name}")).status_code == 403
    version = ModelVersion.objects.create(name="v1", status=ModelVersion.Status.SUCCEEDED)
    assert (
        viewer.post(reverse("admin:recommender_modelversion_activate", args=[version.pk])).status_code == 403
    )
    assert not TuningSettings.objects.exclude(values={}).exists()
    assert not TuningChange.objects.exists()
    page = viewer.get(reverse("admin:recommender_modelversion_changelist")).content.decode()
    assert "Train now" not in page


def test_job_buttons_answer_only_post(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(actions, "start_training", lambda kind: calls.append(kind) or f"{kind} queued")
    client = client_for(factories.user("ops", perms=("view_modelversion", "change_modelversion")))
    assert client.get(reverse("admin:recommender_modelversion_train")).status_code == 405
    response = client.post(reverse("admin:recommender_modelversion_train"))
    assert response.status_code == 302
    client.post(reverse("admin:recommender_modelversion_refresh"))
    assert calls == ["train", "refresh"]


def test_feedback_actions_need_change_permission_and_rule_permission() -> None:
    item = factories.article_item("Reported piece")
    report = factories.feedback(item, reason="spam")
    data = {"action": "block_item", "_selected_action": [report.pk]}
    url = reverse("admin:recommender_feedback_changelist")
    viewer = client_for(factories.user("fviewer", perms=("view_feedback",)))
    viewer.post(url, data)
    assert not EditorialRule.objects.exists()
    reviewer = client_for(factories.user("reviewer", perms=("view_feedback", "change_feedback")))
    reviewer.post(url, data)
    assert not EditorialRule.objects.exists()  # may review, but not create rules
    report.refresh_from_db()
    assert report.status == Feedback.Status.NEW
    editor = client_for(
        factories.user("editor", perms=("view_feedback", "change_feedback", "add_editorialrule"))
    )
    editor.post(url, data)
    assert EditorialRule.objects.filter(item=item, action="block").count() == 1


def test_tag_review_needs_change_permission() -> None:
    item = factories.article_item("Untagged")
    suggestion = ItemTag.objects.create(
        item=item, tag=factories.tag("Climate"), source="automatic", status="pending", weight=0.5
    )
    url = reverse("admin:recommender_itemtag_changelist")
    data = {"action": "accept", "_selected_action": [suggestion.pk]}
    client_for(factories.user("tviewer", perms=("view_itemtag",))).post(url, data)
    suggestion.refresh_from_db()
    assert suggestion.status == "pending"
    client_for(factories.user("tagger", perms=("view_itemtag", "change_itemtag"))).post(url, data)
    suggestion.refresh_from_db()
    assert suggestion.status == "accepted"


CSRF_POSTS = [
    ("admin:recommender_tuningsettings_changelist", ()),
    ("admin:recommender_tuningsettings_preview", ()),
    ("admin:recommender_modelversion_train", ()),
    ("admin:recommender_modelversion_refresh", ()),
    ("admin:recommender_modelversion_rollback", ()),
    ("admin:recommender_feedback_changelist", ()),
    ("admin:recommender_itemtag_changelist", ()),
    ("admin:recommender_item_changelist", ()),
]


@pytest.mark.parametrize(("name", "args"), CSRF_POSTS)
def test_posts_without_csrf_token_are_refused(name: str, args: tuple) -> None:
    client = client_for(factories.user("root", superuser=True), enforce_csrf_checks=True)
    assert client.post(reverse(name, args=args), {"action": "mark_reviewed"}).status_code == 403


def test_activate_without_csrf_token_is_refused() -> None:
    version = ModelVersion.objects.create(name="v-csrf", status=ModelVersion.Status.SUCCEEDED)
    client = client_for(factories.user("root", superuser=True), enforce_csrf_checks=True)
    assert (
        client.post(reverse("admin:recommender_modelversion_activate", args=[version.pk])).status_code == 403
    )
    version.refresh_from_db()
    assert not version.is_active


def test_detail_and_add_pages_render_for_a_superuser() -> None:
    item = factories.article_item("Detail page", topics=("Space",))
    report = factories.feedback(item, reason="typo")
    version = ModelVersion.objects.create(
        name="v-detail", status="succeeded", history=[{"epoch": 1, "loss": 2.0, "val_ndcg@10": 0.1}]
    )
    client = client_for(factories.user("root", superuser=True))
    urls = [
        reverse("admin:recommender_item_change", args=[item.pk]),
        reverse("admin:recommender_tag_change", args=[item.tags.get().pk]),
        reverse("admin:recommender_itemtag_change", args=[item.item_tags.get().pk]),
        reverse("admin:recommender_feedback_change", args=[report.pk]),
        reverse("admin:recommender_editorialrule_add"),
        reverse("admin:recommender_modelversion_change", args=[version.pk]),
    ]
    for url in urls:
        assert client.get(url).status_code == 200, url
    version_page = client.get(urls[-1]).content.decode()
    assert version_page.count('<svg class="rec-chart"') == 2 and 'id="rec-activate"' in version_page
    assert reverse("admin:recommender_item_add") not in client.get(reverse("admin:index")).content.decode()
