"""Training runs end to end in eager mode: data, progress, artifact, refresh, failures, lock, upkeep."""

from __future__ import annotations

import threading
from datetime import timedelta
from unittest import mock

import numpy as np
import pytest
import torch
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.core.management import call_command
from django.db import connection, connections
from django.utils import timezone

from recommender import tasks
from recommender.ml.embedder import vector_from_bytes
from recommender.models import Interaction, Item, ModelVersion, Profile, RecommendationLog
from recommender.serving import model_store
from recommender.serving.candidates import trending_candidates
from recommender.training import dataset, runs
from recommender.training.artifacts import ARTIFACT_FILES, load_stored_artifact
from recommender.training.locks import TrainingBusy, training_lock
from tests.workers.factories import make_items, seed_sessions

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue() -> list[Item]:
    items = make_items(12)
    seed_sessions(items, users=30, length=8)
    return items


def _artifact_complete(version: ModelVersion) -> bool:
    storage = storages["default"]
    return all(storage.exists(f"{version.artifact_name}/{name}") for name in ARTIFACT_FILES)


def test_train_model_produces_an_active_version_with_metrics(catalogue):
    version = runs.train_model()
    assert version.status == ModelVersion.Status.SUCCEEDED
    assert version.is_active and version.activated_at is not None
    assert 0.0 <= version.metrics["val_ndcg@10"] <= 1.0
    assert "val_pop_ndcg@10" in version.metrics
    assert [h["epoch"] for h in version.history if not h.get("refit")] == [1, 2, 3]
    assert version.history[-1]["refit"] is True  # then one pass over every event, held-out ones too
    assert version.progress["epoch"] == 3
    assert version.data_summary["users"] == 30
    assert version.data_summary["last_interaction_id"] == Interaction.objects.order_by("pk").last().pk
    assert version.device == "cpu"
    assert _artifact_complete(version)
    rec = load_stored_artifact(version)
    assert set(rec.item_ids) <= {str(i.pk) for i in catalogue}
    # Dated items: the model learned a logit by item age, and kept each item's publication time.
    assert rec.config.age_buckets > 0
    born = {i.pk: i.published_at.timestamp() for i in catalogue}
    assert all(rec.model.born[rec.row(i)].item() == born[int(i)] for i in rec.item_ids)
    loaded = model_store.get_active()
    assert loaded is not None and loaded.version.pk == version.pk


def test_a_run_reads_content_vectors_in_the_half_precision_the_model_keeps(catalogue):
    """Half the memory of float32 vectors (0.77 GB at 1M items x 384), and the same model."""
    call_command("recommender_embed")  # on_commit never fires inside a test transaction
    content, _, name = runs._content_and_tags()
    item = Item.objects.get(pk=catalogue[0].pk)
    vector = content[str(item.pk)]
    assert name == item.embedding_model and vector.dtype == np.float16 and vector.shape == (384,)
    assert np.array_equal(vector, vector_from_bytes(bytes(item.embedding), 384).astype(np.float16))
    rec = load_stored_artifact(runs.train_model())
    assert torch.equal(rec.model.items.content[rec.row(str(item.pk))], torch.from_numpy(vector))


def test_progress_is_written_while_training(catalogue):
    seen = []

    def peek(progress):
        seen.append(ModelVersion.objects.get(status=ModelVersion.Status.RUNNING).progress.get("epoch"))

    runs.train_model(progress=peek)
    assert seen[0] == 1  # the first epoch is always written; later ones throttled
    assert seen == sorted(seen)


def test_training_data_respects_weights_and_opt_outs(catalogue):
    item = catalogue[0]
    Interaction.objects.create(event_id="imp", visitor_id="v0-0", item=item, event_type="impression")
    Profile.objects.create(visitor_id="v0-1", personalization_enabled=False)
    events = runs.build_training_events()
    assert {e.event_type for e in events} == {"view"}
    users = {e.user for e in events}
    assert "vv0-0" in users and "vv0-1" not in users
    assert len(users) == 29


def test_the_task_runs_the_same_code_in_eager_mode(catalogue):
    pk = tasks.train_model.delay({"epochs": 2}).get()
    version = ModelVersion.objects.get(pk=pk)
    assert version.is_active and version.config["epochs"] == 2


def test_not_enough_data_trains_nothing(catalogue, settings):
    settings.RECOMMENDER = {**settings.RECOMMENDER, "MIN_INTERACTIONS_TO_TRAIN": 10_000}
    with pytest.raises(runs.NotEnoughData):
        runs.train_model()
    assert tasks.train_model.delay().get() is None
    assert not ModelVersion.objects.exists()


def test_a_failed_run_is_marked_failed_and_the_active_model_keeps_serving(catalogue):
    good = runs.train_model()
    with (
        mock.patch("recommender.training.artifacts.store_artifact", side_effect=OSError("disk full")),
        pytest.raises(OSError),
    ):
        runs.train_model()
    failed = ModelVersion.objects.exclude(pk=good.pk).get()
    assert failed.status == ModelVersion.Status.FAILED
    assert "disk full" in failed.error
    assert failed.artifact_name == "" and not failed.is_active
    assert ModelVersion.objects.active().pk == good.pk
    assert model_store.get_active().version.pk == good.pk


def test_refresh_continues_the_active_model_on_new_interactions(catalogue):
    assert runs.refresh_model() is not None  # no active model yet: a full training
    parent = ModelVersion.objects.active()
    assert runs.refresh_model() is None  # nothing new since
    new_items = make_items(3)
    seed_sessions(catalogue + new_items, users=6, length=6, seed=1, prefix="w")
    refreshed = runs.refresh_model()
    assert refreshed.kind == ModelVersion.Kind.REFRESH and refreshed.parent_id == parent.pk
    assert refreshed.status == ModelVersion.Status.SUCCEEDED
    assert refreshed.data_summary["users"] == 6
    assert len([h for h in refreshed.history if not h.get("refit")]) <= 2
    assert set(load_stored_artifact(parent).item_ids) <= set(load_stored_artifact(refreshed).item_ids)


def test_events_written_while_a_run_reads_are_left_to_the_next_refresh(catalogue, monkeypatch):
    """An event stored between the run's cursor and its read is neither trained nor skipped for good."""
    late = []
    read = dataset.load_training_data

    def read_then_a_reader_clicks(**kwargs):
        data = read(**kwargs)
        if not late:  # the first read of the run: a tracker request lands right after it
            late.append(Interaction.objects.create(visitor_id="late", item=catalogue[0], event_type="view"))
        return data

    monkeypatch.setattr(dataset, "load_training_data", read_then_a_reader_clicks)
    version = runs.train_model()
    cursor = version.data_summary["last_interaction_id"]
    assert cursor < late[0].pk
    monkeypatch.setattr(dataset, "load_training_data", read)
    assert [e.user for e in runs.build_training_events(after_id=cursor)] == ["vlate"]


def _hold_lock_elsewhere(release: threading.Event, held: threading.Event) -> None:
    try:
        with training_lock():
            held.set()
            release.wait(10)
    finally:
        connections.close_all()


def test_the_lock_allows_one_training_run_at_a_time(catalogue):
    queued = ModelVersion.objects.create(name="queued-by-admin")
    if connection.vendor == "postgresql":  # the advisory lock, held by another connection
        release, held = threading.Event(), threading.Event()
        holder = threading.Thread(target=_hold_lock_elsewhere, args=(release, held))
        holder.start()
        assert held.wait(10)
    else:  # a live run: "running" and younger than the hard time limit
        ModelVersion.objects.create(
            name="live", status=ModelVersion.Status.RUNNING, started_at=timezone.now()
        )
    try:
        with pytest.raises(TrainingBusy):
            runs.train_model(version=queued)
        assert tasks.train_model.delay(version_id=queued.pk).get() is None
    finally:
        if connection.vendor == "postgresql":
            release.set()
            holder.join()
    queued.refresh_from_db()
    assert queued.status == ModelVersion.Status.FAILED
    assert "another training run" in queued.error or "still running" in queued.error
    assert not ModelVersion.objects.filter(status=ModelVersion.Status.SUCCEEDED).exists()


def test_a_run_whose_worker_died_is_marked_failed_by_the_next_run(catalogue):
    # Killed long ago (SQLite: older than the time limit; PostgreSQL: nobody holds the lock).
    dead = ModelVersion.objects.create(
        name="dead", status=ModelVersion.Status.RUNNING, started_at=timezone.now() - timedelta(days=1)
    )
    storages["default"].save(f"recommender/models/{dead.name}/model.safetensors", ContentFile(b"partial"))
    runs.train_model()
    dead.refresh_from_db()
    assert dead.status == ModelVersion.Status.FAILED and "stopped without finishing" in dead.error
    assert not storages["default"].exists(f"recommender/models/{dead.name}/model.safetensors")


def test_compute_trending_decays_older_events(catalogue):
    Interaction.objects.all().delete()
    fresh, old, quiet = catalogue[:3]
    now = timezone.now()
    for n in range(3):
        Interaction.objects.create(
            event_id=f"f{n}", visitor_id=f"a{n}", item=fresh, event_type="view", timestamp=now
        )
        Interaction.objects.create(
            event_id=f"o{n}",
            visitor_id=f"b{n}",
            item=old,
            event_type="view",
            timestamp=now - timedelta(hours=24),
        )
    Item.objects.filter(pk=quiet.pk).update(trending_score=5.0)
    assert tasks.compute_trending.delay().get() == 2
    scores = dict(Item.objects.values_list("pk", "trending_score"))
    assert scores[fresh.pk] == pytest.approx(3.0, rel=1e-3)
    assert scores[old.pk] == pytest.approx(0.75, rel=1e-3)  # two half-lives of 12 hours
    assert scores[quiet.pk] == 0.0


def test_one_readers_500_views_weigh_like_one_reader_in_trending(catalogue):
    """Spam from one identity cannot lift an item above one that five readers viewed."""
    Interaction.objects.all().delete()
    spammed, read_by_five = catalogue[:2]
    now = timezone.now()
    Interaction.objects.bulk_create(
        Interaction(event_id=f"s{n}", visitor_id="spammer", item=spammed, event_type="view", timestamp=now)
        for n in range(500)
    )
    Interaction.objects.bulk_create(
        Interaction(
            event_id=f"r{n}", visitor_id=f"reader{n}", item=read_by_five, event_type="view", timestamp=now
        )
        for n in range(5)
    )
    user = get_user_model().objects.create_user("liker")
    Interaction.objects.create(event_id="l1", user=user, item=spammed, event_type="view", timestamp=now)
    Interaction.objects.create(event_id="l2", user=user, item=spammed, event_type="like", timestamp=now)
    tasks.compute_trending.delay().get()
    scores = dict(Item.objects.values_list("pk", "trending_score"))
    assert scores[spammed.pk] == pytest.approx(1.0 + 2.0, rel=1e-3)  # the spammer's view + the user's like
    assert scores[read_by_five.pk] == pytest.approx(5.0, rel=1e-3)
    assert [c.item_id for c in trending_candidates(k=2)] == [read_by_five.pk, spammed.pk]
    # Counting a window on request: 5 readers against 2 (the spammer and the liker).
    assert [c.item_id for c in trending_candidates(k=2, window_hours=24)] == [read_by_five.pk, spammed.pk]


def test_cleanup_removes_old_logs_and_surplus_artifacts(catalogue, settings):
    settings.RECOMMENDER = {**settings.RECOMMENDER, "KEEP_INACTIVE_VERSIONS": 1}
    versions = [runs.train_model(config={"epochs": 1}, activate=flag) for flag in (True, True, False, True)]
    RecommendationLog.objects.create(
        recomm_id="old", placement="home", created_at=timezone.now() - timedelta(days=400)
    )
    RecommendationLog.objects.create(recomm_id="new", placement="home")
    summary = tasks.cleanup.delay().get()
    assert summary["logs"] == 1 and summary["artifacts"] == 1
    assert list(RecommendationLog.objects.values_list("recomm_id", flat=True)) == ["new"]
    for version in versions:
        version.refresh_from_db()
    assert versions[-1].is_active and _artifact_complete(versions[-1])
    assert _artifact_complete(versions[2])  # the newest inactive version
    assert _artifact_complete(versions[1])  # the previously active one, kept for rollback
    assert versions[0].artifact_name == ""
    for version in ModelVersion.objects.exclude(artifact_name=""):
        assert _artifact_complete(version)


def test_cleanup_deletes_events_older_than_the_retention_only_when_one_is_set(catalogue, settings):
    Interaction.objects.all().delete()
    now = timezone.now()
    for n, days in enumerate((400, 20, 0)):
        Interaction.objects.create(
            event_id=f"ret{n}",
            visitor_id="v",
            item=catalogue[0],
            event_type="view",
            timestamp=now - timedelta(days=days),
        )
    assert tasks.cleanup.delay().get()["events"] == 0  # the default keeps everything
    settings.RECOMMENDER = {**settings.RECOMMENDER, "INTERACTION_RETENTION_DAYS": 30}
    assert tasks.cleanup.delay().get()["events"] == 1
    assert sorted(Interaction.objects.values_list("event_id", flat=True)) == ["ret1", "ret2"]


def test_management_commands_mirror_the_tasks(catalogue, capsys):
    call_command("recommender_train", "--epochs", "2")
    out = capsys.readouterr().out
    assert "val_ndcg@10" in out and "activated" in out
    call_command("recommender_evaluate")
    out = capsys.readouterr().out
    assert "popularity" in out and "ndcg@10" in out
    call_command("recommender_embed")  # on_commit never fires inside a test transaction: nothing embedded yet
    assert "12 item(s) embedded" in capsys.readouterr().out
    call_command("recommender_embed")
    assert "0 item(s) embedded" in capsys.readouterr().out


@pytest.mark.django_db
def test_admin_tuning_reaches_gate_and_event_weights():
    """The tuning row edited in the admin is what the gate and the data set read."""
    from recommender.models import TuningSettings
    from recommender.tuning import get_tuning, invalidate_tuning

    TuningSettings.objects.create(values={"GATE_TOLERANCE": 0.5, "EVENT_TYPES": {"impression": 0.25}})
    invalidate_tuning()
    tuning = get_tuning()
    assert tuning.gate_tolerance == 0.5
    assert tuning.event_types["impression"] == 0.25
    assert tuning.event_types["like"] > 0  # other types keep their weights


def test_a_sampled_holdout_is_refused_where_the_gate_scores_every_last_event():
    """holdout_users would let a candidate learn the gate's targets: training from the app refuses it."""
    from recommender.ml.trainer import TrainConfig

    with pytest.raises(ValueError, match="holdout_users is for benchmarks only"):
        runs.make_config({"holdout_users": 100})
    with pytest.raises(ValueError, match="holdout_users is for benchmarks only"):
        runs.make_config(TrainConfig(holdout_users=100))
    assert runs.make_config({}).holdout_users is None
