"""Artifact round-trip, and clear errors for corrupt or mismatched files."""

import json
from dataclasses import asdict

import pytest

from recommender.ml.artifact import (
    ArtifactError,
    artifact_files,
    load_artifact,
    load_artifact_files,
    map_artifact,
    save_artifact,
)
from recommender.ml.inference import Recommender
from recommender.ml.model import Seq2SeqConfig, Seq2SeqRecommender
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


@pytest.mark.parametrize("load", [load_artifact, map_artifact])
def test_a_model_saved_with_one_id_row_per_item_loads_and_serves_as_before(tmp_path, load):
    """Artifacts from before only read items had an ID row: no id_row tensor, no n_id_rows in the config."""
    rec = trained()
    now = rec.model
    config = {k: v for k, v in asdict(now.config).items() if k != "n_id_rows"}
    old_model = Seq2SeqRecommender(Seq2SeqConfig(**config)).eval()
    state = {k: v for k, v in now.state_dict().items() if k != "items.id_row"}
    state["items.id.weight"] = now.items.ids()  # the same ID of every item, one row each
    old_model.load_state_dict(state)
    old = Recommender(old_model, list(rec.item_ids), metadata=rec.metadata)
    files = artifact_files(old)
    meta = json.loads(files["metadata.json"])
    del meta["config"]["n_id_rows"]
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "model.safetensors").write_bytes(files["model.safetensors"])
    (tmp_path / "old" / "metadata.json").write_text(json.dumps(meta))
    loaded = load(tmp_path / "old")
    assert loaded.model.items.id_row is None and len(loaded.model.items.id.weight) == len(rec.item_ids) + 1
    for history in (["i1", "i2"], ["i7"], ["i3", "i9", "i4"]):
        assert [r.item_id for r in loaded.recommend(history, k=10)] == [
            r.item_id for r in rec.recommend(history, k=10)
        ]
    loaded.add_items({"added": now.items.content[rec.row("i3")].float().numpy()})
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
