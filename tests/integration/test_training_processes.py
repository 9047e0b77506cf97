"""The train task with TRAIN_PROCESSES=2: a worker hands the run to torchrun, two ranks train one version.

PostgreSQL only: the ranks are other processes, which must reach the test database.
"""

from __future__ import annotations

import pytest
from django.db import connection

from recommender import tasks
from recommender.models import ModelVersion
from recommender.training.artifacts import load_stored_artifact
from tests.factories import isolate_model_state
from tests.workers.factories import make_items, seed_sessions

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the ranks must reach the test database"),
]


@pytest.fixture
def shared_with_the_ranks(settings, tmp_path, monkeypatch):
    """The ranks see this test's database and artifact folder (through their environment)."""
    db = connection.settings_dict
    login = f"{db['USER']}:{db['PASSWORD']}" if db.get("PASSWORD") else db["USER"]
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    monkeypatch.setenv("DATABASE_URL", f"postgres://{login}@{host}/{db['NAME']}")
    monkeypatch.setenv("DEMO_VAR_DIR", str(tmp_path))  # the ranks' MEDIA_ROOT: tmp_path/media
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    isolate_model_state(settings, tmp_path / "media")
    settings.RECOMMENDER = {**settings.RECOMMENDER, "TRAIN_PROCESSES": 2, "MIN_INTERACTIONS_TO_TRAIN": 20}


def test_a_train_task_with_two_processes_trains_stores_and_activates_one_version(shared_with_the_ranks):
    items = make_items(12)
    seed_sessions(items, users=30, length=8)

    pk = tasks.train_model.delay({"epochs": 4}).get()

    version = ModelVersion.objects.get(pk=pk)
    assert version.status == ModelVersion.Status.SUCCEEDED and version.is_active
    assert version.data_summary["processes"] == 2
    assert ModelVersion.objects.count() == 1  # rank 1 created and stored nothing
    assert [h["epoch"] for h in version.history if not h.get("refit")] == [1, 2, 3, 4]
    rec = load_stored_artifact(version)
    assert len(rec.recommend([str(items[0].pk)], k=3)) == 3
