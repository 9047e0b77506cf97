"""The editor's StreamField blocks: the core tags' templates and fallbacks, on a served page."""

from __future__ import annotations

import re

import pytest
from django.core.checks import run_checks

from recommender.tasks import embed_items
from tests_wagtail.conftest import client_for, make_article

pytestmark = pytest.mark.django_db


def blocks_of(html: str, name: str) -> list[str]:
    """The inner HTML of every rendered block named ``name`` on a page."""
    return [part.split("</section>")[0] for part in html.split(f'data-recommender-block="{name}"')[1:]]


@pytest.fixture
def articles(section):
    return [make_article(section, f"Story number {n}", text=f"Report {n} on the harbour.") for n in range(6)]


def test_three_blocks_render_on_a_page_and_never_show_an_item_twice(home, articles):
    home.body = [
        ("recommended_for_you", {"count": 2, "placement": "home"}),
        ("trending", {"count": 2, "placement": "home"}),
        ("recommended_for_you", {"count": 2, "placement": "home"}),
    ]
    home.save_revision().publish()
    html = client_for().get("/").content.decode()
    blocks = blocks_of(html, "recommended_for_you") + blocks_of(html, "trending")
    shown = [title for block in blocks for title in _titles(block)]
    assert len(blocks) == 3 and len(shown) == 6 and len(set(shown)) == 6


def test_related_pages_block_lists_pages_like_the_one_it_is_on(articles):
    embed_items()
    page = articles[0]
    block = {"type": "related_pages", "value": {"count": 3, "placement": "article"}}
    page.body = [*page.body.raw_data, block]
    page.save_revision().publish()
    html = client_for().get(page.url).content.decode()
    related = blocks_of(html, "similar_items")[0]
    assert len(_titles(related)) == 3 and page.title not in related


def test_a_placement_template_overrides_the_block_for_that_placement_only(home, articles, settings, tmp_path):
    override = tmp_path / "recommender" / "blocks" / "home" / "recommended_for_you.html"
    override.parent.mkdir(parents=True)
    override.write_text('<div data-custom="home">{% for rec in items %}{{ rec.item.pk }}{% endfor %}</div>')
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}]
    home.body = [
        ("recommended_for_you", {"count": 2, "placement": "home"}),
        ("recommended_for_you", {"count": 2, "placement": "default"}),
    ]
    home.save_revision().publish()
    html = client_for().get("/").content.decode()
    assert html.count('data-custom="home"') == 1
    assert len(blocks_of(html, "recommended_for_you")) == 1  # the default placement's block is the core one


def test_a_block_whose_list_fails_renders_the_fallback(home, articles):
    """ "Related pages" on the home page: the home page is no item, so the trending fallback stands in."""
    home.body = [("related_pages", {"count": 3, "placement": "home"})]
    home.save_revision().publish()
    response = client_for().get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "recommender-block--fallback" in html
    assert len(_titles(blocks_of(html, "similar_items")[0])) == 3


def test_a_block_of_a_removed_placement_renders_nothing_and_the_page_serves(home, articles, settings):
    home.body = [("recommended_for_you", {"count": 3, "placement": "home"})]
    home.save_revision().publish()
    settings.RECOMMENDER = {**settings.RECOMMENDER, "PLACEMENTS": ["default"]}
    response = client_for().get("/")
    assert response.status_code == 200
    assert "Latest" in response.content.decode() and "data-recommender-block" not in response.content.decode()


def test_the_checks_insist_on_the_wagtail_adapter(settings):
    def ours() -> list[str]:
        return [m.id for m in run_checks() if m.id.startswith("recommender_wagtail")]

    assert ours() == []
    default = "recommender.adapter.DefaultRecommenderAdapter"
    settings.RECOMMENDER = {**settings.RECOMMENDER, "ADAPTER": default}
    assert ours() == ["recommender_wagtail.E001"]


def _titles(block_html: str) -> list[str]:
    return re.findall(r'class="recommender-item__link"[^>]*>([^<]+)</a>', block_html)
