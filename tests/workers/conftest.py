"""Worker-test fixtures: artifacts in a tmp storage, a tiny training config, fresh cache and model store."""

from __future__ import annotations

import pytest
import torch

from recommender.caching import cache
from recommender.serving import model_store
from tests.factories import isolate_model_state
from tests.workers.factories import TINY_TRAIN_CONFIG

WORKER_SETTINGS = {
    "TRAIN_CONFIG": TINY_TRAIN_CONFIG,
    "REFRESH_CONFIG": {"epochs": 2},
    "MIN_INTERACTIONS_TO_TRAIN": 20,
    "MODEL_CHECK_INTERVAL": 0,
    "GATE_TOLERANCE": 0.02,
}


@pytest.fixture(autouse=True)
def worker_settings(settings, tmp_path):
    """Every test stores artifacts under its own tmp dir and starts with no cached model."""
    torch.set_num_threads(1)
    settings.RECOMMENDER = {**getattr(settings, "RECOMMENDER", {}), **WORKER_SETTINGS}
    isolate_model_state(settings, tmp_path)
    yield
    cache().clear()
    model_store.invalidate()
