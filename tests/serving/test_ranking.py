"""MMR over a pool: the vectorised ``diversify`` picks exactly what the pairwise definition picks."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from recommender.serving.candidates import Candidate, ItemRow
from recommender.serving.ranking import Similarity, diversify


def _pairwise_mmr(tiers, rows, *, limit, diversity_lambda, max_per_tag, tag_relatedness):
    """The textbook loop: every remaining candidate against every picked item, one pair at a time."""
    similarity = Similarity(rows, tag_relatedness)
    picked, capped, seen, per_tag = [], [], set(), Counter()
    for tier in tiers:
        pool = [c for c in tier if c.item_id in rows and not (c.item_id in seen or seen.add(c.item_id))]
        while pool and len(picked) < limit:

            def mmr(c):
                closest = max((similarity(c.item_id, p.item_id) for p in picked), default=0.0)
                return diversity_lambda * c.final - (1 - diversity_lambda) * closest

            chosen = max(pool, key=mmr)
            pool.remove(chosen)
            tags = rows[chosen.item_id].tag_ids
            if max_per_tag > 0 and any(per_tag[t] >= max_per_tag for t in tags):
                capped.append(chosen)
                continue
            picked.append(chosen)
            per_tag.update(tags)
    return picked + capped[: max(0, limit - len(picked))]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("diversity_lambda", [1.0, 0.7, 0.3])
def test_vectorised_mmr_matches_the_pairwise_definition(seed, diversity_lambda):
    rng = np.random.default_rng(seed)
    rows = {}
    for pk in range(1, 121):
        kind = rng.random()
        vector = None
        if kind < 0.8:  # most items have a content vector; a few another model's, some none
            vector = rng.normal(size=8 if kind < 0.75 else 5).astype(np.float32)
            vector /= np.linalg.norm(vector)
        tags = tuple(sorted({int(t) for t in rng.integers(1, 7, size=rng.integers(0, 3))}))
        rows[pk] = ItemRow(pk, None, 0.0, vector, tags)
    relatedness = {(a, b): float(rng.random()) for a in range(1, 7) for b in range(1, 7) if a != b}
    tiers = [
        [
            Candidate(int(pk), 0.0, "personalized", final=float(rng.random()))
            for pk in rng.permutation(120)[:70] + 1
        ]
        for _ in range(2)
    ]
    tiers.append([Candidate(999, 0.0, "fresh", final=1.0)])  # not servable: no row
    kwargs = dict(
        limit=15, diversity_lambda=diversity_lambda, max_per_tag=2 + seed % 2, tag_relatedness=relatedness
    )
    expected = [c.item_id for c in _pairwise_mmr(tiers, rows, **kwargs)]
    assert [c.item_id for c in diversify(tiers, rows, **kwargs)] == expected
    assert len(expected) == 15 and 999 not in expected
