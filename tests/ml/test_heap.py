"""Large catalogues train with glibc's mmap threshold fixed (recommender/ml/heap.py)."""

import platform
import subprocess
import sys

import pytest

from recommender.ml import heap
from recommender.ml.trainer import train

from .factories import planted_sequences, tiny_config


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_the_threshold_is_set_where_the_c_library_is_glibc():
    """In a child process: the setting is process-wide and would slow the rest of the suite."""
    code = "from recommender.ml import heap; raise SystemExit(0 if heap.map_large_blocks() is True else 1)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize(("full_softmax_max_items", "fixed"), [(10, True), (10_000, False)])
def test_only_a_catalogue_above_the_full_softmax_size_fixes_the_threshold(
    monkeypatch, full_softmax_max_items, fixed
):
    """The cost (page faults on every large block) is paid only where memory is the constraint."""
    calls = []
    monkeypatch.setattr(heap, "map_large_blocks", lambda: calls.append(1) or True)
    config = tiny_config(epochs=1, full_softmax_max_items=full_softmax_max_items)
    train(planted_sequences(n_users=40), config)
    assert bool(calls) is fixed
