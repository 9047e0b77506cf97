"""Pages become Items with no register() call, and Wagtail's lifecycle keeps them in step."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from wagtail.models import Page, Site

from project.wagtail_news.models import ArticlePage, HomePage, SectionPage
from recommender.contrib.wagtail.pages import page_types
from recommender.models import Item, ItemTag
from recommender.registry import registry
from tests_wagtail.conftest import add_page, item_for, make_article, restrict

pytestmark = pytest.mark.django_db


def test_only_the_chosen_page_types_are_content(settings):
    assert page_types() == [ArticlePage]
    assert registry.is_registered(ArticlePage)
    assert not registry.is_registered(HomePage) and not registry.is_registered(Page)
    settings.RECOMMENDER_WAGTAIL = {"PAGE_TYPES": None}  # the default: every page type with a text body
    assert set(page_types()) == {ArticlePage, HomePage, SectionPage}


def test_a_published_page_is_an_active_item_with_its_text_tags_date_and_url(section):
    article = make_article(section, "Storm hits the coast", text="Winds of 150 km/h.", tags=("Weather",))
    item = item_for(article)
    assert item.is_active
    assert item.title == "Storm hits the coast"
    assert "Winds of 150 km/h." in item.text and "Summary of Storm hits the coast." in item.text
    assert item.url == article.get_url() == "/world/" + article.slug + "/"
    assert item.published_at == article.first_published_at
    assert list(ItemTag.objects.filter(item=item).values_list("tag__slug", flat=True)) == ["weather"]


def test_recommendation_blocks_add_no_text_to_the_page(section):
    article = make_article(section, "Quiet story", text="Only this paragraph.")
    block = {"type": "trending", "value": {"count": 7, "placement": "article"}}
    article.body = [*article.body.raw_data, block]
    article.save_revision().publish()
    assert item_for(article).text == "Quiet story\n\nSummary of Quiet story.\n\nOnly this paragraph."


def test_a_draft_is_no_item_and_a_saved_draft_of_a_live_page_changes_nothing(section):
    draft = make_article(section, "Not yet", publish=False)
    assert not Item.objects.filter(object_id=str(draft.pk)).exists()
    article = make_article(section, "Live title")
    article.title = "Secret draft title"
    article.body = [("paragraph", "Embargoed text.")]
    article.save_revision()  # saves the page row with the draft on the instance
    item = item_for(article)
    assert item.title == "Live title" and "Embargoed" not in item.text


def test_scheduled_page_stays_inactive_until_it_goes_live(section):
    article = make_article(section, "Tomorrow", publish=False)
    article.go_live_at = timezone.now() + timedelta(days=1)
    article.save_revision().publish()  # scheduled: the page stays a draft
    article.refresh_from_db()
    assert not article.live
    assert not Item.objects.filter(object_id=str(article.pk), is_active=True).exists()


def test_unpublish_deactivates_and_republish_reactivates(section):
    article = make_article(section)
    article.unpublish()
    assert not item_for(article).is_active
    article.save_revision().publish()
    assert item_for(article).is_active


def test_delete_removes_the_item(section):
    article = make_article(section)
    pk = item_for(article).pk
    Page.objects.get(pk=article.pk).delete()  # through the base class, as the admin does
    assert not Item.objects.filter(pk=pk).exists()


def test_move_updates_the_url_of_the_page_and_the_pages_under_it(home, section):
    article = make_article(section)
    sport = add_page(home, SectionPage(title="Sport", slug="sport"))
    article.move(sport, pos="last-child")
    assert item_for(article).url == f"/sport/{article.slug}/"
    other_home = HomePage(title="Other", slug="other-home")
    Page.get_first_root_node().add_child(instance=other_home)
    Site.objects.create(hostname="other.example", port=80, root_page=other_home)
    Page.objects.get(pk=sport.pk).move(other_home, pos="last-child")
    assert item_for(article).url == f"http://other.example/sport/{article.slug}/"


def test_publish_embeds_the_page_after_commit(section, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        article = make_article(section, "Markets rally", text="Stocks rose sharply on Monday.")
    item = item_for(article)
    assert item.embedded_at is not None and item.embedding is not None


def test_restricting_a_page_keeps_its_item_for_those_who_may_read_it(section):
    article = make_article(section)
    restrict(article)
    assert item_for(article).is_active  # hidden per reader at serving time, see test_privacy
