"""Wagtail's admin: the recommender's menu, the page's recommendations view, panel and actions."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse
from wagtail.models import GroupPagePermission

from recommender.contrib.wagtail.wagtail_hooks import TOOLS
from recommender.models import EditorialRule, Interaction
from tests_wagtail.conftest import client_for, item_for, make_article, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(db):
    return make_user(is_staff=True, is_superuser=True)


@pytest.fixture
def editor(home):
    """A Wagtail editor of the site: may edit pages; no Django staff, no recommender rights."""
    user = make_user()
    group = Group.objects.create(name="Site editors")
    group.permissions.add(Permission.objects.get(codename="access_admin"))
    for codename in ("add_page", "change_page", "publish_page"):
        GroupPagePermission.objects.create(
            group=group, page=home, permission=Permission.objects.get(codename=codename)
        )
    user.groups.add(group)
    return user


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_menu_lists_every_tool_and_each_opens(superuser, home):
    client = logged_in(superuser)
    html = client.get(reverse("wagtailadmin_home")).content.decode()
    assert '"Recommender"' in html or "Recommender" in html
    for label, url_name, _, _ in TOOLS:
        url = reverse(url_name)
        assert url in html, label
        assert client.get(url).status_code == 200, label


def test_an_editor_without_recommender_rights_sees_no_recommender_menu(editor):
    html = logged_in(editor).get(reverse("wagtailadmin_home")).content.decode()
    for label, url_name, _, _ in TOOLS:
        assert reverse(url_name) not in html, label


def test_the_page_view_shows_impressions_clicks_and_ctr(superuser, section):
    article = make_article(section, "Counted story")
    item = item_for(article)
    for n in range(4):
        Interaction.objects.create(event_id=f"i{n}", item=item, event_type="impression", visitor_id=f"v{n}")
    Interaction.objects.create(event_id="c0", item=item, event_type="click", visitor_id="v0")
    html = logged_in(superuser).get(reverse("recommender_wagtail:page", args=[article.pk])).content.decode()
    assert "data-impressions>4<" in html and "data-clicks>1<" in html and "25 %" in html


def test_the_page_editor_has_the_panel_and_the_header_button(superuser, section):
    article = make_article(section)
    html = logged_in(superuser).get(reverse("wagtailadmin_pages:edit", args=[article.pk])).content.decode()
    assert "data-recommender-page-performance" in html
    assert reverse("recommender_wagtail:page", args=[article.pk]) in html


def test_pin_puts_the_page_first_block_removes_it_end_undoes_both(superuser, section):
    pages = [make_article(section, f"Story {n}") for n in range(4)]
    target = pages[0]  # the oldest: last in a fresh list
    url = reverse("recommender_wagtail:page", args=[target.pk])
    admin = logged_in(superuser)

    def listed() -> list[str]:
        return [
            entry["title"] for entry in client_for().get("/api/recommender/trending/?limit=4").json()["items"]
        ]

    assert admin.post(url, {"action": "pin"}).status_code == 302
    assert listed()[0] == "Story 0"
    admin.post(url, {"action": "end"})
    admin.post(url, {"action": "block"})
    assert "Story 0" not in listed()
    assert EditorialRule.objects.filter(item=item_for(target), action="block").exists()
    admin.post(url, {"action": "end"})
    assert "Story 0" in listed()


def test_an_editor_may_see_the_page_view_but_not_pin_or_block(editor, section):
    article = make_article(section)
    url = reverse("recommender_wagtail:page", args=[article.pk])
    client = logged_in(editor)
    response = client.get(url)
    assert response.status_code == 200 and "data-recommender-page-actions" not in response.content.decode()
    refused = client.post(url, {"action": "block"})  # Wagtail's admin redirects on PermissionDenied
    assert refused.status_code == 302 and refused.url == reverse("wagtailadmin_home")
    assert not EditorialRule.objects.exists()


def test_a_reader_cannot_open_the_page_view(section, reader):
    article = make_article(section)
    response = logged_in(reader).get(reverse("recommender_wagtail:page", args=[article.pk]))
    assert response.status_code in (302, 403)
