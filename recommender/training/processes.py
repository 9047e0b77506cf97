"""A training run split over processes that ``torchrun`` started: rank 0 runs it, the others train beside it.

Rank 0 alone touches the database (lock, cursor, version, progress, artifact, gate).
Once it has read what it trains on, it sends the other ranks exactly that (sequences,
content vectors, tags, configuration), so every rank builds the same vocabulary and
model whatever was written in between; ``DistributedDataParallel`` then keeps their
weights equal (``recommender.ml.distributed``). When rank 0 gives up before sending
(another run holds the lock, too few events, an error), it sends nothing-to-do, and
the others return instead of waiting.

A worker on the ``train`` queue starts such a run with :func:`launch` when
``TRAIN_PROCESSES`` is above 1.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from typing import Any

logger = logging.getLogger(__name__)


class ProcessGroup:
    """This process's place in a ``torchrun`` training run."""

    def __init__(self, rank: int, size: int) -> None:
        self.rank, self.size = rank, size
        self.sent = False

    @classmethod
    def join(cls, device: str) -> ProcessGroup | None:
        """The group ``torchrun`` describes in the environment; None for a run in one process."""
        # torch (~1 s, ~180 MB): imported only by processes that train
        from recommender.ml import distributed
        from recommender.ml.trainer import resolve_device

        if not distributed.init_from_env(resolve_device(device)):
            return None
        return cls(*distributed.world())

    def send(self, inputs: dict[str, Any] | None) -> None:
        """Rank 0: the training inputs (``train``'s keyword arguments) for every other rank."""
        from recommender.ml import distributed

        distributed.share(inputs)
        self.sent = True

    def follow(self) -> None:
        """Another rank: train on what rank 0 sends, in step with it; write nothing."""
        from recommender.ml import distributed
        from recommender.ml.trainer import train

        inputs = distributed.share(None)
        if inputs is None:
            logger.info("rank %d: rank 0 did not train, nothing to do", self.rank)
            return
        train(**inputs)

    def close(self) -> None:
        """Rank 0 tells the others there is nothing to do if it never sent them inputs; all leave."""
        from recommender.ml import distributed

        if self.rank == 0 and not self.sent:
            self.send(None)
        distributed.finish()


def launch(processes: int, version_id: int, config: dict[str, Any] | None) -> None:
    """Run ``recommender_train`` for a queued version in ``processes`` processes under ``torchrun``.

    ``python -m django`` finds the project through ``DJANGO_SETTINGS_MODULE``, as this
    worker did. Raises ``CalledProcessError`` when the run fails; rank 0 has then
    marked the version failed (or the next run's ``fail_stale_runs`` will).
    """
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
        "-m", "django", "recommender_train", "--version-id", str(version_id), "--verbosity", "0",
    ]  # fmt: skip
    if config:
        command += ["--config", json.dumps(config)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), *sys.path]))}
    subprocess.run(command, check=True, env=env)
