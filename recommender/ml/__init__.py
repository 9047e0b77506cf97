"""recommender.ml: the pure-PyTorch core (embedder, data, Seq2Seq model, trainer, inference, artifact).

No Django, DRF or Celery anywhere below this package, so a model can be trained and
checked from a plain script or `python -m recommender.ml`. Names are imported lazily:
`import recommender.ml.embedder` does not pay for importing torch's model code.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Event": "data",
    "UserSequence": "data",
    "Split": "data",
    "build_sequences": "data",
    "leave_one_out": "data",
    "time_split": "data",
    "Seq2SeqConfig": "model",
    "Seq2SeqRecommender": "model",
    "TrainConfig": "trainer",
    "TrainProgress": "trainer",
    "TrainResult": "trainer",
    "train": "trainer",
    "Recommendation": "inference",
    "Recommender": "inference",
    "ArtifactError": "artifact",
    "save_artifact": "artifact",
    "load_artifact": "artifact",
    "artifact_files": "artifact",
    "load_artifact_files": "artifact",
    "evaluate": "metrics",
    "popularity_baseline": "metrics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
