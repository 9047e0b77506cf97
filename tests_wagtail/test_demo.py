"""The Wagtail demo: seeded from the synthetic generator, it serves pages with recommendations."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from wagtail.models import Site

from project.wagtail_news.models import ArticlePage, HomePage
from recommender.models import Interaction, Item
from tests_wagtail.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(db):
    call_command("wagtail_demo_seed", articles=40, users=6, events_per_user=20, topics=3, stdout=None)


def test_seed_builds_sections_articles_readers_and_events(seeded):
    home = HomePage.objects.get(slug="daily-demo")
    assert Site.objects.get(is_default_site=True).root_page_id == home.pk
    assert home.get_children().count() == 3
    live = ArticlePage.objects.live().count()
    assert 0 < live <= ArticlePage.objects.count() == 40
    assert Item.objects.filter(is_active=True).count() == live
    assert Interaction.objects.filter(user__username="user001").exists()


def test_seeded_home_page_shows_a_reader_recommendations(seeded):
    reader = get_user_model().objects.get(username="user001")
    html = client_for(reader).get("/").content.decode()
    assert 'data-recommender-block="recommended_for_you"' in html
    assert html.count('class="recommender-item"') == 6


def test_seed_refuses_a_second_run_unless_flushed(seeded):
    call_command("wagtail_demo_seed", articles=10, users=2, topics=2, if_empty=True)
    assert ArticlePage.objects.count() == 40
    call_command("wagtail_demo_seed", articles=10, users=2, topics=2, flush=True)
    assert ArticlePage.objects.count() == 10 and Item.objects.count() == 10
