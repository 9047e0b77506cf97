"""Training in several processes (``torchrun``): who is who, the DDP-wrapped loss, and agreeing on values.

Every rank reads the same data and builds the same vocabulary and model, then
takes every ``world_size``-th batch of one shuffle that all ranks share (same
seed): the batches are sharded, not copied. ``DistributedDataParallel`` averages
the gradients in ``backward``, so all ranks hold the same weights after every
step; choices that end an epoch or the run (the time budget, validation, early
stopping) are made once and shared, so no rank waits for a step the others
never take. Rank 0 alone validates, reports progress and writes the artifact.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn


def init_from_env(device: torch.device) -> bool:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1); True when this is such a run.

    gloo on CPU, NCCL on GPUs (each rank on the GPU of its ``LOCAL_RANK``).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return True


def finish() -> None:
    """Leave the process group once every rank is done (rank 0 may still be writing the artifact)."""
    dist.barrier()
    dist.destroy_process_group()


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def local_device(device: torch.device) -> torch.device:
    """A CUDA run puts each rank on its own GPU."""
    if device.type == "cuda" and world()[1] > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


class LossModule(nn.Module):
    """The model's training loss as a ``forward``, the call DDP synchronises gradients around."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: Tensor, **kwargs: object) -> tuple[Tensor, Tensor | None]:
        return self.model.loss(*args, **kwargs)


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """The loss module, inside DDP when several ranks train.

    Buffers are not broadcast: every rank builds the same ones from the same data,
    and the content table of a large catalogue would cross the network every step.
    Some parameters get no gradient in a given step (a decoder step, tag
    embeddings), hence ``find_unused_parameters``.
    """
    module = LossModule(model)
    if world()[1] == 1:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(
        module, device_ids=ids, broadcast_buffers=False, find_unused_parameters=True
    )


def shard(batches: list, rank: int, size: int) -> list:
    """This rank's batches: every ``size``-th one, the same count on every rank (a remainder is dropped)."""
    usable = len(batches) - len(batches) % size
    return batches[rank:usable:size]


def share(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (pickled over the process group); the others pass anything."""
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when it is true on one (e.g. one rank ran out of time)."""
    if world()[1] == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def mean_over_ranks(total: float, count: int, device: torch.device) -> float:
    """The mean over all ranks of values whose sum here is ``total`` over ``count`` values."""
    if world()[1] == 1:
        return total / max(count, 1)
    value = torch.tensor([total, float(count)], dtype=torch.float64, device=device)
    dist.all_reduce(value)
    return float(value[0] / value[1].clamp(min=1.0))


def from_rank0(values: Mapping[str, float], keys: list[str], device: torch.device) -> dict[str, float]:
    """Rank 0's values of ``keys`` on every rank (missing keys are absent everywhere)."""
    if world()[1] == 1:
        return dict(values)
    data = torch.tensor(
        [[float(values[k]) if k in values else 0.0, 1.0 if k in values else 0.0] for k in keys],
        dtype=torch.float64,
        device=device,
    )
    dist.broadcast(data, src=0)
    return {k: float(data[n, 0]) for n, k in enumerate(keys) if data[n, 1] > 0}
