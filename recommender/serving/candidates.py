"""Where candidate items come from: the model, content similarity, co-occurrence, trending, fresh.

Every source returns ``Candidate`` objects with a score normalised to [0, 1] (so
sources can be pooled and blended) and the reason code the user will see. None of
them filters by state or rules; the pipeline does that once, on the pooled ids
(``load_rows`` returns only servable items).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from django.db.models import CharField, Count, Max, Q, Value
from django.db.models.functions import Cast, Coalesce, Concat
from django.utils import timezone

from recommender.caching import site_generation
from recommender.conf import recommender_settings
from recommender.models import Interaction, Item, ItemTag
from recommender.tuning import get_tuning

if TYPE_CHECKING:
    from recommender.serving.model_store import LoadedModel

logger = logging.getLogger(__name__)


@dataclass
class Candidate:
    """One item proposed for a list, with why it was proposed."""

    item_id: int
    score: float  # source score in [0, 1]
    reason: str  # personalized | similar_to_context | trending | fresh | editorial | fallback
    because: int | None = None  # the history (or context) item that led here
    because_tag: int | None = None  # else the tag whose reads led here (no single one did)
    fresh: bool = False  # else the model listed it for being new (its item-age logit did most)
    popular: bool = False  # else a typical reader's list holds it as high: nothing personal did
    final: float = 0.0  # after blending with freshness, popularity and editorial boosts


class HistoryEvent(NamedTuple):
    """One of the identity's recent events, as the pipeline reads it (one query, no instances)."""

    id: int
    item_id: int
    event_type: str
    timestamp: datetime


class ItemRow(NamedTuple):
    """What ranking needs about a servable item."""

    pk: int
    published_at: datetime | None
    trending_score: float
    vector: np.ndarray | None
    tag_ids: tuple[int, ...]


def normalise(values: Sequence[float]) -> list[float]:
    """Min-max to [0, 1] so scores from different sources are comparable; all equal -> 1."""
    if not values:
        return []
    low, high = min(values), max(values)
    if high - low < 1e-12:
        return [1.0] * len(values)
    return [(v - low) / (high - low) for v in values]


def _to_candidates(pairs: Sequence[tuple[int, float, int | None]], reason: str) -> list[Candidate]:
    scores = normalise([score for _, score, _ in pairs])
    return [
        Candidate(item_id=item_id, score=s, reason=reason, because=because)
        for (item_id, _, because), s in zip(pairs, scores, strict=True)
    ]


# -- the model ---------------------------------------------------------------


def positive_history(history: Sequence[HistoryEvent]) -> list[HistoryEvent]:
    """Chronological events that count as interest (weight > 0), as the model was trained on."""
    weights = get_tuning().event_types
    return [e for e in reversed(history) if weights.get(e.event_type, 0.0) > 0]


def model_candidates(
    loaded: LoadedModel,
    history: Sequence[HistoryEvent],
    *,
    k: int,
    exclude: Collection[int] = (),
    allow_seen: bool = False,
) -> list[Candidate]:
    """The model's next items for a history (newest first, as loaded), with what explains each.

    ``because`` is the history item whose removal lowers the item's share of the list
    most, else ``because_tag`` the tag whose items' removal does, else ``fresh`` when the
    item's age does most, else ``popular`` when a typical reader's list holds it as high
    (``Recommender.recommend``).
    """
    events = positive_history(history)
    if not events:
        return []
    groups: dict[str, list[str]] = {}
    for pk, row in load_rows({e.item_id for e in events}).items():
        for tag_id in row.tag_ids:
            groups.setdefault(str(tag_id), []).append(str(pk))
    recs = loaded.recommender.recommend(
        [str(e.item_id) for e in events],
        k=k,
        exclude={str(i) for i in exclude},
        allow_seen=allow_seen,
        event_types=[e.event_type for e in events],
        timestamps=[e.timestamp.timestamp() for e in events],
        groups=groups,
    )
    candidates = _to_candidates(
        [(int(r.item_id), r.score, int(r.explanation) if r.explanation else None) for r in recs],
        "personalized",
    )
    for c, r in zip(candidates, recs, strict=True):
        c.because_tag = int(r.group) if r.group else None
        c.fresh = r.fresh
        c.popular = r.popular
    return candidates


def model_similar(
    loaded: LoadedModel,
    item_id: int,
    *,
    k: int,
    exclude: Collection[int] = (),
    reason: str = "similar_to_context",
) -> list[Candidate]:
    """Items the model places near this one (learned co-occurrence + content)."""
    if str(item_id) not in loaded.recommender:
        return []
    recs = loaded.recommender.similar(str(item_id), k=k, exclude={str(i) for i in exclude} | {str(item_id)})
    return _to_candidates([(int(r.item_id), r.score, item_id) for r in recs], reason)


# -- content embeddings ------------------------------------------------------


class ContentIndex:
    """Unit vectors of every active embedded item, for similarity without a model.

    Built lazily, kept per process and rebuilt when the set of embedded active
    items changed (checked at most every MODEL_CHECK_INTERVAL seconds).
    """

    def __init__(self) -> None:
        # (ids, unit-vector matrix, id -> row), replaced as one reference so readers never mix builds
        self._data: tuple[np.ndarray, np.ndarray, dict[int, int]] = (
            np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32), {},
        )  # fmt: skip
        self._signature: tuple | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def refresh(self) -> None:
        if time.monotonic() - self._checked_at < float(recommender_settings.MODEL_CHECK_INTERVAL):
            return
        with self._lock:
            embedded = Item.objects.active().filter(embedding__isnull=False, embedding_dim__isnull=False)
            signature = tuple(
                embedded.aggregate(n=Count("pk"), last=Max("embedded_at"), top=Max("pk")).values()
            )
            if signature != self._signature:
                self._data = self._build(embedded)
                self._signature = signature
            self._checked_at = time.monotonic()

    @staticmethod
    def _build(embedded) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
        rows = list(embedded.values_list("pk", "embedding", "embedding_dim"))
        dims = Counter(dim for _, _, dim in rows)
        if not dims:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32), {}
        dim = dims.most_common(1)[0][0]  # one embedder at a time; stragglers wait for re-embedding
        rows = [(pk, bytes(raw)) for pk, raw, d in rows if d == dim]
        ids = np.array([pk for pk, _ in rows], dtype=np.int64)
        matrix = np.frombuffer(b"".join(raw for _, raw in rows), dtype="<f4").reshape(len(rows), dim)
        matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        return ids, matrix.astype(np.float32), {int(pk): i for i, pk in enumerate(ids)}

    def similar(
        self, seeds: Sequence[int], *, k: int, exclude: Collection[int] = ()
    ) -> list[tuple[int, float, int]]:
        """(item, cosine, closest seed) for the k items nearest to any seed."""
        self.refresh()
        ids, matrix, row_of = self._data
        seed_rows = [row_of[s] for s in seeds if s in row_of]
        if not seed_rows:
            return []
        sims = matrix @ matrix[seed_rows].T  # (items, seeds)
        best_seed = sims.argmax(axis=1)
        best = sims.max(axis=1)
        blocked = set(exclude) | set(seeds)
        wanted = min(len(best), k + len(blocked))  # enough rows to survive the exclusions
        top = np.argpartition(-best, wanted - 1)[:wanted] if wanted < len(best) else np.arange(len(best))
        out: list[tuple[int, float, int]] = []
        for row in top[np.argsort(-best[top], kind="stable")]:
            item_id = int(ids[row])
            if item_id in blocked:
                continue
            out.append((item_id, float(best[row]), int(ids[seed_rows[best_seed[row]]])))
            if len(out) >= k:
                break
        return out


content_index = ContentIndex()


def content_similar(
    seeds: Sequence[int], *, k: int, exclude: Collection[int] = (), reason: str = "similar_to_context"
) -> list[Candidate]:
    """Items whose text is closest to any of the seed items; ``because`` is the closest seed."""
    return _to_candidates(content_index.similar(seeds, k=k, exclude=exclude), reason)


# -- behaviour without a model -----------------------------------------------


def cooccurrence_candidates(
    item_id: int, *, k: int, exclude: Collection[int] = (), people: int = 200
) -> list[Candidate]:
    """Items the last ``people`` identities who engaged with this item also engaged with, by how many."""
    positive = [t for t, w in get_tuning().event_types.items() if w > 0]
    recent = list(
        Interaction.objects.filter(item_id=item_id, event_type__in=positive)
        .order_by("-timestamp")
        .values_list("user_id", "visitor_id")[: people * 3]
    )
    users = list(dict.fromkeys(u for u, _ in recent if u is not None))[:people]
    visitors = list(dict.fromkeys(v for u, v in recent if u is None and v))[:people]
    if not users and not visitors:
        return []
    counts = (
        Interaction.objects.filter(Q(user_id__in=users) | Q(user__isnull=True, visitor_id__in=visitors))
        .filter(event_type__in=positive)
        .exclude(item_id__in=[item_id, *exclude])
        .values("item_id")
        .annotate(n=Count(IDENTITY, distinct=True))
        .order_by("-n", "-item_id")[:k]
    )
    return _to_candidates(
        [(row["item_id"], float(row["n"]), item_id) for row in counts], "similar_to_context"
    )


# One key per reader: a user's events carry no visitor id, a visitor's no user.
IDENTITY = Concat(Coalesce(Cast("user_id", CharField()), Value("")), Value("|"), "visitor_id")


def _published(qs):
    return qs.filter(Q(published_at__isnull=True) | Q(published_at__lte=timezone.now()))


def trending_candidates(
    *, k: int, exclude: Collection[int] = (), window_hours: float | None = None
) -> list[Candidate]:
    """Most engaged-with items: the decayed ``trending_score``, or distinct readers in a window.

    With no window, the periodically computed ``trending_score`` is used (one indexed
    query); if it is not computed yet, or a window is asked for, the readers with a
    positive event on each item are counted, each once however often they came back.
    """
    if window_hours is None:
        rows = list(
            _published(Item.objects.active().filter(trending_score__gt=0))
            .exclude(pk__in=list(exclude))
            .order_by("-trending_score", "-pk")
            .values_list("pk", "trending_score")[:k]
        )
        if rows:
            return _to_candidates([(pk, score, None) for pk, score in rows], "trending")
        window_hours = get_tuning().trending_window_hours
    positive = [t for t, w in get_tuning().event_types.items() if w > 0]
    if not positive:
        return []
    rows = list(
        Interaction.objects.filter(timestamp__gte=timezone.now() - timedelta(hours=float(window_hours)))
        .filter(event_type__in=positive, item__is_active=True)
        .filter(Q(item__published_at__isnull=True) | Q(item__published_at__lte=timezone.now()))
        .exclude(item_id__in=list(exclude))
        .values("item_id")
        .annotate(total=Count(IDENTITY, distinct=True))
        .order_by("-total", "-item_id")
        .values_list("item_id", "total")[:k]
    )
    return _to_candidates([(pk, float(total), None) for pk, total in rows], "trending")


def fresh_candidates(*, k: int, exclude: Collection[int] = ()) -> list[Candidate]:
    """The newest published items, newest scoring highest."""
    rows = list(
        Item.objects.active()
        .filter(published_at__lte=timezone.now())  # one range on the index, not an OR of two
        .exclude(pk__in=list(exclude))
        .order_by("-published_at", "-pk")
        .values_list("pk", "published_at")[:k]
    )
    return _to_candidates([(pk, published.timestamp(), None) for pk, published in rows], "fresh")


# -- servable rows -------------------------------------------------------------


ROW_CACHE_SECONDS = 60.0  # bounds staleness after writes no signal or service reports (host bulk updates)
ROW_CACHE_SIZE = 20_000  # rows kept per process (~1.6 kB each with a 384-d vector)


class RowCache:
    """Ranking rows of recently served items, in this process, valid for one site generation.

    Reading ~200 rows and their tags back from the database was a quarter of an
    uncached recommendation. Anything that changes a row (an Item or ItemTag save,
    the trending and embedding jobs, tag review) moves the site generation, which
    empties this cache in every process; ``None`` remembers an id that is not active.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: OrderedDict[int, ItemRow | None] = OrderedDict()
        self.generation: int | None = None
        self.expires = 0.0

    def lookup(
        self, item_ids: Collection[int], generation: int
    ) -> tuple[dict[int, ItemRow | None], list[int]]:
        """(cached rows by id, ids to read) for this generation."""
        with self.lock:
            if generation != self.generation or time.monotonic() >= self.expires:
                self.rows.clear()
                self.generation, self.expires = generation, time.monotonic() + ROW_CACHE_SECONDS
            found, missing = {}, []
            for pk in item_ids:
                if pk in self.rows:
                    found[pk] = self.rows[pk]
                    self.rows.move_to_end(pk)
                else:
                    missing.append(pk)
            return found, missing

    def store(self, rows: dict[int, ItemRow | None], generation: int) -> None:
        with self.lock:
            if generation != self.generation:  # the generation moved while these were read
                return
            self.rows.update(rows)
            while len(self.rows) > ROW_CACHE_SIZE:
                self.rows.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.rows.clear()
            self.generation = None


row_cache = RowCache()


def load_rows(item_ids: Collection[int]) -> dict[int, ItemRow]:
    """Ranking data for the ids that are servable now: active and published (cached per generation)."""
    if not item_ids:
        return {}
    generation = site_generation()
    found, missing = row_cache.lookup(item_ids, generation)
    if missing:
        read = read_rows(missing)
        fetched = {pk: read.get(pk) for pk in missing}
        row_cache.store(fetched, generation)
        found.update(fetched)
    now = timezone.now()
    return {
        pk: row
        for pk, row in found.items()
        if row is not None and (row.published_at is None or row.published_at <= now)
    }


def read_rows(item_ids: Collection[int]) -> dict[int, ItemRow]:
    """Rows of the active items among ``item_ids``, published or scheduled (two queries)."""
    raw = (
        Item.objects.active()
        .filter(pk__in=list(item_ids))
        .values_list("pk", "published_at", "trending_score", "embedding", "embedding_dim")
    )
    tags: dict[int, list[int]] = {}
    for item_id, tag_id in ItemTag.objects.filter(
        item_id__in=list(item_ids), status=ItemTag.Status.ACCEPTED
    ).values_list("item_id", "tag_id"):
        tags.setdefault(item_id, []).append(tag_id)
    rows = {}
    for pk, published_at, trending, embedding, dim in raw:
        vector = None
        if embedding is not None and dim:
            vector = np.frombuffer(bytes(embedding), dtype="<f4")
            norm = float(np.linalg.norm(vector))
            vector = vector / norm if norm > 0 and vector.shape[0] == dim else None
        rows[pk] = ItemRow(pk, published_at, float(trending), vector, tuple(sorted(tags.get(pk, ()))))
    return rows
