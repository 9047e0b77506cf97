"""Service-test fixtures: a tiny model trained once per session on topic-structured users.

Test modules opt in with ``pytestmark = pytest.mark.usefixtures("serving_settings")``:
an empty cache, artifact storage in a temporary folder, a model store that checks
for a new version on every call, neutral blend weights. ``session`` adds the
catalogue the model knows (fixed item ids) and that model, stored and active.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import torch

from recommender.caching import cache
from recommender.ml.data import UserSequence
from recommender.ml.inference import Recommender
from recommender.ml.trainer import TrainConfig, train
from recommender.models import ModelVersion
from recommender.serving import candidates, model_store
from recommender.training.artifacts import store_artifact
from tests.serving import factories
from tests.serving.factories import Session

TEST_SETTINGS = {
    "PLACEMENTS": ["default", "home", "article", "tag"],
    "MODEL_CHECK_INTERVAL": 0,
    "TUNING_CACHE_SECONDS": 0,
    "FRESHNESS_WEIGHT": 0.0,
    "POPULARITY_WEIGHT": 0.0,
    "DIVERSITY_LAMBDA": 1.0,
    "MAX_PER_TAG": 0,
}


def _train(seed: int) -> Recommender:
    """~2 s on one CPU thread: 60 users, each reading within one of three topics."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(seed)
    ids = factories.catalogue_ids()
    content = {str(pk): factories.topic_vector(topic) for topic, pks in ids.items() for pk in pks}
    tags = {str(pk): [topic] for topic, pks in ids.items() for pk in pks}
    sequences = {}
    for user in range(60):
        topic = factories.TOPICS[user % len(factories.TOPICS)]
        items = [str(i) for i in rng.choice(ids[topic], size=10)]
        sequences[f"u{user}"] = UserSequence(items, ["view"] * 10, [float(t) for t in range(10)])
    config = TrainConfig(
        d_model=32, n_heads=2, n_layers=1, max_len=20, list_len=3, batch_size=32, epochs=12,
        max_minutes=0.1, patience=100, warmup=10, device="cpu", bf16=False, threads=1, seed=seed,
    )  # fmt: skip
    return train(
        sequences, config, content=content, tags=tags, embedder_name=factories.EMBEDDER_NAME
    ).recommender


@pytest.fixture(scope="session")
def trained_models() -> tuple[Recommender, Recommender]:
    """Two independently trained versions (for the swap test)."""
    return _train(0), _train(1)


@pytest.fixture
def serving_settings(settings, tmp_path, monkeypatch):
    """Fresh cache, artifact storage in tmp, immediate model checks, neutral blend weights."""
    settings.RECOMMENDER = {**TEST_SETTINGS}
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)},
    }}  # fmt: skip
    monkeypatch.setattr(candidates, "content_index", candidates.ContentIndex())
    cache().clear()
    model_store.invalidate()
    yield
    cache().clear()
    model_store.invalidate()


def activate_model(recommender: Recommender, name: str = "") -> ModelVersion:
    """Store a recommender as a new succeeded version and make it the active one."""
    name = name or f"test-{uuid.uuid4().hex[:8]}"
    artifact_name, checksum = store_artifact(name, recommender)
    ModelVersion.objects.filter(is_active=True).update(is_active=False)
    version = ModelVersion.objects.create(
        name=name, status=ModelVersion.Status.SUCCEEDED, artifact_name=artifact_name, checksum=checksum,
        is_active=True, metrics={"val_ndcg@10": 0.3},
    )  # fmt: skip
    model_store.invalidate()
    return version


@pytest.fixture
def session(db, trained_models, serving_settings) -> Session:
    """The trained catalogue in the database and the first model active."""
    items = factories.make_catalogue()
    return Session(items=items, version=activate_model(trained_models[0]))
