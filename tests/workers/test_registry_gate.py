"""The evaluation gate, manual activation and rollback of model versions."""

from __future__ import annotations

import pytest

from recommender.models import ModelVersion
from recommender.serving import model_store
from recommender.training import model_registry, runs
from recommender.training.model_registry import ModelRegistryError, passes_gate
from tests.workers.factories import make_items, seed_sessions

pytestmark = pytest.mark.django_db


@pytest.fixture
def trained() -> ModelVersion:
    """One trained, active version on a small catalogue."""
    seed_sessions(make_items(12), users=30, length=8)
    return runs.train_model()


def _version(ndcg: float | None, name: str = "v") -> ModelVersion:
    return ModelVersion(name=name, metrics={} if ndcg is None else {"val_ndcg@10": ndcg})


@pytest.mark.parametrize(
    ("candidate", "active", "tolerance", "ok"),
    [
        (0.30, None, 0.0, True),
        (0.30, 0.30, 0.0, True),
        (0.29, 0.30, 0.02, True),
        (0.27, 0.30, 0.02, False),
        (None, 0.30, 0.02, False),
        (0.10, None, 0.02, True),
    ],
)
def test_passes_gate(settings, candidate, active, tolerance, ok):
    settings.RECOMMENDER = {**settings.RECOMMENDER, "GATE_TOLERANCE": tolerance}
    current = None if active is None else _version(active, "active")
    verdict, reason = passes_gate(_version(candidate, "new"), current)
    assert verdict is ok
    assert reason


def test_a_worse_model_is_refused_and_can_still_be_activated_by_hand(
    trained, settings, django_capture_on_commit_callbacks
):
    settings.RECOMMENDER = {**settings.RECOMMENDER, "GATE_TOLERANCE": 0.0}
    ModelVersion.objects.filter(pk=trained.pk).update(metrics={**trained.metrics, "val_ndcg@10": 0.999})
    worse = runs.train_model()
    assert worse.status == ModelVersion.Status.SUCCEEDED
    assert not worse.is_active
    assert worse.gate_reason.startswith("refused: val NDCG@10")
    assert ModelVersion.objects.active().pk == trained.pk
    assert model_store.get_active().version.pk == trained.pk

    with django_capture_on_commit_callbacks(execute=True):  # serving learns of it only after the commit
        model_registry.activate(worse.name, by="editor")
    assert ModelVersion.objects.active().pk == worse.pk
    assert ModelVersion.objects.filter(is_active=True).count() == 1
    assert model_store.get_active().version.pk == worse.pk  # the cache key moved: serving swapped


def test_training_can_skip_the_gate_or_never_activate(trained, settings):
    settings.RECOMMENDER = {**settings.RECOMMENDER, "GATE_TOLERANCE": 0.0}
    ModelVersion.objects.filter(pk=trained.pk).update(metrics={"val_ndcg@10": 0.999})
    forced = runs.train_model(activate=True)
    assert forced.is_active and "without the gate" in forced.gate_reason
    kept_back = runs.train_model(activate=False)
    assert not kept_back.is_active and ModelVersion.objects.active().pk == forced.pk


def test_rollback_returns_to_the_previously_active_version(trained, django_capture_on_commit_callbacks):
    second = runs.train_model(activate=True)
    assert ModelVersion.objects.active().pk == second.pk
    with django_capture_on_commit_callbacks(execute=True):
        back = model_registry.rollback(by="editor")
    assert back.pk == trained.pk and back.is_active
    assert model_store.get_active().version.pk == trained.pk
    assert model_registry.rollback().pk == second.pk  # and forth again


def test_rollback_without_history_and_unservable_versions_are_refused(trained):
    with pytest.raises(ModelRegistryError, match="roll back"):
        model_registry.rollback()
    failed = ModelVersion.objects.create(name="failed", status=ModelVersion.Status.FAILED)
    with pytest.raises(ModelRegistryError, match="no successful artifact"):
        model_registry.activate(failed)
    broken = ModelVersion.objects.create(
        name="broken", status=ModelVersion.Status.SUCCEEDED, artifact_name="recommender/models/nowhere"
    )
    with pytest.raises(ModelRegistryError, match="missing"):
        model_registry.activate(broken.pk)
    with pytest.raises(ModelRegistryError, match="No model version"):
        model_registry.activate("no-such-version")
    assert ModelVersion.objects.active().pk == trained.pk


def test_gate_tolerance_edited_in_the_admin_applies(settings):
    from recommender.models import TuningSettings
    from recommender.tuning import invalidate_tuning

    settings.RECOMMENDER = {**settings.RECOMMENDER, "GATE_TOLERANCE": 0.0}
    assert passes_gate(_version(0.25, "new"), _version(0.30, "active"))[0] is False
    TuningSettings.objects.create(values={"GATE_TOLERANCE": 0.1})
    invalidate_tuning()
    assert passes_gate(_version(0.25, "new"), _version(0.30, "active"))[0] is True
