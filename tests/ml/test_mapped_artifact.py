"""map_artifact: the tensors are views of the artifact's files, shared by the processes mapping them."""

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from recommender.ml.artifact import (
    MATRIX,
    ArtifactError,
    artifact_files,
    load_artifact_files,
    map_artifact,
    save_artifact,
)
from recommender.ml.inference import Recommender
from tests.ml.factories import content_vectors, trained


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _mapped_ranges(path: Path) -> list[tuple[int, int]]:
    """Address ranges of this process that map `path` (from /proc/self/maps)."""
    ranges = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        if line.endswith(str(path)):
            start, stop = line.split()[0].split("-")
            ranges.append((int(start, 16), int(stop, 16)))
    return ranges


def _inside(tensor: torch.Tensor, ranges: list[tuple[int, int]]) -> bool:
    pointer = tensor.untyped_storage().data_ptr()
    return any(start <= pointer < stop for start, stop in ranges)


def _written_kb(path: Path) -> int:
    """kB of this process's pages of its mappings of `path` that it has written (copied on write)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            inside = line.endswith(str(path))
        elif inside and line.startswith("Private_Dirty:"):
            total += int(line.split()[1])
    return total


@pytest.fixture
def artifact(tmp_path) -> Path:
    save_artifact(trained(), tmp_path / "model")
    return tmp_path / "model"


def test_mapped_model_serves_as_the_loaded_one(artifact):
    copied = load_artifact_files(artifact_files(trained()))
    mapped = map_artifact(artifact)
    history = ["i1", "i2", "i3"]
    assert mapped.item_ids == copied.item_ids
    # The same list; scores equal up to float rounding (mapped and copied rows may take other kernels).
    got = [(r.item_id, round(r.score, 5), r.explanation) for r in mapped.recommend(history, k=10)]
    assert got == [(r.item_id, round(r.score, 5), r.explanation) for r in copied.recommend(history, k=10)]
    assert torch.allclose(mapped.scores([history]), copied.scores([history]), atol=1e-5)
    got = [(r.item_id, round(r.score, 5)) for r in mapped.similar("i4", k=5)]
    assert got == [(r.item_id, round(r.score, 5)) for r in copied.similar("i4", k=5)]


def test_tensors_are_views_of_the_files_not_copies(artifact):
    mapped = map_artifact(artifact)
    weights = _mapped_ranges(artifact / "model.safetensors")
    assert weights, "the weights file is not mapped"
    table = mapped.model.items
    assert _inside(table.content, weights) and _inside(table.id.weight, weights)
    assert _inside(mapped._state.matrix, _mapped_ranges(artifact / MATRIX))


def test_a_second_process_maps_the_same_files_without_rewriting_them(artifact):
    map_artifact(artifact)  # the first process writes the item matrix
    matrix = artifact / MATRIX
    written = matrix.stat().st_mtime_ns
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from recommender.ml.artifact import map_artifact\n"
        "rec = map_artifact(sys.argv[1])\n"
        "maps = Path('/proc/self/maps').read_text()\n"
        "print(sys.argv[1] + '/model.safetensors' in maps, sys.argv[1] + '/item_matrix' in maps)\n"
        "print(rec.recommend(['i1', 'i2', 'i3'], k=3, explain=False)[0].item_id)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(artifact)], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "True True"
    assert out[1] == map_artifact(artifact).recommend(["i1", "i2", "i3"], k=3, explain=False)[0].item_id
    assert matrix.stat().st_mtime_ns == written


def test_adding_items_never_writes_to_the_files(artifact):
    mapped = map_artifact(artifact)
    before = {path.name: _digest(path) for path in artifact.iterdir()}
    vectors = content_vectors(seed=7)
    mapped.add_items({"i1": vectors["i2"]})  # a known item's new text: written to this process's pages
    mapped.add_items({"brand-new": vectors["i3"]})  # a new item: its rows are this process's own
    assert "brand-new" in mapped
    assert mapped.similar("brand-new", k=3)
    assert {path.name: _digest(path) for path in artifact.iterdir()} == before
    assert not np.allclose(mapped.model.items.content[mapped.row("i1")].numpy(), 0)


def test_a_corrupt_item_matrix_is_computed_again(artifact):
    expected = map_artifact(artifact).recommend(["i1", "i2"], k=10)
    matrix = artifact / MATRIX
    raw = bytearray(matrix.read_bytes())
    raw[100] ^= 0xFF
    matrix.write_bytes(bytes(raw))
    assert map_artifact(artifact).recommend(["i1", "i2"], k=10) == expected
    assert (artifact / f"{MATRIX}.sha256").read_text() == _digest(matrix)


def test_corrupt_or_truncated_weights_are_refused(artifact):
    weights = artifact / "model.safetensors"
    blob = weights.read_bytes()
    weights.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ArtifactError, match="checksum"):
        map_artifact(artifact)
    flipped = bytearray(blob)
    flipped[-10] ^= 0xFF
    weights.write_bytes(bytes(flipped))
    with pytest.raises(ArtifactError, match="checksum"):
        map_artifact(artifact)
    meta = json.loads((artifact / "metadata.json").read_text())
    (artifact / "metadata.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(ArtifactError, match="format_version"):
        map_artifact(artifact)


def test_a_new_item_is_written_to_spare_rows_and_the_model_tables_are_never_copied(artifact):
    mapped = map_artifact(artifact)
    state = mapped._state
    weights, matrix = artifact / "model.safetensors", artifact / MATRIX
    before = _written_kb(weights), _written_kb(matrix)
    vectors = content_vectors(seed=7)
    mapped.add_items({f"new{n}": vectors[f"i{n}"] for n in range(20)})
    after = mapped._state
    assert after.model is state.model and after.room is state.room  # nothing grown, nothing copied
    assert _inside(after.matrix, _mapped_ranges(matrix))
    assert _written_kb(weights) == before[0]  # the trained tables are untouched
    # 20 rows of 32 floats (2.5 kB) land in the spare rows: one or two pages, not the matrix
    assert _written_kb(matrix) - before[1] <= 8
    assert {r.item_id for r in mapped.recommend(["i1", "i2"], k=3, allowed=["new3", "new4", "new5"])} == {
        "new3",
        "new4",
        "new5",
    }


def test_added_items_score_as_they_would_inside_the_model_tables(artifact):
    """Added rows come from the items' own tables; the same items grown into the model score the same."""
    mapped = map_artifact(artifact)
    vectors = content_vectors(seed=7)
    mapped.add_items({"copy_of_i5": content_vectors()["i5"], "other": vectors["i3"]})
    assert mapped.similar("i5", k=1)[0].item_id == "copy_of_i5"  # same text: it takes i5's ID (a twin)
    mapped.add_items({"i1": vectors["i2"], "other": vectors["i4"]})  # a trained item's new text, then
    mapped.add_items({"copy_of_i1": vectors["i2"]})  # a new twin of it: every untrained row again
    whole = Recommender(mapped.model, mapped.item_ids)  # the tables grown to hold every item
    assert mapped.model.config.n_items == len(mapped.item_ids) + 1
    histories = [["i1", "i2", "copy_of_i5"], ["other", "i7"], ["i3"]]
    assert torch.allclose(mapped.scores(histories), whole.scores(histories), atol=1e-5)
    assert torch.allclose(mapped._state.matrix, whole._state.matrix, atol=1e-5)
    for item in ("other", "copy_of_i1", "i1"):
        assert [r.item_id for r in mapped.similar(item, k=5)] == [r.item_id for r in whole.similar(item, k=5)]


def test_a_model_with_added_items_saves_them_and_loads_the_same(artifact, tmp_path):
    mapped = map_artifact(artifact)
    mapped.add_items({"brand-new": content_vectors(seed=7)["i3"]})
    save_artifact(mapped, tmp_path / "again")
    again = map_artifact(tmp_path / "again")
    assert again.item_ids == mapped.item_ids
    history = ["i1", "brand-new"]
    assert torch.allclose(again.scores([history]), mapped.scores([history]), atol=1e-5)
