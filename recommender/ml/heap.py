"""glibc's heap in large training runs: big, short-lived tensors are mapped, not kept in the heap.

glibc serves an allocation below its mmap threshold from the heap, and raises that
threshold (up to 32 MiB) each time a larger mapped block is freed. A training step's
tensors change shape with every batch, so after a few steps most of them land in the
heap, fragment it, and the process keeps the pages. bench.speed's training run on 100k
items x 384 dims peaked at 3.3-3.6 GB RSS with glibc's default and at 1.9 GB with the
threshold fixed at 128 KiB. Mapping every block that large costs page faults: an ML-1M
epoch took 15 % longer (51.9 s -> 59.6 s), so only large catalogues pay it.
"""

from __future__ import annotations

import ctypes
import platform

M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)
LARGE_BLOCK = 128 * 1024  # glibc's own starting threshold, kept fixed instead of growing


def map_large_blocks() -> bool:
    """Fix this process's mmap threshold at LARGE_BLOCK; False where the C library is not glibc.

    Process-wide and for the rest of the process: glibc has no way back to the growing
    threshold, and a worker that trains a large catalogue once will do it again.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK))
