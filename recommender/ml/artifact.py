"""The on-disk model: model.safetensors + metadata.json, checked by SHA-256 on load.

safetensors holds only tensors (no pickle, nothing executes on load); metadata.json
holds what is needed to rebuild the model and map rows back to item ids. The two
travel together through Django storage as plain bytes (artifact_files).

A server maps them instead (map_artifact): the tensors are views of the file's pages in
the OS page cache, so every process of a host that maps the same file shares one copy
(a 1M-item table with 384-dim content, stored in half precision, is ~1.0 GB). The item
matrix the model derives from them is written beside them once and mapped the same way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from recommender.ml.inference import Recommender, spare_rows
from recommender.ml.model import Seq2SeqConfig, Seq2SeqRecommender

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
METADATA = "metadata.json"
# The served item matrix derived from the weights, then zero spare rows (inference.spare_rows) where a
# process writes the items it adds; the suffix changes when the code that derives it does.
MATRIX = "item_matrix.v2.f32"


class ArtifactError(Exception):
    """The artifact is corrupt, does not match its checksum, or has an unknown format version."""


def artifact_files(rec: Recommender) -> dict[str, bytes]:
    """The two files of an artifact as bytes, for any storage (filesystem, Django storage, S3)."""
    state = {k: v.detach().cpu().contiguous() for k, v in rec.model.state_dict().items()}
    weights = save_tensors(state)
    digest = hashlib.sha256(weights).hexdigest()
    metadata = {
        **rec.metadata,
        "format_version": FORMAT_VERSION,
        "config": asdict(rec.model.config),
        "item_ids": list(rec.item_ids),
        "event_types": rec.event_types,
        "tags": rec.tags,
        "sha256": digest,
    }
    return {WEIGHTS: weights, METADATA: json.dumps(metadata, indent=1).encode("utf-8")}


def save_artifact(rec: Recommender, directory: str | Path) -> str:
    """Write model.safetensors + metadata.json into directory; returns the weights' SHA-256."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = artifact_files(rec)
    for name, blob in files.items():
        (directory / name).write_bytes(blob)
    return json.loads(files[METADATA])["sha256"]


def load_artifact(directory: str | Path, *, device: str = "cpu") -> Recommender:
    """Load an artifact directory written by save_artifact; ArtifactError if anything is off."""
    directory = Path(directory)
    try:
        files = {name: (directory / name).read_bytes() for name in (WEIGHTS, METADATA)}
    except OSError as exc:
        raise ArtifactError(f"cannot read model artifact in {directory}: {exc}") from exc
    return load_artifact_files(files, device=device)


def load_artifact_files(files: Mapping[str, bytes], *, device: str = "cpu") -> Recommender:
    """Rebuild a Recommender from artifact bytes, verifying checksum, format and shapes."""
    missing = [name for name in (WEIGHTS, METADATA) if name not in files]
    if missing:
        raise ArtifactError(f"model artifact is missing {', '.join(missing)}")
    metadata = _metadata(files[METADATA])
    digest = _checked(hashlib.sha256(files[WEIGHTS]).hexdigest(), metadata)
    try:
        config = Seq2SeqConfig(**metadata["config"])
        state = load_tensors(files[WEIGHTS])
        model = Seq2SeqRecommender(config)
        model.load_state_dict(state, strict=True)
    except (KeyError, TypeError, RuntimeError, SafetensorError) as exc:
        raise ArtifactError(f"artifact weights do not match its metadata: {exc}") from exc
    return _recommender(model, metadata, digest, device=device)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, read in chunks (through the page cache, not into this process's memory)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def map_artifact(directory: str | Path, *, device: str = "cpu") -> Recommender:
    """Load an artifact directory with its tensors memory-mapped, not copied: N processes, one copy.

    The weights are checked against the metadata's SHA-256 first (ArtifactError if off).
    The model is built on the meta device and its tensors *are* the file's pages (a
    private mapping: a write, such as new content for a known item, copies that page for
    this process and never reaches the file). The item matrix is mapped from MATRIX
    beside the weights, computed and written there by the first process that needs it, and so
    is the approximate index over it (recommender.ml.ann) for large catalogues.
    On a GPU the tensors are copied to it, as load_artifact_files does.
    """
    directory = Path(directory)
    try:
        metadata = _metadata((directory / METADATA).read_bytes())
        digest = _checked(file_sha256(directory / WEIGHTS), metadata)
    except OSError as exc:
        raise ArtifactError(f"cannot read model artifact in {directory}: {exc}") from exc
    try:
        config = Seq2SeqConfig(**metadata["config"])
        with safe_open(directory / WEIGHTS, framework="pt") as weights:
            state = {name: weights.get_tensor(name) for name in weights.keys()}  # noqa: SIM118
        with torch.device("meta"):  # no memory: every tensor is replaced by a mapped one
            model = Seq2SeqRecommender(config)
        model.load_state_dict(state, strict=True, assign=True)
    except (KeyError, TypeError, RuntimeError, SafetensorError, OSError) as exc:
        raise ArtifactError(f"artifact weights do not match its metadata: {exc}") from exc
    matrix = mapped_item_matrix(directory, model) if torch.device(device).type == "cpu" else None
    index_dir = directory if matrix is not None else None
    return _recommender(model, metadata, digest, device=device, item_matrix=matrix, index_dir=index_dir)


def mapped_item_matrix(directory: Path, model: Seq2SeqRecommender) -> torch.Tensor:
    """(n_items + spare rows, d) the model's served item matrix, mapped from MATRIX (written if missing).

    The spare rows are zeros: items a process adds at serving time are written there, so
    only the pages they touch become its own (Recommender.add_items). Written atomically
    (a temporary file, then a rename) with its SHA-256 beside it; a file that does not
    match is computed again. Where the directory is read-only the matrix stays in this
    process's memory.
    """
    path, digest_path = directory / MATRIX, directory / f"{MATRIX}.sha256"
    n_rows = model.config.n_items
    shape = (n_rows + spare_rows(n_rows), model.config.d_model)
    try:
        if path.stat().st_size == shape[0] * shape[1] * 4 and digest_path.read_text() == file_sha256(path):
            return _map_floats(path, shape)
    except OSError:
        pass  # not written yet
    model.eval()
    with torch.no_grad():
        room = torch.zeros(shape)
        room[:n_rows] = model.item_matrix().float()
    try:
        blob = room.numpy().data.cast("B")  # the tensor's own bytes, not a copy
        _write_atomically(path, blob)
        _write_atomically(digest_path, hashlib.sha256(blob).hexdigest().encode())
    except OSError as exc:
        logger.warning("cannot write the item matrix to %s (%s): it stays in this process", path, exc)
        return room
    return _map_floats(path, shape)


def _map_floats(path: Path, shape: tuple[int, int]) -> torch.Tensor:
    """A private, copy-on-write float32 mapping of a file: shared pages until a row is written."""
    return torch.from_file(str(path), shared=False, size=shape[0] * shape[1], dtype=torch.float32).view(shape)


def _write_atomically(path: Path, blob: bytes | memoryview) -> None:
    """Write to a temporary file in the same directory, flush it to disk, rename it into place."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _metadata(raw: bytes) -> dict:
    """metadata.json parsed, with a format version this code reads."""
    try:
        metadata = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{METADATA} is not valid JSON: {exc}") from exc
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"unsupported artifact format_version {version!r} (this code reads {FORMAT_VERSION})"
        )
    return metadata


def _checked(digest: str, metadata: dict) -> str:
    """The weights' digest, if it is the one the metadata records."""
    if digest != metadata.get("sha256"):
        raise ArtifactError(
            f"checksum mismatch: {WEIGHTS} has sha256 {digest}, metadata says {metadata.get('sha256')}; "
            "the weights are corrupt or belong to another model"
        )
    return digest


def _recommender(
    model: Seq2SeqRecommender,
    metadata: dict,
    digest: str,
    *,
    device: str,
    item_matrix: torch.Tensor | None = None,
    index_dir: Path | None = None,
) -> Recommender:
    config = model.config
    if len(metadata["item_ids"]) + 1 != config.n_items:
        raise ArtifactError(
            f"metadata lists {len(metadata['item_ids'])} items but the item table has {config.n_items - 1}"
        )
    known = {"format_version", "config", "item_ids", "event_types", "tags", "sha256"}
    extra = {k: v for k, v in metadata.items() if k not in known}
    extra["sha256"] = digest
    return Recommender(
        model,
        metadata["item_ids"],
        event_types=metadata.get("event_types", ["view"]),
        tags=metadata.get("tags", []),
        metadata=extra,
        device=device,
        item_matrix=item_matrix,
        index_dir=index_dir,
    )
