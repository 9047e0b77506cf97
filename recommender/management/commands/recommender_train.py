"""``manage.py recommender_train``: a full training run in this process (the ``train_model`` task).

``--enqueue`` sends it to a worker instead. Under ``torchrun`` every process runs
it: rank 0 records and stores the run, the others train beside it
(``torchrun --nproc-per-node 4 -m django recommender_train``). The new version is activated only when it
passes the evaluation gate, unless ``--activate`` (alias ``--no-gate``) or ``--no-activate``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from recommender import tasks
from recommender.management.commands._output import epoch_bar, report
from recommender.training import runs


class Command(BaseCommand):
    help = "Train a new recommender model version from the stored interactions."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--epochs", type=int, help="Maximum epochs (default: TRAIN_CONFIG or the trainer's)"
        )
        parser.add_argument(
            "--max-minutes", type=float, help="Wall-clock budget; the best model so far is kept"
        )
        parser.add_argument("--device", help="cpu, cuda or auto (default: TRAIN_DEVICE)")
        gate = parser.add_mutually_exclusive_group()
        gate.add_argument(
            "--activate", "--no-gate", dest="activate", action="store_const", const=True,
            help="Activate the new version even if the evaluation gate would refuse it",
        )  # fmt: skip
        gate.add_argument("--no-activate", dest="activate", action="store_const", const=False,
                          help="Never activate it (activate later in the admin)")  # fmt: skip
        parser.add_argument(
            "--enqueue", action="store_true", help="Send the task to a Celery worker and return"
        )
        # How a worker hands a queued run to `torchrun` (TRAIN_PROCESSES > 1): not for people.
        parser.add_argument("--version-id", type=int, help=argparse.SUPPRESS)
        parser.add_argument("--config", type=json.loads, default=None, help=argparse.SUPPRESS)

    def handle(self, *args: Any, **options: Any) -> None:
        given = ("epochs", "max_minutes", "device")
        config = {**(options["config"] or {}), **{k: options[k] for k in given if options.get(k) is not None}}
        if options["enqueue"]:
            result = tasks.train_model.delay(config or None)
            self.stdout.write(f"Training task {result.id} sent to the '{tasks.train_model.queue}' queue.")
            return
        started = time.monotonic()
        with epoch_bar(enabled=options["verbosity"] > 0) as bar:
            try:
                version = runs.train_model(
                    config=config,
                    version=options["version_id"],
                    progress=bar or True,
                    activate=options["activate"],
                )
            except (runs.TrainingBusy, runs.NotEnoughData) as exc:
                raise CommandError(str(exc)) from exc
        if version is not None:  # None: a rank of a torchrun run other than 0, which stores nothing
            report(self, version, wall_seconds=time.monotonic() - started)
