"""The registry mirrors host content into Items on create, update, unpublish, tag changes and delete."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

import recommender
from project.news.models import Article, Topic
from recommender.adapter import DefaultRecommenderAdapter
from recommender.ml.embedder import content_hash
from recommender.models import Item, ItemTag, Tag
from recommender.registry import ContentConfig, registry
from recommender.signals import item_content_changed
from recommender.tracking import sync
from tests import factories

pytestmark = pytest.mark.django_db


class ShoutingAdapter(DefaultRecommenderAdapter):
    """A host override of one policy: the text the embedder reads."""

    def item_text(self, obj, config):
        return super().item_text(obj, config).upper()


class BrokenAdapter(DefaultRecommenderAdapter):
    def item_text(self, obj, config):
        raise RuntimeError("adapter bug")


@pytest.fixture
def changed_ids():
    """Item ids announced through ``item_content_changed``."""
    ids: list[int] = []

    def receiver(sender, item_ids, **kwargs):
        ids.extend(item_ids)

    item_content_changed.connect(receiver, sender=Item, dispatch_uid="test-changed")
    yield ids
    item_content_changed.disconnect(sender=Item, dispatch_uid="test-changed")


@pytest.fixture
def topic_registered():
    """Topic registered as content for one test (the demo registers Article only)."""
    recommender.register(Topic, text=("name",), title="name")
    yield
    registry.unregister(Topic)


def test_article_is_registered_with_its_options():
    config = registry.get_config(Article)
    assert registry.is_registered(Article)
    assert Article in registry.registered_models()
    assert config.text == ("title", "summary", "body")
    assert config.tags_m2m_field().name == "tags"


def test_create_mirrors_text_state_and_link():
    article = factories.make_article("Rain in Spain", summary="Mostly <b>plain</b>.", body="Body text.")
    item = factories.item_for(article)
    assert item.title == "Rain in Spain"
    assert item.url == article.get_absolute_url()
    assert item.text == "Rain in Spain\n\nMostly plain.\n\nBody text."
    assert item.content_hash == content_hash(item.text)
    assert item.published_at == article.published_at
    assert item.is_active


def test_content_change_is_announced_once_on_commit(changed_ids, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        article = factories.make_article("Budget talks")
    item = factories.item_for(article)
    assert changed_ids == [item.pk]

    with django_capture_on_commit_callbacks(execute=True):
        article.body = "A new paragraph about the budget."
        article.save()
    item.refresh_from_db()
    assert "A new paragraph" in item.text
    assert changed_ids == [item.pk, item.pk]

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        article.slug = "budget-talks-renamed"  # not part of the text
        article.save()
    assert callbacks == []
    assert changed_ids == [item.pk, item.pk]


def test_unpublish_and_future_publication_deactivate():
    article = factories.make_article("Scoop")
    item = factories.item_for(article)
    article.is_draft = True
    article.save()
    item.refresh_from_db()
    assert not item.is_active

    article.is_draft = False
    article.published_at = timezone.now() + timedelta(hours=2)
    article.save()
    item.refresh_from_db()
    assert not item.is_active


def test_publish_due_activates_items_once_their_time_has_come():
    article = factories.make_article("Embargoed", published_at=timezone.now() + timedelta(minutes=30))
    item = factories.item_for(article)
    assert not item.is_active
    Article.objects.filter(pk=article.pk).update(published_at=timezone.now() - timedelta(seconds=1))
    Item.objects.filter(pk=item.pk).update(published_at=timezone.now() - timedelta(seconds=1))
    assert sync.publish_due() == 1
    item.refresh_from_db()
    assert item.is_active


def test_delete_removes_the_item():
    article = factories.make_article("Gone soon")
    item_pk = factories.item_for(article).pk
    article.delete()
    assert not Item.objects.filter(pk=item_pk).exists()


def test_editorial_tags_follow_the_m2m_and_leave_automatic_tags_alone():
    article = factories.make_article("Derby day", tags=["Football", "Local News"])
    item = factories.item_for(article)
    suggested = Tag.objects.create(name="Weather", slug="weather")
    ItemTag.objects.create(item=item, tag=suggested, source=ItemTag.Source.AUTOMATIC, weight=0.4)

    def tags(source):
        return set(item.item_tags.filter(source=source).values_list("tag__slug", flat=True))

    assert tags(ItemTag.Source.EDITORIAL) == {"football", "local-news"}
    article.tags.remove(Topic.objects.get(slug="local-news"))
    assert tags(ItemTag.Source.EDITORIAL) == {"football"}
    assert tags(ItemTag.Source.AUTOMATIC) == {"weather"}

    # From the other side of the relation, too.
    factories.make_topic("Politics").articles.add(article)
    assert tags(ItemTag.Source.EDITORIAL) == {"football", "politics"}
    Topic.objects.get(slug="football").articles.clear()
    assert tags(ItemTag.Source.EDITORIAL) == {"politics"}

    # An editor adding a suggested tag confirms it.
    article.tags.add(factories.make_topic("Weather"))
    confirmed = item.item_tags.get(tag__slug="weather")
    assert (confirmed.source, confirmed.status, confirmed.weight) == ("editorial", "accepted", 1.0)


def test_adapter_reads_tags_from_strings_and_lists():
    adapter = DefaultRecommenderAdapter()
    comma = ContentConfig(model=Topic, text=("name",), tags=lambda obj: "Space, AI ,space,")
    listed = ContentConfig(model=Topic, text=("name",), tags=lambda obj: ["Big Data", "big data"])
    assert adapter.item_tags(None, comma) == [("Space", "space"), ("AI", "ai")]
    assert adapter.item_tags(None, listed) == [("Big Data", "big-data")]


def test_register_checks_options_and_replaces_on_second_call(topic_registered):
    with pytest.raises(ImproperlyConfigured, match="not a field, attribute or method"):
        recommender.register(Topic, text=("headline",))
    with pytest.raises(ImproperlyConfigured, match="model class"):
        recommender.register(object)

    topic = factories.make_topic("Astronomy")
    assert factories.item_for(topic).text == "Astronomy"
    recommender.register(Topic, text=lambda obj: f"All about {obj.name}", title="name")
    topic.save()
    assert factories.item_for(topic).text == "All about Astronomy"
    assert registry.registered_models().count(Topic) == 1


def test_get_config_of_an_unregistered_model_says_so():
    with pytest.raises(LookupError, match="not registered"):
        registry.get_config(Tag)
    assert not registry.is_registered(Tag)


@override_settings(RECOMMENDER={"ADAPTER": "tests.test_registry.ShoutingAdapter"})
def test_adapter_setting_changes_the_policy():
    assert factories.make_item("quiet words").text.startswith("QUIET WORDS")


@override_settings(RECOMMENDER={"ADAPTER": "tests.test_registry.BrokenAdapter"})
def test_a_failing_sync_never_breaks_the_host_save(caplog):
    logger = logging.getLogger("recommender")  # the demo's LOGGING stops it propagating to caplog
    logger.addHandler(caplog.handler)
    try:
        article = factories.make_article("Still saved")
    finally:
        logger.removeHandler(caplog.handler)
    assert Article.objects.filter(pk=article.pk).exists()
    assert not Item.objects.filter(object_id=str(article.pk)).exists()
    assert "could not sync" in caplog.text


def test_recommender_sync_rebuilds_updates_and_deactivates(capsys):
    kept = factories.make_article("Kept", tags=["Science"])
    vanished = factories.make_article("Vanished")
    drafted = factories.make_article("Drafted")
    Item.objects.filter(object_id=str(kept.pk)).delete()  # as if it predated the app
    Article.objects.filter(pk=drafted.pk).update(is_draft=True)  # no signals
    with connection.cursor() as cursor:  # deleted behind the ORM's back
        cursor.execute(f"DELETE FROM {Article._meta.db_table} WHERE id = %s", [vanished.pk])

    call_command("recommender_sync", "--model", "news.Article", "--batch-size", "1")
    out = capsys.readouterr().out
    assert "news.Article: 1 created, 1 updated, 0 unchanged, 2 deactivated" in out
    item = factories.item_for(kept)
    assert item.is_active and list(item.tags.values_list("slug", flat=True)) == ["science"]
    assert not factories.item_for(drafted).is_active
    assert not Item.objects.get(object_id=str(vanished.pk)).is_active

    call_command("recommender_sync")
    assert "news.Article: 0 created, 0 updated, 2 unchanged, 0 deactivated" in capsys.readouterr().out


def test_recommender_sync_rejects_unknown_models():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="not registered"):
        call_command("recommender_sync", "--model", "news.Topic")
    with pytest.raises(CommandError, match="Unknown model"):
        call_command("recommender_sync", "--model", "news.Nope")
