"""Progress bars for the worker commands: tqdm on stderr (it comes with sentence-transformers), or nothing."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def counting_bar(label: str, *, unit: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A ``progress(done, total)`` callback that drives one bar, closed at the end of the block."""
    bar: Any = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=total, desc=label, unit=unit, file=sys.stderr, leave=False)
        bar.update(done - bar.n)

    try:
        yield update if enabled and _has_tqdm() else None
    finally:
        if bar is not None:
            bar.close()


@contextmanager
def epoch_bar(*, enabled: bool) -> Iterator[Callable[[Any], None] | None]:
    """A training-progress callback (``TrainProgress``) showing epoch, loss, NDCG@10 and ETA."""
    bar: Any = None

    def update(p: Any) -> None:
        nonlocal bar
        if bar is None:
            from tqdm import tqdm

            bar = tqdm(total=p.epochs, desc="training", unit="epoch", file=sys.stderr, leave=False)
        metric = f"{p.val_ndcg10:.4f}" if p.val_ndcg10 is not None else "-"
        bar.set_postfix_str(f"loss {p.loss:.4f} val_ndcg@10 {metric} eta {p.eta_seconds or 0:.0f}s")
        bar.update(p.epoch - bar.n)

    try:
        yield update if enabled and _has_tqdm() else None
    finally:
        if bar is not None:
            bar.close()


def _has_tqdm() -> bool:
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True
