"""The process-wide model: load once, cheap checks, atomic swap, new items added once."""

from __future__ import annotations

import threading

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from recommender.models import ModelVersion
from recommender.serving import model_store
from recommender.training import artifacts, model_registry
from tests.serving import factories
from tests.serving.conftest import TEST_SETTINGS, activate_model

pytestmark = pytest.mark.usefixtures("serving_settings")


def test_no_active_version_means_no_model(db):
    assert model_store.get_active() is None


def test_the_model_loads_once_per_process(session, monkeypatch):
    calls = []
    real = artifacts.load_stored_artifact
    monkeypatch.setattr(artifacts, "load_stored_artifact", lambda v, **kw: calls.append(v) or real(v, **kw))
    model_store.invalidate()
    first = model_store.get_active()
    assert all(model_store.get_active() is first for _ in range(5))
    assert len(calls) == 1 and first.version.pk == session.version.pk


def test_a_new_version_is_seen_only_at_the_next_check(session, settings, trained_models):
    settings.RECOMMENDER = {**TEST_SETTINGS, "MODEL_CHECK_INTERVAL": 3600}
    model_store.invalidate()
    old = model_store.get_active()
    name, checksum = artifacts.store_artifact("next", trained_models[1])
    new = ModelVersion.objects.create(
        name="next", status=ModelVersion.Status.SUCCEEDED, artifact_name=name, checksum=checksum
    )
    model_registry.activate(new)  # announces through the cache key on commit
    assert model_store.get_active() is old  # within the interval nothing is asked
    settings.RECOMMENDER = {**TEST_SETTINGS}
    model_store.announce_active(new)  # what activate() does once its transaction commits
    assert model_store.get_active().version.pk == new.pk


def test_a_broken_artifact_keeps_serving_the_previous_model(session):
    old = model_store.get_active()
    ModelVersion.objects.update(is_active=False)
    ModelVersion.objects.create(
        name="broken", status=ModelVersion.Status.SUCCEEDED, artifact_name="missing/nowhere", is_active=True
    )
    model_store.invalidate()
    assert model_store.get_active() is old


def test_readers_never_see_a_half_loaded_model_during_a_swap(session, trained_models):
    loaded = model_store.get_active()
    history = [str(i.pk) for i in session.items["climate"][:3]]
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                current = model_store._current  # what get_active hands out between checks
                assert len(current.recommender.recommend(history, k=3)) == 3
            except BaseException as exc:
                errors.append(exc)
                return

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(3):
            activate_model(trained_models[1])
            model_store.get_active()
            activate_model(trained_models[0])
            model_store.get_active()
    finally:
        stop.set()
        reader.join()
    assert not errors and model_store.get_active() is not loaded


def test_items_embedded_after_loading_are_added_once(session, monkeypatch):
    loaded = model_store.get_active()
    added: list[set[str]] = []
    real = loaded.recommender.add_items
    published: list[dict[str, float]] = []

    def add_items(content, tags=None, dated=None):
        added.append(set(content))
        published.append(dict(dated or {}))
        return real(content, tags, dated)

    monkeypatch.setattr(loaded.recommender, "add_items", add_items)
    new = factories.make_item(topic="football", published_at=timezone.now())
    for _ in range(3):
        model_store.get_active()
    assert added == [{str(new.pk)}]
    assert published == [{str(new.pk): new.published_at.timestamp()}]  # its age, for a model that scores it
    assert str(new.pk) in loaded.recommender


def test_serving_threads_setting_applies_when_a_model_loads(session, settings):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)  # so that the assertion below can fail
    settings.RECOMMENDER = {**TEST_SETTINGS, "SERVING_THREADS": 1}
    try:
        model_store.invalidate()
        assert model_store.get_active() is not None
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_new_item_boost_setting_applies_when_a_model_loads(session, settings):
    settings.RECOMMENDER = {**TEST_SETTINGS, "NEW_ITEM_BOOST": 1.5}
    model_store.invalidate()
    assert model_store.get_active().recommender.new_item_boost == 1.5


def test_a_truncated_artifact_is_refused_and_the_old_model_keeps_serving(session, trained_models):
    old = model_store.get_active()
    name, checksum = artifacts.store_artifact("truncated", trained_models[1])
    storage = artifacts.artifact_storage()
    weights = f"{name}/model.safetensors"
    with storage.open(weights, "rb") as handle:
        half = handle.read()[: storage.size(weights) // 2]
    storage.delete(weights)
    storage.save(weights, ContentFile(half))
    broken = ModelVersion.objects.create(
        name="truncated", status=ModelVersion.Status.SUCCEEDED, artifact_name=name, checksum=checksum
    )
    with pytest.raises(model_registry.ModelRegistryError, match="corrupt or truncated"):
        model_registry.activate(broken)
    assert ModelVersion.objects.active() == session.version
    # Even forced active behind the registry's back, the store refuses it and keeps the old model.
    ModelVersion.objects.update(is_active=False)
    ModelVersion.objects.filter(pk=broken.pk).update(is_active=True)
    model_store.invalidate()
    assert model_store.get_active() is old
