"""Model artifacts in Django storage: the files of ``recommender.ml.artifact`` under one prefix per version.

Files are written under a fresh name and the ``ModelVersion`` only points at them
after every file is stored, so no version ever references a partial artifact.

Serving copies a version's files once into a local cache (``ARTIFACT_CACHE_DIR``, one
folder per weights checksum) and memory-maps them from there, so the web processes of a
host share one copy of the model in the page cache instead of holding one each.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages

from recommender.conf import recommender_settings

if TYPE_CHECKING:
    from recommender.ml.inference import Recommender
    from recommender.models import ModelVersion

logger = logging.getLogger(__name__)

ARTIFACT_FILES = ("model.safetensors", "metadata.json")
CACHE_KEEP = 2  # cached versions kept per host: the served one and the one before (a rollback)
COPY_CHUNK = 16 * 1024 * 1024


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
    """A version's model, memory-mapped from the local cache (filled from storage on first use).

    Raises ArtifactError when the files are corrupt or do not match the checksum recorded at
    training time. A cached copy that no longer matches its checksum is fetched again.
    """
    # torch (~1 s, ~180 MB): imported only by processes that train or serve
    from recommender.ml.artifact import ArtifactError, map_artifact

    if not version.artifact_name:
        raise ArtifactError(f"Model version {version.name} has no artifact")
    storage = artifact_storage()
    with storage.open(f"{version.artifact_name}/metadata.json", "rb") as fh:
        metadata = fh.read()
    try:
        digest = str(json.loads(metadata)["sha256"])
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"metadata.json of {version.name} has no weights checksum: {exc}") from exc
    if version.checksum and digest != version.checksum:
        raise ArtifactError(
            f"Artifact of {version.name} does not match the checksum recorded at training time"
        )
    root = cache_root()
    # Named by the metadata's content, which holds the weights' checksum and the item ids:
    # two models with equal weights but other items (same seed, same data shape) stay apart.
    directory = root / hashlib.sha256(metadata).hexdigest()
    if directory.is_dir() and (directory / "metadata.json").read_bytes() != metadata:
        _discard(directory)  # not what its name says: a damaged copy
    if directory.is_dir():
        weights = f"{version.artifact_name}/model.safetensors"
        if storage.size(weights) != (directory / "model.safetensors").stat().st_size:
            # The stored file changed since it was cached (truncated, replaced): refuse it as a
            # fresh fetch would, rather than keep serving a copy storage no longer holds.
            raise ArtifactError(f"Artifact of {version.name} in storage is not the one its metadata names")
        try:
            recommender = map_artifact(directory, device=device)
        except ArtifactError as exc:
            logger.warning("cached artifact in %s is unusable (%s): fetching it again", directory, exc)
            _discard(directory)
        else:
            _used(directory)
            return recommender
    _fetch(version, metadata, digest, directory)
    recommender = map_artifact(directory, device=device)
    _used(directory)
    return recommender


def cache_root() -> Path:
    """The local folder of cached artifacts (``ARTIFACT_CACHE_DIR``, else one in the temp directory).

    It must be this user's and writable by nobody else: in a shared temp directory another
    local user could otherwise plant files that serving would map.
    """
    from recommender.ml.artifact import ArtifactError

    configured = recommender_settings.ARTIFACT_CACHE_DIR
    root = Path(configured) if configured else Path(tempfile.gettempdir()) / "django-recommender-artifacts"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = root.stat()
    if info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise ArtifactError(f"The artifact cache {root} must belong to this user and be writable by it alone")
    return root


def _fetch(version: ModelVersion, metadata: bytes, digest: str, directory: Path) -> None:
    """Copy the weights from storage into a staging folder, check them, rename it into place."""
    from recommender.ml.artifact import ArtifactError, file_sha256

    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    try:
        (staging / "metadata.json").write_bytes(metadata)
        with (
            artifact_storage().open(f"{version.artifact_name}/model.safetensors", "rb") as source,
            open(staging / "model.safetensors", "wb") as target,
        ):
            shutil.copyfileobj(source, target, COPY_CHUNK)
            target.flush()
            os.fsync(target.fileno())
        if file_sha256(staging / "model.safetensors") != digest:
            raise ArtifactError(f"Artifact of {version.name} does not match the checksum in its metadata")
        try:
            staging.rename(directory)
        except OSError:  # another process of this host put it there first: theirs is as good
            if not directory.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _discard(directory: Path) -> None:
    """Remove a cached folder (processes mapping its files keep them until they unmap them)."""
    trash = directory.with_name(f".trash-{directory.name}-{os.getpid()}")
    try:
        directory.rename(trash)
    except OSError:
        return  # another process discarded it first
    shutil.rmtree(trash, ignore_errors=True)


def _used(directory: Path) -> None:
    """Mark a cached folder as just loaded and drop all but the CACHE_KEEP most recently loaded."""
    try:
        os.utime(directory)
        folders = [p for p in directory.parent.iterdir() if p.is_dir() and not p.name.startswith(".")]
        folders.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for stale in folders[CACHE_KEEP:]:
        if stale != directory:
            _discard(stale)


def delete_stored_artifact(artifact_name: str) -> None:
    """Remove a version's files (cleanup of inactive versions)."""
    storage = artifact_storage()
    for filename in ARTIFACT_FILES:
        path = f"{artifact_name}/{filename}"
        if storage.exists(path):
            storage.delete(path)
