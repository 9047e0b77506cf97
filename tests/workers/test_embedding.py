"""Content saves become embeddings (real bundled embedder), coalesced into few tasks; automatic tags."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from celery.signals import task_prerun
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from recommender import tasks
from recommender.ml.embedder import content_hash, vector_from_bytes
from recommender.models import Item, ItemTag, Tag
from recommender.training import embedding
from tests.factories import worker_mode
from tests.workers.factories import item_of, make_article, make_catalogue

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def embed_runs():
    """Names of the embedding tasks Celery ran (eager mode runs them through the same tracer)."""
    runs: list[tuple] = []

    def record(sender=None, args=None, kwargs=None, **_):
        if sender is not None and sender.name == "recommender.embed_items":
            runs.append((args, kwargs))

    task_prerun.connect(record, weak=False)
    yield runs
    task_prerun.disconnect(record)


def test_saved_content_gets_an_embedding():
    article = make_article("Liverpool win the league", "A late goal in the final match decided the title.")
    item = item_of(article)
    assert item.embedding_model == "all-MiniLM-L6-v2"
    assert item.embedding_dim == 384
    assert item.embedded_hash == item.content_hash != ""
    vector = vector_from_bytes(bytes(item.embedding), item.embedding_dim)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4


def test_changed_text_is_re_embedded_and_unchanged_is_not(embed_runs):
    article = make_article("Budget vote", "Parliament votes on the budget.")
    before = bytes(item_of(article).embedding)
    embed_runs.clear()
    article.save()  # nothing the embedder reads changed
    assert embed_runs == []
    article.body = "The central bank raised interest rates again."
    article.save()
    item = item_of(article)
    assert len(embed_runs) == 1
    assert bytes(item.embedding) != before
    assert item.embedded_hash == item.content_hash


def test_bulk_import_in_a_transaction_runs_few_tasks(embed_runs):
    with transaction.atomic():
        articles = [make_article(f"Imported story {n}", f"Imported text number {n}.") for n in range(300)]
    assert 1 <= len(embed_runs) <= 3
    ids = [item_of(a).pk for a in articles]
    assert Item.objects.filter(pk__in=ids, embedding__isnull=False).count() == 300


def test_with_a_worker_a_burst_of_saves_enqueues_one_debounced_task(settings):
    settings.RECOMMENDER = {**settings.RECOMMENDER, "EMBED_DEBOUNCE_SECONDS": 30}
    with (
        worker_mode(),
        mock.patch.object(tasks.embed_items, "apply_async") as apply_async,
        mock.patch.object(tasks.embed_items, "delay") as delay,
    ):
        for n in range(50):  # autocommit: one item_content_changed per save
            make_article(f"Burst {n}")
    assert delay.call_count == 0
    assert apply_async.call_count == 1
    assert apply_async.call_args.kwargs == {"kwargs": {"ids": None, "debounced": True}, "countdown": 30}


def test_large_transaction_is_enqueued_in_chunks_once_on_commit(settings):
    settings.RECOMMENDER = {**settings.RECOMMENDER, "EMBED_BATCH_SIZE": 4, "EMBED_TASK_BATCHES": 2}
    with mock.patch.object(embedding, "_embedder") as embedder:
        embedder.return_value.name = "never-used"  # every item needs a vector from this one
        content_type = ContentType.objects.get_for_model(Tag)
        items = [
            Item.objects.create(content_type=content_type, object_id=f"x{n}", text=f"t{n}") for n in range(20)
        ]
        with (
            worker_mode(),
            mock.patch.object(tasks.embed_items, "delay") as delay,
        ):
            with transaction.atomic():
                embedding.schedule_embedding([i.pk for i in items[:12]], tasks.enqueue_embedding)
                embedding.schedule_embedding([i.pk for i in items[8:]], tasks.enqueue_embedding)
                assert delay.call_count == 0  # nothing before the commit
            chunks = [c.args[0] for c in delay.call_args_list]
    assert [len(c) for c in chunks] == [8, 8, 4]
    assert sorted(pk for c in chunks for pk in c) == sorted(i.pk for i in items)


def test_a_broker_error_at_commit_does_not_fail_the_hosts_transaction():
    def broker_down(ids):
        raise ConnectionError("broker unreachable")

    with transaction.atomic():
        Tag.objects.create(name="kept", slug="kept")
        embedding.schedule_embedding([1, 2, 3], broker_down)
    assert Tag.objects.filter(slug="kept").exists()


def test_rolled_back_transaction_enqueues_nothing():
    with mock.patch.object(tasks.embed_items, "delay") as delay:
        with pytest.raises(RuntimeError), transaction.atomic():
            embedding.schedule_embedding([1, 2, 3], tasks.enqueue_embedding)
            raise RuntimeError
        assert delay.call_count == 0


def test_embed_task_returns_count_and_skips_done_items():
    make_article("One"), make_article("Two")
    Item.objects.update(embedded_hash="")  # as if the texts had changed
    assert tasks.embed_items.delay().get() == 2
    assert tasks.embed_items.delay().get() == 0


def test_embed_items_writes_every_vector_of_every_chunk(settings):
    settings.RECOMMENDER = {**settings.RECOMMENDER, "EMBED_BATCH_SIZE": 4, "EMBED_TASK_BATCHES": 2}
    items = make_catalogue(19)
    Item.objects.filter(pk=items[0].pk).update(content_hash="")  # filled in from the text
    asked, other = items[:-1], items[-1]
    start = timezone.now()
    progress = []
    done = embedding.embed_items([i.pk for i in asked], progress=lambda *p: progress.append(p))
    assert done == 18
    assert progress == [(8, 18), (16, 18), (18, 18)]  # chunks of EMBED_BATCH_SIZE * EMBED_TASK_BATCHES
    embedder = embedding._embedder()
    expected = embedder.encode([i.text for i in asked])
    stored = Item.objects.in_bulk()
    for item, vector in zip(asked, expected, strict=True):
        row = stored[item.pk]
        np.testing.assert_allclose(
            vector_from_bytes(bytes(row.embedding), row.embedding_dim), vector, atol=1e-5
        )
        assert (row.embedding_model, row.embedding_dim) == (embedder.name, 384)
        assert row.embedded_hash == row.content_hash == content_hash(item.text)
        assert row.embedded_at >= start
        assert (row.title, row.text, row.updated_at) == (item.title, item.text, item.updated_at)
    assert stored[other.pk].embedding is None
    assert embedding.embed_items() == 1  # only the one not asked for is left


def test_suggest_tags_adds_pending_automatic_tags_with_scores():
    football = Tag.objects.create(
        name="Football", slug="football", description="football, soccer, league, goal"
    )
    Tag.objects.create(name="Cooking", slug="cooking", description="recipes, kitchen, baking, food")
    item = item_of(
        make_article("Cup final", "The striker scored twice as the club won the football cup final.")
    )
    assert tasks.suggest_tags.delay().get() >= 1
    suggestion = ItemTag.objects.get(item=item, tag=football)
    assert suggestion.source == ItemTag.Source.AUTOMATIC
    assert suggestion.status == ItemTag.Status.PENDING
    assert 0.35 <= suggestion.weight <= 1.0
    assert not ItemTag.objects.filter(item=item, tag__slug="cooking").exists()
    assert embedding.suggest_tags() == 0  # already suggested: nothing new
