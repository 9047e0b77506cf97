"""The demo's SQLite survives concurrent writers: WAL, a busy timeout and IMMEDIATE transactions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from recommender.checks import sqlite_write_warnings
from tests.demo.sqlite_writers import BATCHES, PER_BATCH, THREADS

ROOT = Path(__file__).resolve().parents[2]


def test_eight_threads_ingesting_at_once_lose_no_write(tmp_path) -> None:
    env = {**os.environ, "SQLITE_PATH": str(tmp_path / "db.sqlite3"), "DEMO_VAR_DIR": str(tmp_path / "var")}
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        env.pop(name, None)
    run = subprocess.run(
        [sys.executable, "-m", "tests.demo.sqlite_writers"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"stored {THREADS * BATCHES * PER_BATCH} errors 0" in run.stdout, run.stdout + run.stderr[-2000:]


@pytest.mark.parametrize(("options", "warned"), [({}, True), ({"transaction_mode": "IMMEDIATE"}, False)])
def test_sqlite_without_immediate_writes_is_a_warning(options, warned) -> None:
    databases = {
        "default": {"ENGINE": "django.db.backends.postgresql"},
        "local": {"ENGINE": "django.db.backends.sqlite3", "OPTIONS": options},
    }
    assert [m.id for m in sqlite_write_warnings(databases)] == (["recommender.W002"] if warned else [])
