"""Training data from the interactions table, read in one streamed pass in bounded memory.

Rows arrive in (timestamp, pk) order in chunks (a server-side cursor on
PostgreSQL) and fold straight into each identity's sequence: a run of one item
collapses as it comes, as ``ml.data.collapse_repeats`` does on a list, and a
sequence keeps at most twice the history length, since training reads only the
last ``history_length`` steps. Memory then grows with identities times history
length, not with the events: a table of billions of rows trains like one of
millions (``bench.speed --only loading`` measures it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from django.db.models import Q, QuerySet

from recommender.ml.data import Event, UserSequence
from recommender.models import Interaction, Profile
from recommender.tuning import get_tuning

CHUNK_ROWS = 20_000  # rows fetched per round trip of the streamed read


def usable_interactions(
    *, after_id: int | None = None, until_id: int | None = None, users: set[str] | None = None
) -> QuerySet:
    """Positive-weight interactions, without people who opted out of personalization.

    Deleted identities are simply absent (their rows are gone). ``after_id`` keeps
    only newer interactions, ``until_id`` only those up to a run's cursor; ``users``
    keeps only those identities (``u<id>``/``v<visitor>``).
    """
    weights = get_tuning().event_types
    rows = Interaction.objects.filter(event_type__in=[t for t, w in weights.items() if w > 0])
    opted_out = Profile.objects.filter(personalization_enabled=False)
    rows = rows.exclude(user_id__in=opted_out.filter(user__isnull=False).values("user_id"))
    rows = rows.exclude(
        Q(user__isnull=True) & Q(visitor_id__in=opted_out.filter(user__isnull=True).values("visitor_id"))
    )
    if after_id is not None:
        rows = rows.filter(pk__gt=after_id)
    if until_id is not None:
        rows = rows.filter(pk__lte=until_id)
    if users is not None:
        user_ids = [int(u[1:]) for u in users if u.startswith("u")]
        visitor_ids = [u[1:] for u in users if u.startswith("v")]
        rows = rows.filter(Q(user_id__in=user_ids) | Q(user__isnull=True, visitor_id__in=visitor_ids))
    return rows.order_by("timestamp", "pk")


def training_events(
    *, after_id: int | None = None, until_id: int | None = None, users: set[str] | None = None
) -> list[Event]:
    """The usable interactions as ``Event`` rows, all in memory: for small reads (a refresh's new events)."""
    fields = ("user_id", "visitor_id", "item_id", "event_type", "value", "timestamp")
    return [
        Event(user=_identity(user_id, visitor_id), item=str(item_id), timestamp=ts.timestamp(),
              event_type=event_type, value=value)
        for user_id, visitor_id, item_id, event_type, value, ts in usable_interactions(
            after_id=after_id, until_id=until_id, users=users
        ).values_list(*fields).iterator(chunk_size=CHUNK_ROWS)
    ]  # fmt: skip


@dataclass
class TrainingData:
    """Each identity's sequence, how many rows were read, and what the gate needs to know of them.

    ``known`` maps an identity to its last event (timestamp, item) with a primary key
    up to ``known_until``: the events an earlier version trained on.
    """

    sequences: dict[str, UserSequence]
    rows: int
    known: dict[str, tuple[float, str]] = field(default_factory=dict)


class _Fold:
    """One identity's collapsed steps so far, cut back to the last ``keep`` now and then."""

    __slots__ = ("items", "times", "types")

    def __init__(self) -> None:
        self.items: list[str] = []
        self.types: list[str] = []
        self.times: list[float] = []

    def add(self, item: str, event_type: str, at: float, weights: Mapping[str, float], keep: int) -> None:
        if self.items and self.items[-1] == item:  # the same item again: one step, its strongest type
            if weights.get(event_type, 1.0) > weights.get(self.types[-1], 1.0):
                self.types[-1] = event_type
            self.times[-1] = at
            return
        self.items.append(item)
        self.types.append(event_type)
        self.times.append(at)
        if len(self.items) > 2 * keep:
            del self.items[:-keep], self.types[:-keep], self.times[:-keep]

    def sequence(self, keep: int) -> UserSequence:
        return UserSequence(self.items[-keep:], self.types[-keep:], self.times[-keep:])


def load_training_data(
    *, until_id: int | None = None, users: set[str] | None = None, known_until: int | None = None
) -> TrainingData:
    """Every usable interaction up to ``until_id`` folded into sequences of ``history_length`` steps."""
    tuning = get_tuning()
    keep = max(1, int(tuning.history_length))
    weights = dict(tuning.event_types)
    folds: dict[tuple[int | None, str], _Fold] = {}
    names: dict[int, str] = {}  # one str per item id, shared by every sequence that holds it
    known: dict[tuple[int | None, str], tuple[float, str]] = {}
    rows = 0
    fields = ("pk", "user_id", "visitor_id", "item_id", "event_type", "timestamp")
    queryset = usable_interactions(until_id=until_id, users=users).values_list(*fields)
    for pk, user_id, visitor_id, item_id, event_type, ts in queryset.iterator(chunk_size=CHUNK_ROWS):
        rows += 1
        key = (user_id, "" if user_id is not None else visitor_id)
        item = names.get(item_id)
        if item is None:
            item = names[item_id] = str(item_id)
        at = ts.timestamp()
        fold = folds.get(key)
        if fold is None:
            fold = folds[key] = _Fold()
        fold.add(item, event_type, at, weights, keep)
        if known_until is not None and pk <= known_until:
            known[key] = (at, item)
    sequences = {}
    while folds:  # each fold is let go as its sequence is made: no moment holds both in full
        key, fold = folds.popitem()
        sequences[_identity(*key)] = fold.sequence(keep)
    return TrainingData(
        sequences=sequences, rows=rows, known={_identity(*key): value for key, value in known.items()}
    )


def _identity(user_id: int | None, visitor_id: str) -> str:
    return f"u{user_id}" if user_id is not None else f"v{visitor_id}"
