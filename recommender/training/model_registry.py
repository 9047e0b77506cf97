"""Which trained version is served: activation, rollback and the evaluation gate.

Exactly one version is active (a partial unique constraint enforces it). Switching
happens in one transaction, and only after it commits is ``model_activated`` sent
(``serving.model_store`` then changes the cache key every serving process checks),
so no process loads a version the database does not yet call active.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from recommender.conf import recommender_settings
from recommender.models import ModelVersion
from recommender.signals import model_activated
from recommender.training.artifacts import ARTIFACT_FILES, artifact_storage
from recommender.tuning import get_tuning

logger = logging.getLogger(__name__)


class ModelRegistryError(ValueError):
    """A version that cannot be activated, or nothing to roll back to."""


def get_version(version: ModelVersion | int | str) -> ModelVersion:
    """A version by instance, pk or name (raises ModelRegistryError when there is none)."""
    if isinstance(version, ModelVersion):
        return version
    lookup = {"pk": version} if isinstance(version, int) or str(version).isdigit() else {"name": version}
    try:
        return ModelVersion.objects.get(**lookup)
    except ModelVersion.DoesNotExist:
        raise ModelRegistryError(f"No model version {version!r}") from None


def activate(version: ModelVersion | int | str, *, by: Any = None) -> ModelVersion:
    """Serve ``version`` from now on (pk, name or instance); the previous one stays available for rollback."""
    version = get_version(version)
    if version.status != ModelVersion.Status.SUCCEEDED or not version.artifact_name:
        raise ModelRegistryError(f"Model version {version.name} has no successful artifact to serve")
    storage = artifact_storage()
    missing = [f for f in ARTIFACT_FILES if not storage.exists(f"{version.artifact_name}/{f}")]
    if missing:
        raise ModelRegistryError(f"Artifact of {version.name} is missing {', '.join(missing)}")
    if version.checksum and _stored_checksum(version) != version.checksum:
        raise ModelRegistryError(
            f"Artifact of {version.name} is corrupt or truncated: its weights do not match the checksum "
            "recorded at training time"
        )
    with transaction.atomic():
        ModelVersion.objects.select_for_update().filter(is_active=True).exclude(pk=version.pk).update(
            is_active=False
        )
        version.is_active = True
        version.activated_at = timezone.now()
        version.save(update_fields=["is_active", "activated_at"])
        transaction.on_commit(lambda: model_activated.send(sender=ModelVersion, version=version))
    logger.info("activated recommender model %s%s", version.name, f" by {by}" if by else "")
    return version


def _stored_checksum(version: ModelVersion) -> str:
    """sha256 of the stored weights, read in chunks (a refused activation beats serving garbage)."""
    digest = hashlib.sha256()
    with artifact_storage().open(f"{version.artifact_name}/model.safetensors", "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def rollback(*, by: Any = None) -> ModelVersion:
    """Go back to the most recently activated other version that still has its artifact."""
    active = ModelVersion.objects.active()
    previous = (
        ModelVersion.objects.filter(
            status=ModelVersion.Status.SUCCEEDED, activated_at__isnull=False, is_active=False
        )
        .exclude(artifact_name="")
        .order_by("-activated_at")
        .first()
    )
    if previous is None:
        raise ModelRegistryError("No previously activated model version to roll back to")
    logger.info("rolling back from %s to %s", active.name if active else "nothing", previous.name)
    return activate(previous, by=by)


def passes_gate(candidate: ModelVersion, active: ModelVersion | None) -> tuple[bool, str]:
    """Is ``candidate`` good enough to replace ``active``? NDCG@10 on the same events, with a tolerance.

    Both are scored on every reader's last event newer than the active version's
    data, which neither trained on (``candidate.gate_comparison``, written by the
    training run). Only without enough such readers (``GATE_MIN_USERS``) does it fall
    back to each version's own validation figure, measured on different data, and it says so.
    """
    tolerance = float(get_tuning().gate_tolerance)
    new = candidate.val_ndcg
    if new is None:
        return False, "the candidate has no validation NDCG@10"
    if active is None:
        return True, f"no active model; val NDCG@10 {new:.4f}"
    shared = candidate.gate_comparison or {}
    minimum = int(recommender_settings.GATE_MIN_USERS)
    if shared.get("active_version") == active.name and shared.get("users", 0) >= minimum:
        cand, old = shared["candidate"]["ndcg@10"], shared["active"]["ndcg@10"]
        verdict = (
            f"NDCG@10 {cand:.4f} vs {old:.4f} of {active.name} on the same {shared['users']} readers' "
            f"newest events (tolerance {tolerance:g})"
        )
        return (True, verdict) if cand >= old - tolerance else (False, f"refused: {verdict}")
    why = (
        f"only {shared.get('users', 0)} readers with events newer than {active.name}'s data "
        f"({minimum} needed to compare on them)"
        if shared.get("active_version") == active.name
        else f"no events shared with {active.name} to compare on"
    )
    old = active.val_ndcg
    if old is None:
        return True, f"{why}; the active model has no validation NDCG@10"
    verdict = f"{why}; validation NDCG@10 {new:.4f} vs {old:.4f}, on different data (tolerance {tolerance:g})"
    if new >= old - tolerance:
        return True, verdict
    return False, f"refused: {verdict}"


def gate_and_activate(candidate: ModelVersion) -> bool:
    """Activate a freshly trained version if it passes the gate; otherwise record why not."""
    ok, reason = passes_gate(candidate, ModelVersion.objects.active())
    candidate.gate_reason = reason
    candidate.save(update_fields=["gate_reason"])
    if ok:
        activate(candidate, by="evaluation gate")
    else:
        logger.warning("model %s not activated: %s", candidate.name, reason)
    return ok
