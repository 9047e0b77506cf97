"""What the worker commands print: progress bars (tqdm on stderr) and summaries of finished runs."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.core.management.base import BaseCommand

if TYPE_CHECKING:
    from recommender.models import ModelVersion


@contextmanager
def counting_bar(label: str, *, unit: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A ``progress(done, total)`` callback that drives one bar, closed at the end of the block."""
    bar: Any = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            from tqdm import tqdm  # optional: only when a bar is shown (see _has_tqdm)

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
            from tqdm import tqdm  # optional: only when a bar is shown (see _has_tqdm)

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


def report(command: BaseCommand, version: ModelVersion | None) -> None:
    """Print a finished version's metrics and whether it serves now (recommender_train and _refresh)."""
    if version is None:
        command.stdout.write("Nothing new to train on.")
        return
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in sorted(version.metrics.items()))
    summary = version.data_summary
    command.stdout.write(
        f"{version.name}: {version.status} on {version.device} in {summary.get('seconds', 0):.1f}s, "
        f"{summary.get('epochs_run', 0)} epochs, {summary.get('users', 0)} users, "
        f"{summary.get('items', 0)} items"
    )
    command.stdout.write(f"  {metrics}")
    if version.is_active:
        command.stdout.write(command.style.SUCCESS(f"  activated ({version.gate_reason})"))
    else:
        command.stdout.write(
            command.style.WARNING(f"  not activated: {version.gate_reason or 'not requested'}")
        )
