"""Ordering a pool of candidates: business blend, then a diverse, capped list.

``blend`` mixes the source score with freshness (exponential half-life) and
popularity (``trending_score``) by the tunable weights, plus editorial boosts and
buries. ``feedback_adjust`` moves items like the reader's liked and disliked ones.
``diversify`` is maximal marginal relevance over content embeddings
(tag relatedness from the tag graph where an item has no embedding) with at most
``MAX_PER_TAG`` items per tag.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

import numpy as np

from recommender.serving.candidates import Candidate, ItemRow
from recommender.serving.rules import EditorialPlan
from recommender.tuning import Tuning


def freshness(published_at: datetime | None, now: datetime, half_life_hours: float) -> float:
    """1 for an item published now, 0.5 after one half-life; 0 for an undated item."""
    if published_at is None or half_life_hours <= 0:
        return 0.0
    age_hours = max((now - published_at).total_seconds() / 3600.0, 0.0)
    return float(0.5 ** (age_hours / half_life_hours))


def blend(
    candidates: Sequence[Candidate],
    rows: Mapping[int, ItemRow],
    tuning: Tuning,
    plan: EditorialPlan,
    now: datetime,
) -> list[Candidate]:
    """Set ``final`` on every servable candidate and return them best first."""
    servable = [c for c in candidates if c.item_id in rows]
    top_trending = max((rows[c.item_id].trending_score for c in servable), default=0.0)
    for c in servable:
        row = rows[c.item_id]
        popularity = row.trending_score / top_trending if top_trending > 0 else 0.0
        c.final = (
            tuning.model_weight * c.score
            + tuning.freshness_weight * freshness(row.published_at, now, tuning.freshness_half_life_hours)
            + tuning.popularity_weight * popularity
            + plan.adjustment(row)
        )
    return sorted(servable, key=lambda c: (-c.final, c.item_id))


def feedback_adjust(
    ranked: Sequence[Candidate],
    rows: Mapping[int, ItemRow],
    liked: Sequence[np.ndarray],
    disliked: Sequence[np.ndarray],
    tuning: Tuning,
) -> list[Candidate]:
    """Move items like the reader's liked ones up and like the disliked ones down; best first again.

    ``final`` loses ``DISLIKE_PUSH`` times the sum of the item's content cosines to
    the disliked items and gains ``LIKE_PULL`` times the sum over the liked ones
    (negative cosines count as 0): three dislikes of one topic push it down further
    than one. Immediate, per reader, no retraining; items without a vector stay put.
    """
    for vectors, weight in ((disliked, -tuning.dislike_push), (liked, tuning.like_pull)):
        if not vectors or weight == 0:
            continue
        dim = Counter(v.shape[0] for v in vectors).most_common(1)[0][0]
        matrix = np.stack([v for v in vectors if v.shape[0] == dim])
        for c in ranked:
            vector = rows[c.item_id].vector
            if vector is not None and vector.shape[0] == dim:
                c.final += weight * float(np.maximum(matrix @ vector, 0.0).sum())
    return sorted(ranked, key=lambda c: (-c.final, c.item_id))


class Similarity:
    """Item-item similarity for MMR: cosine of content vectors, else tag relatedness."""

    def __init__(self, rows: Mapping[int, ItemRow], tag_relatedness: Mapping[tuple[int, int], float]) -> None:
        self.rows = rows
        self.tag_relatedness = tag_relatedness

    def __call__(self, a: int, b: int) -> float:
        ra, rb = self.rows[a], self.rows[b]
        if ra.vector is not None and rb.vector is not None and ra.vector.shape == rb.vector.shape:
            return float(np.dot(ra.vector, rb.vector))
        best = 0.0
        for ta in ra.tag_ids:
            for tb in rb.tag_ids:
                best = max(best, 1.0 if ta == tb else self.tag_relatedness.get((ta, tb), 0.0))
        return best


class PoolSimilarity:
    """Similarity of every item of a pool to one item: one matrix product for the pool's vectors.

    MMR asks "how close is each remaining candidate to what was just picked" once per
    pick; a Python loop over a 200-item pool per pick cost milliseconds per request.
    Items without a vector of the pool's dimension go through ``Similarity`` one by one.
    """

    def __init__(self, pool: Sequence[Candidate], similarity: Similarity) -> None:
        self.pool = pool
        self.similarity = similarity
        vectors = [similarity.rows[c.item_id].vector for c in pool]
        dims = Counter(v.shape[0] for v in vectors if v is not None)
        self.dim = dims.most_common(1)[0][0] if dims else 0
        with_vector = np.array([v is not None and v.shape[0] == self.dim for v in vectors], dtype=bool)
        self.vector_rows = np.flatnonzero(with_vector)
        self.other_rows = np.flatnonzero(~with_vector)
        self.matrix = (
            np.stack([vectors[i] for i in self.vector_rows]).astype(np.float32, copy=False)
            if len(self.vector_rows)
            else np.zeros((0, self.dim), dtype=np.float32)
        )

    def to(self, item_id: int) -> np.ndarray:
        """Similarity of each pool item (in pool order) to ``item_id``."""
        out = np.zeros(len(self.pool))
        vector = self.similarity.rows[item_id].vector
        others = self.other_rows
        if vector is not None and vector.shape[0] == self.dim:
            out[self.vector_rows] = self.matrix @ vector
        else:
            others = np.arange(len(self.pool))
        for i in others:
            out[i] = self.similarity(self.pool[i].item_id, item_id)
        return out


def diversify(
    tiers: Sequence[Sequence[Candidate]],
    rows: Mapping[int, ItemRow],
    *,
    limit: int,
    diversity_lambda: float,
    max_per_tag: int,
    tag_relatedness: Mapping[tuple[int, int], float] | None = None,
    uncapped_tags: Collection[int] = (),
) -> list[Candidate]:
    """Pick ``limit`` items tier by tier (a later tier only fills), by MMR, within the per-tag cap.

    MMR picks the candidate maximising ``λ·final - (1-λ)·max similarity to the picked``;
    λ = 1 is the blended order unchanged. A candidate whose tag already has
    ``max_per_tag`` items (0 = no cap) is put aside; when every tier is spent and the
    list is still short, the set-aside items fill it in the order they were reached:
    the cap spreads a list over topics, it must never make the list shorter.
    ``uncapped_tags`` (a related list's own item's tags) are exempt: a list of items
    like one article should stay on that article's topics.
    """
    similarity = Similarity(rows, tag_relatedness or {})
    picked: list[Candidate] = []
    seen: set[int] = set()
    per_tag: Counter[int] = Counter()
    capped: list[Candidate] = []
    for tier in tiers:
        pool = []
        for c in tier:
            if c.item_id in rows and c.item_id not in seen:
                seen.add(c.item_id)
                pool.append(c)
        if not pool or len(picked) >= limit:
            continue
        to_pool = PoolSimilarity(pool, similarity)
        # max similarity of each pool item to everything picked so far (0 before the first pick;
        # a cosine may be negative, so no floor after it), kept up to date
        closest = np.zeros(len(pool))
        for n, p in enumerate(picked):
            closest = to_pool.to(p.item_id) if n == 0 else np.maximum(closest, to_pool.to(p.item_id))
        relevance = diversity_lambda * np.array([c.final for c in pool])
        left = np.ones(len(pool), dtype=bool)
        while left.any() and len(picked) < limit:
            # Scores only move when an item is picked, so one sort serves every capped item
            # set aside before the next pick; stable, so equals keep the blended order.
            order = np.argsort(-(relevance - (1 - diversity_lambda) * closest), kind="stable")
            for best in order[left[order]]:
                left[best] = False
                chosen = pool[best]
                tags = [t for t in rows[chosen.item_id].tag_ids if t not in uncapped_tags]
                if max_per_tag > 0 and any(per_tag[t] >= max_per_tag for t in tags):
                    capped.append(chosen)
                    continue
                similar = to_pool.to(chosen.item_id)
                closest = similar if not picked else np.maximum(closest, similar)
                picked.append(chosen)
                per_tag.update(tags)
                break
    return picked + capped[: max(0, limit - len(picked))]
