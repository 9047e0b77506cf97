"""At most one training run at a time, across every worker and machine.

On PostgreSQL a session-level advisory lock (``pg_try_advisory_lock``) does it:
the server drops it when the holder's connection ends, so a worker killed with
SIGKILL never leaves it behind, and whoever takes it next knows that any version
still marked "running" lost its process. Other databases (SQLite for the demo)
have no such lock; there a run counts as alive while its version is "running"
and younger than the task's hard time limit, after which Celery would have
killed it anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from recommender.conf import recommender_settings
from recommender.models import ModelVersion

# Any constant 64-bit key, unique to this app: "rec_trai" in ASCII.
TRAINING_LOCK_KEY = 0x7265635F74726169


class TrainingBusy(RuntimeError):
    """Another training run holds the lock."""


@contextmanager
def training_lock() -> Iterator[None]:
    """Hold the training lock for the block, or raise :class:`TrainingBusy` at once (never waits)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [TRAINING_LOCK_KEY])
            (acquired,) = cursor.fetchone()
        if not acquired:
            raise TrainingBusy("another training run holds the PostgreSQL advisory lock")
        try:
            yield
        finally:
            _pg_unlock()
    else:
        _check_no_live_run()
        yield


def _pg_unlock() -> None:
    # When the connection was lost meanwhile, the server already released the lock.
    if connection.connection is None:
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [TRAINING_LOCK_KEY])
    except Exception:
        connection.close()


def _check_no_live_run() -> None:
    """The guard for databases without advisory locks: a young "running" version blocks."""
    alive_since = timezone.now() - timedelta(seconds=float(recommender_settings.TRAIN_TIME_LIMIT))
    with transaction.atomic():
        running = ModelVersion.objects.select_for_update().filter(
            status=ModelVersion.Status.RUNNING, started_at__gte=alive_since
        )
        if running.exists():
            raise TrainingBusy(f"training run {running.first()} is still running")
