"""The on-disk model: model.safetensors + metadata.json, checked by SHA-256 on load.

safetensors holds only tensors (no pickle, nothing executes on load); metadata.json
holds what is needed to rebuild the model and map rows back to item ids. The two
travel together through Django storage as plain bytes (artifact_files).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from recommender.ml.inference import Recommender
from recommender.ml.model import Seq2SeqConfig, Seq2SeqRecommender

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
METADATA = "metadata.json"


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
        "item_ids": rec.item_ids,
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
    try:
        metadata = json.loads(files[METADATA])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{METADATA} is not valid JSON: {exc}") from exc
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"unsupported artifact format_version {version!r} (this code reads {FORMAT_VERSION})"
        )
    digest = hashlib.sha256(files[WEIGHTS]).hexdigest()
    if digest != metadata.get("sha256"):
        raise ArtifactError(
            f"checksum mismatch: {WEIGHTS} has sha256 {digest}, metadata says {metadata.get('sha256')}; "
            "the weights are corrupt or belong to another model"
        )
    try:
        config = Seq2SeqConfig(**metadata["config"])
        state = load_tensors(files[WEIGHTS])
        model = Seq2SeqRecommender(config)
        model.load_state_dict(state, strict=True)
    except (KeyError, TypeError, RuntimeError, SafetensorError) as exc:
        raise ArtifactError(f"artifact weights do not match its metadata: {exc}") from exc
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
    )
