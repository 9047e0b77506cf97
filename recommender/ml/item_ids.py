"""The catalogue's item ids, in the model's row order, with id -> row lookups, in compact arrays.

A Python list and dict of a million ids take ~145 MB in every serving process (string,
int and hash-table objects); as UTF-8 byte arrays (one in row order, one sorted for
binary search, and the rows of the sorted one) they take about 2 x length + 4 bytes an
id: 18 MB for 1M seven-character ids. Ids added at serving time stay in a small dict.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import overload

import numpy as np


class ItemIds(Sequence[str]):
    """Row r of the model's item tables is item ``ids[r - 1]`` (row 0 is padding); read-only."""

    def __init__(self, ids: Iterable[str]) -> None:
        listed = list(ids)
        encoded = [i.encode("utf-8") for i in listed]
        # numpy byte strings drop trailing NULs: an id ending in one would read back as another
        # id; such (rare) ids live in the dict instead, as added ones do.
        odd = {n for n, e in enumerate(encoded) if not e or e.endswith(b"\0")}
        width = max((len(e) for e in encoded), default=1) or 1
        self._ids = np.array([b"" if n in odd else e for n, e in enumerate(encoded)], dtype=f"S{width}")
        order = np.argsort(self._ids, kind="stable")
        self._sorted = self._ids[order]
        self._sorted_rows = (order + 1).astype(np.int64 if len(listed) >= 2**31 - 1 else np.int32)
        self._odd = {listed[n]: n + 1 for n in odd}
        self._base = len(listed)
        self._extra: list[str] = []
        self._extra_rows: dict[str, int] = {}
        if len(set(listed)) != len(listed):
            raise ValueError("item ids must be unique")

    def extended(self, new_ids: Sequence[str]) -> ItemIds:
        """A copy with new_ids appended (rows len(self) + 1 ...); the arrays are shared, not copied."""
        grown = object.__new__(ItemIds)
        grown.__dict__.update(self.__dict__)
        grown._extra = self._extra + list(new_ids)
        first = len(self) + 1
        grown._extra_rows = {**self._extra_rows, **{i: first + n for n, i in enumerate(new_ids)}}
        return grown

    # -- id -> row -------------------------------------------------------------------------------

    def row(self, item_id: str) -> int | None:
        """The row of item_id (1-based; None when unknown)."""
        found = int(self.rows([item_id])[0])
        return found or None

    def rows(self, item_ids: Sequence[str]) -> np.ndarray:
        """(n,) the row of each id, 0 for an unknown one: one binary search for the whole batch."""
        out = np.zeros(len(item_ids), dtype=np.int64)
        if not len(item_ids) or not self._base:
            return self._rows_apart(item_ids, out)
        width = self._sorted.dtype.itemsize
        encoded = [i.encode("utf-8") for i in item_ids]
        fits = np.fromiter((len(e) <= width and not e.endswith(b"\0") for e in encoded), bool, len(encoded))
        keys = np.array(
            [e if ok else b"" for e, ok in zip(encoded, fits, strict=True)], dtype=self._sorted.dtype
        )
        at = np.minimum(np.searchsorted(self._sorted, keys), self._base - 1)
        hit = fits & (self._sorted[at] == keys) & (keys != b"")
        out[hit] = self._sorted_rows[at[hit]]
        return self._rows_apart(item_ids, out)

    def _rows_apart(self, item_ids: Sequence[str], out: np.ndarray) -> np.ndarray:
        """Fill in the rows of ids kept in dicts: added at serving time, or ending in NUL."""
        if self._extra_rows or self._odd:
            for n in np.flatnonzero(out == 0):
                out[n] = self._extra_rows.get(item_ids[n]) or self._odd.get(item_ids[n], 0)
        return out

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and self.row(item_id) is not None

    # -- row order -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._base + len(self._extra)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[n] for n in range(*index.indices(len(self)))]
        n = index + len(self) if index < 0 else index
        if not 0 <= n < len(self):
            raise IndexError("item index out of range")
        if n >= self._base:
            return self._extra[n - self._base]
        raw = self._ids[n]
        return raw.decode("utf-8") if raw else self._odd_id(n + 1)

    def _odd_id(self, row: int) -> str:
        return next(i for i, r in self._odd.items() if r == row)

    def __iter__(self) -> Iterator[str]:
        for n in range(self._base):
            raw = self._ids[n]
            yield raw.decode("utf-8") if raw else self._odd_id(n + 1)
        yield from self._extra

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays (what a process holds for the trained ids)."""
        return self._ids.nbytes + self._sorted.nbytes + self._sorted_rows.nbytes
