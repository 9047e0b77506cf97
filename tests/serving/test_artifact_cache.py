"""Serving maps the active model from a local copy of its files, shared by the processes of a host."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from recommender.ml.artifact import artifact_files, load_artifact_files
from recommender.ml.inference import Recommender
from recommender.models import ModelVersion
from recommender.serving import model_store
from recommender.training import artifacts
from tests.serving import factories
from tests.serving.conftest import TEST_SETTINGS, activate_model

pytestmark = pytest.mark.usefixtures("serving_settings")


@pytest.fixture
def cache_dir(settings, tmp_path) -> Path:
    settings.RECOMMENDER = {**TEST_SETTINGS, "ARTIFACT_CACHE_DIR": str(tmp_path / "cache")}
    return tmp_path / "cache"


def _stored(version: ModelVersion) -> dict[str, bytes]:
    storage = artifacts.artifact_storage()
    out = {}
    for name in artifacts.ARTIFACT_FILES:
        with storage.open(f"{version.artifact_name}/{name}", "rb") as fh:
            out[name] = fh.read()
    return out


def _folder(cache_dir: Path, version: ModelVersion) -> Path:
    """A version's cache folder: named by its metadata, which holds its checksum and item ids."""
    return cache_dir / hashlib.sha256(_stored(version)["metadata.json"]).hexdigest()


def test_the_served_model_is_mapped_from_the_cache_and_serves_as_from_storage(session, cache_dir):
    served = model_store.get_active().recommender
    copied = load_artifact_files(_stored(session.version))
    weights = _folder(cache_dir, session.version) / "model.safetensors"
    assert str(weights) in Path("/proc/self/maps").read_text()
    history = served.item_ids[:4]
    assert served.recommend(history, k=5) == copied.recommend(history, k=5)


def test_a_corrupt_cached_copy_is_fetched_again(session, cache_dir):
    model_store.get_active()
    weights = _folder(cache_dir, session.version) / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-10] ^= 0xFF
    weights.unlink()  # the loaded model keeps the old file's pages; the new file is the corrupt one
    weights.write_bytes(bytes(raw))
    reloaded = artifacts.load_stored_artifact(session.version)
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == session.version.checksum
    expected = load_artifact_files(_stored(session.version))
    history = expected.item_ids[:4]
    assert reloaded.recommend(history, k=5) == expected.recommend(history, k=5)


def test_only_the_newest_cached_versions_are_kept(session, trained_models, cache_dir):
    model_store.get_active()
    third = load_artifact_files(artifact_files(trained_models[0]))
    third.add_items({"another": factories.topic_vector(factories.TOPICS[0])})
    versions = []
    for recommender in (trained_models[1], third):
        versions.append(activate_model(recommender))
        assert model_store.get_active().version.pk == versions[-1].pk
    kept = sorted(p.name for p in cache_dir.iterdir())
    assert kept == sorted(_folder(cache_dir, v).name for v in versions)
    assert _folder(cache_dir, session.version).name not in kept


def test_equal_weights_with_other_item_ids_load_their_own_item_ids(session, cache_dir):
    """Two trainings with one seed and data of one shape give the same weights for other items."""
    model_store.get_active()
    loaded = load_artifact_files(_stored(session.version))
    renamed = Recommender(  # the same tensors over other items
        loaded.model,
        [f"other-{i}" for i in loaded.item_ids],
        event_types=loaded.event_types,
        tags=loaded.tags,
        metadata=loaded.metadata,
    )
    twin = activate_model(renamed)
    assert twin.checksum == session.version.checksum
    assert artifacts.load_stored_artifact(twin).item_ids[0].startswith("other-")
    assert not artifacts.load_stored_artifact(session.version).item_ids[0].startswith("other-")
