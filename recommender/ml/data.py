"""Interaction rows -> per-user training sequences, and the evaluation splits.

Everything downstream (trainer, metrics, CLI, the Django app) speaks in these
plain value objects with string ids, so the model never sees database keys.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Event:
    """One interaction row; ids are strings, timestamp in seconds (any monotonic unit works)."""

    user: str
    item: str
    timestamp: float
    event_type: str = "view"
    value: float | None = None


@dataclass
class UserSequence:
    """One user's history: chronological, consecutive duplicates collapsed, cut to the last max_len."""

    items: list[str]
    event_types: list[str] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Callers that only know the item order (public benchmarks) get neutral defaults.
        if not self.event_types:
            self.event_types = ["view"] * len(self.items)
        if not self.timestamps:
            self.timestamps = [float(i) for i in range(len(self.items))]

    def __len__(self) -> int:
        return len(self.items)

    def head(self, n: int) -> UserSequence:
        """The first n events (n may be negative, as in a slice)."""
        return UserSequence(self.items[:n], self.event_types[:n], self.timestamps[:n])

    def tail(self, max_len: int) -> UserSequence:
        """The last max_len events."""
        start = max(0, len(self.items) - max_len)
        return UserSequence(self.items[start:], self.event_types[start:], self.timestamps[start:])

    def appended(self, item: str, event_type: str = "view", timestamp: float | None = None) -> UserSequence:
        """A copy with one more event at the end (used to build test histories from train + valid)."""
        ts = timestamp if timestamp is not None else (self.timestamps[-1] + 1.0 if self.timestamps else 0.0)
        return UserSequence([*self.items, item], [*self.event_types, event_type], [*self.timestamps, ts])


@dataclass
class Split:
    """Training sequences plus one held-out target per user for validation and for test.

    Validation history = train[user]; test history = train[user] + valid[user]
    (see :func:`histories_for_test`), which is the leave-one-out protocol of the papers.
    """

    train: dict[str, UserSequence]
    valid: dict[str, str]
    test: dict[str, str]
    valid_events: dict[str, tuple[str, float]] = field(default_factory=dict)


def collapse_repeats(
    items: list[str], event_types: list[str], timestamps: list[float], weights: Mapping[str, float] | None
) -> UserSequence:
    """Merge runs of the same item into one event: the strongest event type, the last timestamp.

    A reload or a view followed by a purchase of the same item is one step of the
    sequence, not two; the stronger type says more about intent.
    """
    out = UserSequence([], [], [])
    for item, etype, ts in zip(items, event_types, timestamps, strict=True):
        if out.items and out.items[-1] == item:
            if weights is not None and weights.get(etype, 1.0) > weights.get(out.event_types[-1], 1.0):
                out.event_types[-1] = etype
            out.timestamps[-1] = ts
            continue
        out.items.append(item)
        out.event_types.append(etype)
        out.timestamps.append(ts)
    return out


def build_sequences(
    events: Iterable[Event],
    *,
    max_len: int | None = 200,
    event_weights: Mapping[str, float] | None = None,
    include_types: Collection[str] | None = None,
) -> dict[str, UserSequence]:
    """Group events by user into chronological sequences ready for training.

    Event types outside include_types, or with a weight <= 0, are dropped (e.g.
    impressions). Ties in timestamp keep input order, so exports that are already
    ordered stay ordered. max_len None keeps whole histories (the trainer cuts to its own).
    """
    include = set(include_types) if include_types is not None else None
    rows: dict[str, list[tuple[float, int, str, str]]] = defaultdict(list)
    for n, ev in enumerate(events):
        if include is not None and ev.event_type not in include:
            continue
        if event_weights is not None and event_weights.get(ev.event_type, 1.0) <= 0:
            continue
        rows[ev.user].append((float(ev.timestamp), n, ev.item, ev.event_type))
    sequences: dict[str, UserSequence] = {}
    for user, user_rows in rows.items():
        user_rows.sort()
        seq = collapse_repeats(
            [r[2] for r in user_rows], [r[3] for r in user_rows], [r[0] for r in user_rows], event_weights
        )
        sequences[user] = seq if max_len is None else seq.tail(max_len)
    return sequences


def leave_one_out(seqs: Mapping[str, UserSequence]) -> Split:
    """Last item -> test, second-to-last -> validation, the rest -> training.

    Users with fewer than 3 events keep everything in training (no target to spare).
    """
    train: dict[str, UserSequence] = {}
    valid: dict[str, str] = {}
    test: dict[str, str] = {}
    valid_events: dict[str, tuple[str, float]] = {}
    for user, seq in seqs.items():
        if len(seq) < 3:
            train[user] = seq
            continue
        train[user] = seq.head(-2)
        valid[user] = seq.items[-2]
        valid_events[user] = (seq.event_types[-2], seq.timestamps[-2])
        test[user] = seq.items[-1]
    return Split(train, valid, test, valid_events)


def time_split(seqs: Mapping[str, UserSequence], cutoff: float) -> Split:
    """Everything before cutoff trains; the first event at/after cutoff is the test target.

    The last event before the cutoff is the validation target, so early stopping
    never looks past the cutoff. Users with no event before the cutoff are left out.
    """
    train: dict[str, UserSequence] = {}
    valid: dict[str, str] = {}
    test: dict[str, str] = {}
    valid_events: dict[str, tuple[str, float]] = {}
    for user, seq in seqs.items():
        n_before = sum(1 for ts in seq.timestamps if ts < cutoff)
        if n_before == 0:
            continue
        before = seq.head(n_before)
        if n_before >= 2:
            train[user] = before.head(-1)
            valid[user] = before.items[-1]
            valid_events[user] = (before.event_types[-1], before.timestamps[-1])
        else:
            train[user] = before
        if n_before < len(seq):
            test[user] = seq.items[n_before]
    return Split(train, valid, test, valid_events)


def histories_for_test(split: Split) -> dict[str, UserSequence]:
    """The input sequence for each test target: training events plus the validation event."""
    out: dict[str, UserSequence] = {}
    for user in split.test:
        seq = split.train[user]
        if user in split.valid:
            etype, ts = split.valid_events.get(user, ("view", None))
            seq = seq.appended(split.valid[user], etype, ts)
        out[user] = seq
    return out


# Time gaps between consecutive events are bucketed on a log2 scale of seconds:
# bucket 0 = unknown/first event, then 1 + floor(log2(1 + gap)), capped.
GAP_BUCKETS = 32


def gap_buckets(timestamps: list[float]) -> list[int]:
    """Log-scale buckets of the time since the previous event (0 for the first)."""
    out = [0] * len(timestamps)
    for i in range(1, len(timestamps)):
        gap = max(0.0, timestamps[i] - timestamps[i - 1])
        out[i] = min(GAP_BUCKETS - 1, 1 + int(math.log2(1.0 + gap)))
    return out
