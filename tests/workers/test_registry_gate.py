"""The evaluation gate, manual activation and rollback of model versions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from recommender.ml import metrics
from recommender.models import Interaction, ModelVersion
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
    # Nothing happened since the active version trained: no shared events, so the labelled fallback.
    assert worse.gate_reason.startswith("refused: no events shared with")
    assert "validation NDCG@10" in worse.gate_reason and "on different data" in worse.gate_reason
    assert worse.gate_comparison == {}
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


def _read_on(items, visitors: list[str], at) -> None:
    """Each visitor reads the two items after their last one: events newer than any model's data."""
    rows = []
    for n, visitor in enumerate(visitors):
        last = Interaction.objects.filter(visitor_id=visitor).order_by("-timestamp").first().item
        start = items.index(last)
        for step in (1, 2):
            rows.append(
                Interaction(
                    event_id=f"new-{visitor}-{step}",
                    visitor_id=visitor,
                    item=items[(start + step) % len(items)],
                    event_type="view",
                    timestamp=at + timedelta(seconds=10 * n + step),
                )
            )
    Interaction.objects.bulk_create(rows)


def test_the_gate_scores_both_versions_on_the_same_newest_events(monkeypatch):
    items = make_items(12)
    seed_sessions(items, users=30, length=8)
    active = runs.train_model()
    assert active.is_active
    _read_on(items, [f"v0-{u}" for u in range(25)], timezone.now() - timedelta(hours=1))
    seed_sessions(items, users=5, length=4, seed=7, prefix="w")  # new readers: all their events are new

    calls = []
    real = metrics.evaluate

    def spy(rec, histories, targets, **kw):
        found = real(rec, histories, targets, **kw)
        calls.append(({u: list(h.items) for u, h in histories.items()}, dict(targets), found))
        return found

    monkeypatch.setattr(metrics, "evaluate", spy)  # a spy: the real evaluation runs
    candidate = runs.train_model()

    assert len(calls) == 2
    (rival_histories, rival_targets, rival_found), (cand_histories, cand_targets, cand_found) = calls
    assert rival_histories == cand_histories and rival_targets == cand_targets
    expected = {f"vv0-{u}" for u in range(25)} | {f"vw7-{u}" for u in range(5)}
    assert set(cand_targets) == expected  # readers with an event newer than the active version's data
    for user in expected:  # the target is each reader's newest event, the history everything before it
        newest = list(Interaction.objects.filter(visitor_id=user[1:]).order_by("timestamp", "pk"))
        assert cand_targets[user] == str(newest[-1].item_id)
        assert cand_histories[user] == [str(e.item_id) for e in newest[:-1]]
    shared = candidate.gate_comparison
    assert shared["active_version"] == active.name and shared["users"] == 30
    assert shared["active"]["ndcg@10"] == pytest.approx(rival_found["ndcg@10"])
    assert shared["candidate"]["ndcg@10"] == pytest.approx(cand_found["ndcg@10"])
    assert "on the same 30 readers' newest events" in candidate.gate_reason


def _compared(validation: float, on_shared: float, active_on_shared: float, users: int = 40) -> ModelVersion:
    version = _version(validation, "new")
    version.gate_comparison = {
        "active_version": "active",
        "users": users,
        "candidate": {"ndcg@10": on_shared, "hr@10": 0.0},
        "active": {"ndcg@10": active_on_shared, "hr@10": 0.0},
    }
    return version


def test_a_candidate_worse_on_the_shared_events_is_refused_despite_a_higher_validation_figure(settings):
    settings.RECOMMENDER = {**settings.RECOMMENDER, "GATE_TOLERANCE": 0.02}
    active = _version(0.20, "active")
    ok, reason = passes_gate(_compared(0.90, on_shared=0.25, active_on_shared=0.30), active)
    assert ok is False and reason.startswith("refused: NDCG@10 0.2500 vs 0.3000")
    assert passes_gate(_compared(0.10, on_shared=0.29, active_on_shared=0.30), active)[0] is True


def test_too_few_shared_readers_fall_back_to_validation_and_say_so(settings):
    settings.RECOMMENDER = {**settings.RECOMMENDER, "GATE_TOLERANCE": 0.0, "GATE_MIN_USERS": 20}
    ok, reason = passes_gate(_compared(0.90, 0.1, 0.3, users=3), _version(0.20, "active"))
    assert ok is True and "only 3 readers" in reason and "on different data" in reason
    other = _compared(0.90, 0.1, 0.3)
    other.gate_comparison["active_version"] = "an-older-one"  # compared with a version no longer active
    assert "no events shared with active" in passes_gate(other, _version(0.20, "active"))[1]
