"""A real Celery worker against a real Redis broker and PostgreSQL (``integration`` tests of the workers).

Needs ``DATABASE_URL`` (PostgreSQL) and ``TEST_REDIS_URL``; CI's ``make test`` sets both.
Two kinds of worker: :func:`celery_worker` runs in a thread of this process (shares the
test database settings), :func:`worker_process` is a separate ``celery -A project worker``
that a test may kill with SIGKILL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from celery.contrib.testing import tasks as _ping_task  # noqa: F401  (registers celery.ping for start_worker)
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.db import connection, connections
from kombu import pools as kombu_pools

from project.celery import app
from recommender.caching import cache
from recommender.serving import model_store

ROOT = Path(__file__).resolve().parents[2]
QUEUES = ["default", "embed", "train"]
PROCESS_QUEUE = "recommender-test-process"  # only the subprocess worker reads it, not the thread


def _requirements() -> str | None:
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        return "worker integration tests need DATABASE_URL=postgres://... (PostgreSQL)"
    if not os.environ.get("TEST_REDIS_URL"):
        return "worker integration tests need TEST_REDIS_URL=redis://host:port/db (a real broker)"
    return None


@pytest.fixture(scope="module")
def real_broker() -> Iterator[str]:
    """Switch this process from eager mode to sending tasks through Redis, for one test module."""
    reason = _requirements()
    if reason:
        pytest.skip(reason)
    url = os.environ["TEST_REDIS_URL"]
    keys = ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CELERY_TASK_ALWAYS_EAGER")
    before = {key: app.conf.get(key) for key in keys}
    app.conf.update(CELERY_BROKER_URL=url, CELERY_RESULT_BACKEND=url, CELERY_TASK_ALWAYS_EAGER=False)
    _reset_connections()
    yield url
    app.conf.update(**before)
    _reset_connections()


def _reset_connections() -> None:
    """Drop pooled broker connections and the cached result backend so the new URLs take effect."""
    kombu_pools.reset()  # closes and forgets kombu's process-wide pools (keyed by broker URL)
    app._after_fork()  # Celery's own reset of its connection and producer pools
    app._backend_cache = None
    app._local.__dict__.pop("backend", None)


def _close_worker_db(**_: object) -> None:
    connections.close_all()  # in the worker thread: keeps no connection open past the test database


@pytest.fixture(scope="module")
def worker_thread(real_broker) -> Iterator[object]:
    """One worker thread per module (a second start_worker in one process misses ETA tasks)."""
    task_postrun.connect(_close_worker_db, weak=False)
    try:
        with start_worker(app, pool="solo", concurrency=1, queues=QUEUES, perform_ping_check=False,
                          shutdown_timeout=30) as worker:  # fmt: skip
            yield worker
    finally:
        task_postrun.disconnect(_close_worker_db)


@pytest.fixture
def broker(real_broker, settings, tmp_path) -> Iterator[str]:
    """Per test: an empty broker database, artifacts under tmp_path, fresh cache and model store."""
    import redis

    client = redis.Redis.from_url(real_broker)
    client.flushdb()
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    settings.RECOMMENDER = {**settings.RECOMMENDER, "MODEL_CHECK_INTERVAL": 0}
    cache().clear()
    model_store.invalidate()
    yield real_broker
    client.flushdb()
    client.close()
    cache().clear()
    model_store.invalidate()


@pytest.fixture
def celery_worker(worker_thread, broker) -> object:
    """The module's worker thread, consuming every recommender queue of the real broker."""
    return worker_thread


@pytest.fixture
def worker_process(broker, tmp_path) -> Iterator[Callable[[], subprocess.Popen]]:
    """Start ``celery -A project worker`` subprocesses on the test database, reading ``PROCESS_QUEUE``."""
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        db = connection.settings_dict
        login = f"{db['USER']}:{db['PASSWORD']}" if db.get("PASSWORD") else db["USER"]
        host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{login}@{host}/{db['NAME']}",
            "CELERY_BROKER_URL": broker,
            "CELERY_RESULT_BACKEND": broker,
            "DEMO_VAR_DIR": str(tmp_path),  # MEDIA_ROOT = tmp_path/media, like this process
            "PYTHONPATH": str(ROOT),
        }
        log = open(tmp_path / f"worker-{len(started)}.log", "wb")  # noqa: SIM115  (closed with the process)
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "project", "worker", "-P", "solo", "-Q", PROCESS_QUEUE,
             "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        proc.log_path = log.name  # type: ignore[attr-defined]
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)


# -- the browser tests (admin and tracking): one headless Chromium per module ----------------

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    executable = os.environ.get("PLAYWRIGHT_CHROMIUM_EXECUTABLE", "/usr/bin/chromium")
    if not Path(executable).exists():
        pytest.skip(f"no Chromium at {executable}; set PLAYWRIGHT_CHROMIUM_EXECUTABLE")
    # Playwright's sync API runs an event loop in this thread; the ORM calls in the test body are still sync.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
