"""Model artifacts in Django storage: the files of ``recommender.ml.artifact`` under one prefix per version.

Files are written under a fresh name and the ``ModelVersion`` only points at them
after every file is stored, so no version ever references a partial artifact.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages

from recommender.conf import recommender_settings

if TYPE_CHECKING:
    from recommender.ml.inference import Recommender
    from recommender.models import ModelVersion

ARTIFACT_FILES = ("model.safetensors", "metadata.json")


def artifact_storage() -> Storage:
    """The storage alias named by ``ARTIFACT_STORAGE`` (S3 works by configuring STORAGES)."""
    return storages[recommender_settings.ARTIFACT_STORAGE]


def store_artifact(name: str, recommender: Recommender) -> tuple[str, str]:
    """Write the artifact files under ``<prefix>/<name>/``; return (artifact_name, sha256 checksum)."""
    # torch (~1 s, ~180 MB): imported only by processes that train or serve
    from recommender.ml.artifact import artifact_files

    files = artifact_files(recommender)
    storage = artifact_storage()
    prefix = f"{recommender_settings.ARTIFACT_PREFIX.rstrip('/')}/{name}"
    for filename in ARTIFACT_FILES:
        saved = storage.save(f"{prefix}/{filename}", ContentFile(files[filename]))
        if saved != f"{prefix}/{filename}":  # storage renamed it: a leftover from a crashed run
            storage.delete(saved)
            raise FileExistsError(f"Artifact path {prefix}/{filename} already exists in storage")
    return prefix, hashlib.sha256(files["model.safetensors"]).hexdigest()


def load_stored_artifact(version: ModelVersion, *, device: str = "cpu") -> Recommender:
    """Read a version's files from storage and verify them (raises ArtifactError when corrupt)."""
    # torch (~1 s, ~180 MB): imported only by processes that train or serve
    from recommender.ml.artifact import ArtifactError, load_artifact_files

    if not version.artifact_name:
        raise ArtifactError(f"Model version {version.name} has no artifact")
    storage = artifact_storage()
    files = {}
    for filename in ARTIFACT_FILES:
        with storage.open(f"{version.artifact_name}/{filename}", "rb") as fh:
            files[filename] = fh.read()
    if version.checksum and hashlib.sha256(files["model.safetensors"]).hexdigest() != version.checksum:
        raise ArtifactError(
            f"Artifact of {version.name} does not match the checksum recorded at training time"
        )
    return load_artifact_files(files, device=device)


def delete_stored_artifact(artifact_name: str) -> None:
    """Remove a version's files (cleanup of inactive versions)."""
    storage = artifact_storage()
    for filename in ARTIFACT_FILES:
        path = f"{artifact_name}/{filename}"
        if storage.exists(path):
            storage.delete(path)
