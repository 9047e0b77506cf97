"""Editorial rules admin: the form's checks, the author recorded, and the bulk switches."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from recommender.models import EditorialRule
from tests.admin import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor() -> Client:
    client = Client()
    client.force_login(factories.user("editor", perms=("view_editorialrule", "add_editorialrule",
                                                        "change_editorialrule")))  # fmt: skip
    return client


def rule_form(**fields) -> dict:
    return {"action": "block", "placement": "", "factor": 1.0, "is_enabled": "on", "note": "", **fields}


def test_form_checks_target_position_factor_and_window(editor: Client) -> None:
    item = factories.article_item("Target")
    tag = factories.tag("Sport")
    url = reverse("admin:recommender_editorialrule_add")
    now = timezone.now()

    def errors(**fields) -> str:
        response = editor.post(url, rule_form(**fields))
        assert response.status_code == 200  # re-rendered with errors, nothing saved
        return str(response.context["adminform"].form.errors)

    assert "either an item or a tag" in errors()
    assert "either an item or a tag" in errors(item=item.pk, tag=tag.pk)
    assert "needs a position" in errors(action="pin", item=item.pk)
    assert "positive factor" in errors(action="bury", item=item.pk, factor=0)
    assert "after the start" in errors(
        item=item.pk, starts_at_0=now.date(), starts_at_1="12:00", ends_at_0=now.date(), ends_at_1="11:00"
    )
    assert "Select a valid choice" in errors(item=item.pk, placement="nowhere")
    assert not EditorialRule.objects.exists()

    response = editor.post(url, rule_form(action="pin", tag=tag.pk, position=0, placement="home"))
    assert response.status_code == 302
    rule = EditorialRule.objects.get()
    assert (rule.action, rule.tag, rule.placement, rule.created_by.username) == ("pin", tag, "home", "editor")


def test_bulk_disable_and_end_now(editor: Client) -> None:
    item = factories.article_item("Target")
    live = EditorialRule.objects.create(action="boost", item=item, factor=0.5)
    later = EditorialRule.objects.create(
        action="block", item=item, ends_at=timezone.now() + timedelta(days=3)
    )
    url = reverse("admin:recommender_editorialrule_changelist")
    editor.post(url, {"action": "disable", "_selected_action": [live.pk]})
    editor.post(url, {"action": "end_now", "_selected_action": [later.pk]})
    live.refresh_from_db()
    later.refresh_from_db()
    assert not live.is_enabled
    assert later.ends_at <= timezone.now()
    listed = editor.get(url + "?in_force=yes").context["cl"].result_list
    assert list(listed) == []
    assert not EditorialRule.objects.in_force("home").exists()
