"""An approximate index over the item matrix, for catalogues where exact scoring is too slow.

Exact scoring is one matmul over every item: about 20 ms at 1M items on two cores
(bench.speed, section 2). Past a size (``Recommender.ann_min_items``) the Recommender
asks this index for a few hundred candidates instead, then rescores them exactly and
applies its filters to them, so only *which* items are considered is approximate.

Each group of items (those the model was trained on, and the content-only ones) gets
its own faiss IVF-Flat index under inner product: items are grouped around k-means
centroids and a query scans the `nprobe` groups whose centroids score best. Trained
items carry a learned ID vector on top of their content, which sets them apart from
the content-only crowd (in one shared index they were most of what it missed), and
within a group the new-item boost is one constant, so it needs no rebuild when it
changes. A group small enough to score exactly is not indexed. IVF builds in seconds
(a graph index such as HNSW took ~2 minutes per million items here) and keeps the
vectors uncompressed. faiss is optional (``pip install django-recommender[ann]``):
without it every catalogue is scored exactly, which this module says once in the log.

Given a folder, the indexes are written there once and memory-mapped from the files
(faiss IO_FLAG_MMAP) by every process that needs the same index, so the web processes
of a host share one copy (~260 MB at 1M items) instead of building one each.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

try:
    import faiss
except ImportError:  # optional: exact scoring serves every catalogue without it
    faiss = None

logger = logging.getLogger(__name__)

NPROBE = 64  # lists scanned per query and group (bench.speed --only ann: recall@10 against nprobe)
POINTS_PER_LIST = 64  # k-means trains on at most this many items per list (enough, and fast)
EXACT_GROUP = 20_000  # a group of at most this many items is scored exactly, not indexed
SAMPLE = 1024  # items whose exact scores estimate the probability mass of the items not retrieved
_warned = False


def available() -> bool:
    """Whether faiss can be imported; logs once when it cannot (the caller then scores exactly)."""
    global _warned
    if faiss is None and not _warned:
        _warned = True
        logger.warning("faiss is not installed: large catalogues are scored exactly (pip install faiss-cpu)")
    return faiss is not None


class ItemIndex:
    """IVF-Flat inner-product index over some rows of the item matrix; immutable once built."""

    def __init__(self, vectors: np.ndarray, rows: np.ndarray, *, nprobe: int = NPROBE, seed: int = 0) -> None:
        """vectors: (n, d) the rows' item vectors; rows: their columns in the scores."""
        n, d = vectors.shape
        self.size = n
        self.lists = max(1, min(int(2 * math.sqrt(n)), n // 39))  # faiss wants >= 39 training points a list
        self.quantizer = faiss.IndexFlatIP(d)  # the IVF index does not own it: kept alive with it
        self.index = faiss.IndexIVFFlat(self.quantizer, d, self.lists, faiss.METRIC_INNER_PRODUCT)
        self.index.cp.max_points_per_centroid = POINTS_PER_LIST
        self.index.cp.seed = seed
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.index.train(vectors)
        self.index.add_with_ids(vectors, rows.astype(np.int64))
        self.index.nprobe = min(nprobe, self.lists)
        self.nbytes = n * (d * 4 + 8) + self.lists * d * 4  # vectors + ids + centroids

    @classmethod
    def kept(cls, vectors: np.ndarray, rows: np.ndarray, path: Path, *, seed: int = 0) -> ItemIndex:
        """The index of `rows` mapped from `path`; built and written there first if it holds none."""
        try:
            return cls._mapped(path, len(rows), vectors.shape[1])
        except (OSError, RuntimeError, ValueError):
            pass  # not written yet, or unreadable: build it (again)
        built = cls(vectors, rows, seed=seed)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        os.close(fd)
        try:
            faiss.write_index(built.index, temporary)
            os.replace(temporary, path)
            return cls._mapped(path, len(rows), vectors.shape[1])
        except (OSError, RuntimeError, ValueError) as exc:
            Path(temporary).unlink(missing_ok=True)
            logger.warning("cannot keep the index in %s (%s): it stays in this process", path, exc)
            return built

    @classmethod
    def _mapped(cls, path: Path, size: int, dimension: int) -> ItemIndex:
        """An index read from `path` with its inverted lists memory-mapped, not copied."""
        if not path.is_file():
            raise OSError(f"no index at {path}")
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        if index.ntotal != size or index.d != dimension:
            raise ValueError(f"{path} indexes {index.ntotal} x {index.d}, not {size} x {dimension}")
        mapped = cls.__new__(cls)
        mapped.index, mapped.quantizer = index, None  # read_index's index owns its quantizer
        mapped.size, mapped.lists = size, index.nlist
        mapped.index.nprobe = min(NPROBE, mapped.lists)
        mapped.nbytes = 0  # page cache, shared
        return mapped

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        """(B, k) rows of the best-scoring items per query (0 where fewer than k were scanned)."""
        _, rows = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, self.size))
        return np.maximum(rows, 0)  # faiss's -1 (nothing found) becomes padding row 0


class CatalogueIndex:
    """Candidates for a whole catalogue: an index per large group of rows, the small groups exactly."""

    def __init__(
        self,
        matrix: np.ndarray,
        groups: Sequence[np.ndarray],
        *,
        seed: int = 0,
        directory: Path | None = None,
    ) -> None:
        """matrix: (n_items + 1, d), row 0 padding; groups: disjoint arrays of rows, covering 1..n_items.

        directory: where the indexes are kept as files, for every process indexing this same
        matrix and groups (the caller's promise: the folder belongs to one matrix).
        """
        self.rows = matrix.shape[0] - 1
        large = [g for g in groups if len(g) > EXACT_GROUP]
        if directory is None:
            self.parts = [ItemIndex(matrix[g], g, seed=seed) for g in large]
        else:
            self.parts = [
                ItemIndex.kept(matrix[g], g, directory / f"ann.v1-{n}-{len(g)}.faiss", seed=seed)
                for n, g in enumerate(large)
            ]
        small = [g for g in groups if 0 < len(g) <= EXACT_GROUP]
        self.exact = np.concatenate(small).astype(np.int64) if small else np.zeros(0, dtype=np.int64)
        self.sample = (
            np.random.default_rng(seed).choice(self.rows, size=min(SAMPLE, self.rows), replace=False) + 1
        )
        self.nbytes = sum(p.nbytes for p in self.parts)

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        """(B, k per index) candidate rows (0: none); the `exact` rows are the caller's to add."""
        if not self.parts:
            return np.zeros((len(queries), 0), dtype=np.int64)
        return np.concatenate([p.search(queries, k) for p in self.parts], axis=1)
