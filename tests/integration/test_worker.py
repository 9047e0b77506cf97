"""Workers for real: a Celery worker on a Redis broker and PostgreSQL, including one killed mid-training.

Skipped (with the reason) unless ``DATABASE_URL`` is PostgreSQL and ``TEST_REDIS_URL`` is set.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest
from celery.signals import task_prerun
from django.db import connections

from recommender import tasks
from recommender.identity import Identity
from recommender.models import Item, ModelVersion
from recommender.serving import model_store
from recommender.training import maintenance, runs
from recommender.training.artifacts import load_stored_artifact
from recommender.training.locks import TrainingBusy
from tests.integration.conftest import PROCESS_QUEUE
from tests.workers.factories import TINY_TRAIN_CONFIG, item_of, make_article, make_catalogue, seed_sessions

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TIMEOUT = 120


def wait_for(condition: Callable[[], object], timeout: float = TIMEOUT, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")


@pytest.fixture
def embed_task_runs():
    runs: list[object] = []

    def record(sender=None, **_):
        if sender is not None and sender.name == "recommender.embed_items":
            runs.append(sender)

    task_prerun.connect(record, weak=False)
    yield runs
    task_prerun.disconnect(record)


def _visitor_history(visitor: str) -> list[int]:
    from recommender.models import Interaction

    return list(
        Interaction.objects.filter(visitor_id=visitor).order_by("timestamp").values_list("item_id", flat=True)
    )


def test_saved_content_is_embedded_by_the_worker(celery_worker):
    article = make_article("Storm warning", "Heavy rain and wind are expected along the coast tonight.")
    item = wait_for(
        lambda: Item.objects.filter(pk=item_of(article).pk, embedding__isnull=False).first(),
        what="the embedding",
    )
    assert item.embedding_dim == 384 and item.embedded_hash == item.content_hash


def test_a_bulk_import_coalesces_into_few_tasks(celery_worker, embed_task_runs, settings):
    settings.RECOMMENDER = {**settings.RECOMMENDER, "EMBED_DEBOUNCE_SECONDS": 5}
    started = time.monotonic()
    articles = [make_article(f"Imported {n}", f"Imported article number {n}.") for n in range(120)]
    windows = int((time.monotonic() - started) // 5) + 1  # one debounced task per started window
    ids = [item_of(a).pk for a in articles]
    wait_for(
        lambda: Item.objects.filter(pk__in=ids, embedding__isnull=False).count() == len(ids),
        what="embeddings",
    )
    time.sleep(6)  # a task still due would have started by now
    assert 1 <= len(embed_task_runs) <= windows + 1
    assert len(embed_task_runs) <= len(articles) // 10


def test_trained_model_is_activated_and_served(celery_worker):
    from recommender.serving.recommend import recommend

    seed_sessions(make_catalogue(12), users=30, length=8)
    pk = tasks.train_model.delay(TINY_TRAIN_CONFIG).get(timeout=TIMEOUT)
    version = ModelVersion.objects.get(pk=pk)
    assert version.status == ModelVersion.Status.SUCCEEDED and version.is_active
    assert version.metrics["val_ndcg@10"] > 0
    assert version.task_id
    recs = recommend(Identity(user_id=None, visitor_id="v0-0"), limit=5)
    assert recs.model_version == version.name
    assert recs.items and {r.item.pk for r in recs.items}.isdisjoint(_visitor_history("v0-0"))
    assert any(r.reason == "personalized" for r in recs.items)


def test_a_worse_model_is_refused_by_the_gate(celery_worker, settings):
    settings.RECOMMENDER = {**settings.RECOMMENDER, "GATE_TOLERANCE": 0.0}
    seed_sessions(make_catalogue(12), users=30, length=8)
    first = ModelVersion.objects.get(pk=tasks.train_model.delay(TINY_TRAIN_CONFIG).get(timeout=TIMEOUT))
    ModelVersion.objects.filter(pk=first.pk).update(metrics={**first.metrics, "val_ndcg@10": 0.999})
    second = ModelVersion.objects.get(pk=tasks.train_model.delay(TINY_TRAIN_CONFIG).get(timeout=TIMEOUT))
    assert second.status == ModelVersion.Status.SUCCEEDED and not second.is_active
    assert second.gate_reason.startswith("refused")
    assert ModelVersion.objects.active().pk == first.pk


def test_sigkill_mid_training_keeps_the_active_model_and_fails_the_run(worker_process):
    from recommender.serving.recommend import recommend

    seed_sessions(make_catalogue(12), users=30, length=8)
    active = runs.train_model(config=TINY_TRAIN_CONFIG)  # in this process: the model being served
    assert active.is_active
    proc = worker_process()
    long_run = {**TINY_TRAIN_CONFIG, "epochs": 100_000, "patience": 100_000, "max_minutes": 10}
    tasks.train_model.apply_async(args=[long_run], queue=PROCESS_QUEUE)
    running = wait_for(
        lambda: ModelVersion.objects.filter(
            status=ModelVersion.Status.RUNNING, progress__epoch__gte=2
        ).first(),
        what=f"training to be under way (worker log: {proc.log_path})",
    )
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)

    running.refresh_from_db()
    assert running.status == ModelVersion.Status.RUNNING  # nobody could say otherwise: the process is gone
    assert running.artifact_name == ""
    model_store.invalidate()
    recs = recommend(Identity(user_id=None, visitor_id="v0-0"), limit=5)
    assert recs.model_version == active.name and recs.items

    # The next run or cleanup takes the lock (the dead session released it) and closes the run.
    def cleaned() -> bool:
        connections.close_all()
        try:
            return maintenance.cleanup()["stale_runs"] == 1
        except TrainingBusy:
            return False

    wait_for(cleaned, timeout=30, what="the advisory lock of the killed worker to be released")
    running.refresh_from_db()
    assert running.status == ModelVersion.Status.FAILED and "stopped without finishing" in running.error
    assert ModelVersion.objects.active().pk == active.pk
    for version in ModelVersion.objects.exclude(artifact_name=""):
        load_stored_artifact(version)  # complete and matching its checksum, or this raises


def test_tracked_events_update_the_readers_profile_on_the_worker(celery_worker):
    """Ingest only writes the events; the interest profile is the worker's job (issue 16 §1)."""
    import threading

    from recommender.models import ItemTag, Profile, Tag
    from recommender.tracking.events import EventInput, ingest

    ran_in: list[str] = []

    def record(sender=None, **_):
        if sender is not None and sender.name == "recommender.update_interests":
            ran_in.append(threading.current_thread().name)

    climate = Tag.objects.create(name="Climate", slug="climate")
    items = [item_of(make_article(f"Climate story {n}")) for n in range(3)]
    ItemTag.objects.bulk_create([ItemTag(item=item, tag=climate) for item in items])
    task_prerun.connect(record, weak=False)
    try:
        created = ingest(
            [EventInput(item_id=item.pk, event_type="view", visitor_id="reader-w") for item in items]
        ).created
        profile = wait_for(
            lambda: Profile.objects.filter(visitor_id="reader-w", interests__has_key="climate").first(),
            what="the interest profile",
        )
    finally:
        task_prerun.disconnect(record)
    assert created == 3
    assert ran_in and threading.current_thread().name not in ran_in
    assert profile.interests["climate"] > 0
