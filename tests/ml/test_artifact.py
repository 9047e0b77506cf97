"""Artifact round-trip, and clear errors for corrupt or mismatched files."""

import json

import pytest

from recommender.ml.artifact import (
    ArtifactError,
    artifact_files,
    load_artifact,
    load_artifact_files,
    map_artifact,
    save_artifact,
)
from tests.ml.factories import trained


def test_round_trip_serves_identical_recommendations(tmp_path):
    rec = trained()
    digest = save_artifact(rec, tmp_path / "model")
    loaded = load_artifact(tmp_path / "model")
    assert loaded.item_ids == rec.item_ids
    assert loaded.metadata["sha256"] == digest
    assert loaded.metadata["metrics"]["val_ndcg@10"] == rec.metadata["metrics"]["val_ndcg@10"]
    assert loaded.recommend(["i1", "i2"], k=10) == rec.recommend(["i1", "i2"], k=10)
    meta = json.loads((tmp_path / "model" / "metadata.json").read_text())
    assert {"format_version", "config", "item_ids", "embedder", "metrics", "data", "sha256"} <= meta.keys()
    assert meta["embedder"]["dimension"] == 16


@pytest.mark.parametrize("load", [load_artifact, map_artifact])
def test_a_model_saved_with_full_precision_content_loads_and_serves_as_before(tmp_path, load):
    """Artifacts written before content was stored in half precision keep serving the same lists."""
    save_artifact(trained(), tmp_path / "now")
    old = load_artifact(tmp_path / "now")  # a copy of its own, to turn back into an fp32 model
    old.model.items.content = old.model.items.content.float()
    expected = old.recommend(["i1", "i2"], k=5)
    save_artifact(old, tmp_path / "old")
    loaded = load(tmp_path / "old")
    assert [r.item_id for r in loaded.recommend(["i1", "i2"], k=5)] == [r.item_id for r in expected]
    loaded.add_items({"added": old.model.items.content[old.row("i3")].numpy()})
    assert "added" in loaded
    assert loaded.recommend(["i1"], k=5)


def test_flipped_byte_in_weights_is_rejected_by_checksum():
    files = artifact_files(trained())
    weights = bytearray(files["model.safetensors"])
    weights[-10] ^= 0xFF
    with pytest.raises(ArtifactError, match="checksum"):
        load_artifact_files({**files, "model.safetensors": bytes(weights)})


def test_mismatched_or_unreadable_artifacts_raise_artifact_error(tmp_path):
    files = artifact_files(trained())
    meta = json.loads(files["metadata.json"])
    with pytest.raises(ArtifactError, match="format_version"):
        load_artifact_files({**files, "metadata.json": json.dumps({**meta, "format_version": 99}).encode()})
    bigger = {**meta, "config": {**meta["config"], "n_items": meta["config"]["n_items"] + 5}}
    with pytest.raises(ArtifactError, match="do not match"):
        load_artifact_files({**files, "metadata.json": json.dumps(bigger).encode()})
    with pytest.raises(ArtifactError, match="JSON"):
        load_artifact_files({**files, "metadata.json": b"{not json"})
    with pytest.raises(ArtifactError, match="cannot read"):
        load_artifact(tmp_path / "missing")
