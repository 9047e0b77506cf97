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


def report(command: BaseCommand, version: ModelVersion | None, *, wall_seconds: float | None = None) -> None:
    """Print a finished version's metrics and whether it serves now (recommender_train and _refresh).

    The validation NDCG@10 and the training time lead, on their own lines: they say
    whether the model is worth serving and what a run costs. ``wall_seconds`` adds the
    command's whole time (loading, evaluating and storing included).
    """
    if version is None:
        command.stdout.write("Nothing new to train on.")
        return
    summary, metrics = version.data_summary, version.metrics
    command.stdout.write(
        f"{version.name}: {version.status} on {version.device}, {summary.get('epochs_run', 0)} epochs, "
        f"{summary.get('users', 0)} users, {summary.get('items', 0)} items"
    )
    command.stdout.write(f"  {_validation_line(metrics)}")
    whole = f" ({wall_seconds:.1f}s for the whole command)" if wall_seconds is not None else ""
    command.stdout.write(f"  training time {summary.get('seconds', 0):.1f}s{whole}")
    command.stdout.write("  " + ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items())))
    if version.is_active:
        command.stdout.write(command.style.SUCCESS(f"  activated ({version.gate_reason})"))
    else:
        command.stdout.write(
            command.style.WARNING(f"  not activated: {version.gate_reason or 'not requested'}")
        )


def _validation_line(metrics: dict[str, float]) -> str:
    """NDCG@10 on the held-out last events, next to the popularity baseline it has to beat."""
    ndcg = metrics.get("val_ndcg@10")
    if ndcg is None:
        return "validation NDCG@10 - (no reader with three events or more to hold out)"
    line = f"validation NDCG@10 {ndcg:.4f}"
    if "best_epoch" in metrics:
        line += f" at epoch {metrics['best_epoch']:.0f}"
    if "val_pop_ndcg@10" in metrics:
        line += f" (popularity baseline {metrics['val_pop_ndcg@10']:.4f})"
    return line
