"""Model registry admin: activate, roll back, train now (eager), and the progress the page polls."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from recommender.models import Interaction, ModelVersion
from recommender.training.artifacts import ARTIFACT_FILES
from tests.admin import factories
from tests.factories import worker_mode

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def isolated_storage(settings, tmp_path) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def ops() -> Client:
    client = Client()
    client.force_login(factories.user("ops", perms=("view_modelversion", "change_modelversion")))
    return client


def stored_version(name: str, **fields) -> ModelVersion:
    """A succeeded version whose artifact files exist in storage (contents are not read here)."""
    for filename in ARTIFACT_FILES:
        storages["default"].save(f"models/{name}/{filename}", ContentFile(b"x"))
    return ModelVersion.objects.create(
        name=name, status="succeeded", artifact_name=f"models/{name}", metrics={"val_ndcg@10": 0.1}, **fields
    )


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_activate_then_roll_back(ops: Client) -> None:
    first = stored_version("v1", is_active=True, activated_at=timezone.now() - timedelta(hours=1))
    second = stored_version("v2")
    page = ops.get(reverse("admin:recommender_modelversion_change", args=[second.pk])).content.decode()
    assert 'id="rec-activate"' in page
    response = ops.post(reverse("admin:recommender_modelversion_activate", args=[second.pk]), follow=True)
    assert "v2 is now the active model." in messages_of(response)
    assert ModelVersion.objects.active() == second
    response = ops.post(reverse("admin:recommender_modelversion_rollback"), follow=True)
    assert "Rolled back: v1 is active again." in messages_of(response)
    assert ModelVersion.objects.active() == first


def test_refusals_are_messages_not_errors(ops: Client) -> None:
    failed = ModelVersion.objects.create(name="broken", status="failed", error="boom")
    response = ops.post(reverse("admin:recommender_modelversion_activate", args=[failed.pk]), follow=True)
    assert response.status_code == 200
    assert any("Could not activate broken" in m for m in messages_of(response))
    response = ops.post(reverse("admin:recommender_modelversion_rollback"), follow=True)
    assert any("Could not roll back" in m for m in messages_of(response))
    assert ModelVersion.objects.active() is None


def test_progress_reports_running_jobs(ops: Client) -> None:
    ModelVersion.objects.create(
        name="running",
        status="running",
        progress={"epoch": 2, "epochs": 5, "loss": 3.2},
        started_at=timezone.now(),
    )
    stored_version("done", is_active=True)
    data = ops.get(reverse("admin:recommender_modelversion_progress")).json()
    assert data["active"] == "done"
    assert [(j["name"], j["status"], j["progress"]["epoch"]) for j in data["jobs"]] == [
        ("running", "running", 2)
    ]


def test_active_version_cannot_be_deleted(ops: Client) -> None:
    root = Client()
    root.force_login(factories.user("root", superuser=True))
    active = stored_version("live", is_active=True)
    assert root.get(reverse("admin:recommender_modelversion_delete", args=[active.pk])).status_code == 403


@pytest.mark.slow
def test_train_now_in_eager_mode_creates_and_activates_a_version(ops: Client, settings) -> None:
    settings.RECOMMENDER = {
        **settings.RECOMMENDER,
        "MIN_INTERACTIONS_TO_TRAIN": 10,
        "TRAIN_CONFIG": {
            "epochs": 1,
            "d_model": 16,
            "n_heads": 1,
            "n_layers": 1,
            "max_len": 10,
            "threads": 1,
        },
    }
    items = [factories.article_item(f"Story {n}") for n in range(6)]
    start = timezone.now() - timedelta(hours=5)
    for r in range(5):
        reader = factories.user(f"reader{r}", staff=False)
        for step in range(5):
            Interaction.objects.create(
                event_id=f"{r}-{step}", user=reader, item=items[(r + step) % 6], event_type="view",
                timestamp=start + timedelta(minutes=step),
            )  # fmt: skip
    response = ops.post(reverse("admin:recommender_modelversion_train"), follow=True)
    version = ModelVersion.objects.get()
    assert version.status == "succeeded" and version.is_active and version.history
    assert f"Training finished: {version.name} (now active)." in messages_of(response)


def test_train_now_with_too_little_data_says_why(ops: Client) -> None:
    response = ops.post(reverse("admin:recommender_modelversion_train"), follow=True)
    assert any(m.startswith("Training skipped:") and "needed to train" in m for m in messages_of(response))
    assert ModelVersion.objects.get().status == "failed"


def test_train_now_with_a_worker_queues_a_visible_version(ops: Client, monkeypatch) -> None:
    from celery.result import AsyncResult

    from recommender import tasks

    sent = []
    monkeypatch.setattr(tasks.train_model, "delay", lambda **kw: sent.append(kw) or AsyncResult("task-1"))
    with worker_mode():
        response = ops.post(reverse("admin:recommender_modelversion_train"), follow=True)
    version = ModelVersion.objects.get()
    assert version.status == "queued" and sent == [{"version_id": version.pk}]
    assert f"Training queued ({version.name}); progress shows below." in messages_of(response)
    jobs = ops.get(reverse("admin:recommender_modelversion_progress")).json()["jobs"]
    assert [j["name"] for j in jobs] == [version.name]


def test_train_now_with_the_broker_down_fails_the_queued_version(ops: Client, monkeypatch) -> None:
    from recommender import tasks

    def refuse(**kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.train_model, "delay", refuse)
    response = ops.post(reverse("admin:recommender_modelversion_train"), follow=True)
    assert any("broker unreachable" in m for m in messages_of(response))
    version = ModelVersion.objects.get()
    assert (version.status, version.error) == ("failed", "broker unreachable")


def test_the_registry_shows_what_the_gate_compared(ops: Client) -> None:
    """The list and the version page show both versions' scores on the same newest events."""
    shared = {
        "active_version": "old",
        "users": 42,
        "candidate": {"ndcg@10": 0.2125, "hr@10": 0.4},
        "active": {"ndcg@10": 0.1875, "hr@10": 0.35},
    }
    version = stored_version("new", gate_comparison=shared, gate_reason="NDCG@10 0.2125 vs 0.1875 …")
    stored_version("plain")
    listing = ops.get(reverse("admin:recommender_modelversion_changelist")).content.decode()
    assert "0.2125 / 0.1875" in listing
    page = ops.get(reverse("admin:recommender_modelversion_change", args=[version.pk])).content.decode()
    assert "NDCG@10 0.2125 vs 0.1875, HR@10 0.4000 vs 0.3500 (old), on the same 42 readers" in page
