"""Offline evaluation: full-ranking HR@K, NDCG@K, MRR and coverage, seen items excluded.

Full ranking (the target against every item, not 100 sampled negatives) is the
protocol of the papers we compare with; sampled figures are not comparable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from recommender.ml.data import UserSequence
from recommender.ml.inference import Recommender

BATCH = 256
SCORES_PER_BATCH = 32 * 1024 * 1024  # at most 128 MB of scores at once (a 1M-item catalogue: 32 users)


def _summarise(ranks: np.ndarray, top_items: set, n_items: int, ks: Sequence[int]) -> dict[str, float]:
    """Metrics from 0-based ranks (inf = target unknown or never ranked)."""
    out: dict[str, float] = {"users": float(len(ranks))}
    if len(ranks) == 0:
        return out
    finite = np.isfinite(ranks)
    gains = np.zeros_like(ranks)
    gains[finite] = 1.0 / np.log2(ranks[finite] + 2.0)
    rr = np.zeros_like(ranks)
    rr[finite] = 1.0 / (ranks[finite] + 1.0)
    for k in ks:
        hit = ranks < k
        out[f"hr@{k}"] = float(hit.mean())
        out[f"ndcg@{k}"] = float((gains * hit).mean())
    out["mrr"] = float(rr.mean())
    out[f"coverage@{max(ks)}"] = len(top_items) / max(1, n_items)
    return out


def evaluate(
    rec: Recommender,
    histories: Mapping[str, Sequence[str] | UserSequence],
    targets: Mapping[str, str],
    *,
    ks: Sequence[int] = (10,),
    at: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Rank each user's target against all items, the user's history excluded.

    at: when each user's target happened, the query time of a model that scores item
    age (default: now, as at serving).

    A user whose target or whole history is unknown to the model counts as a miss,
    so cold items and unknown users lower the score instead of vanishing from it.
    """
    users = [u for u in targets if u in histories]
    ranks = np.full(len(users), np.inf)
    top_items: set[int] = set()
    kmax = max(ks)
    live = []
    for n, user in enumerate(users):
        history = histories[user]
        items = history.items if isinstance(history, UserSequence) else history
        if rec.row(targets[user]) is not None and any(rec.row(i) is not None for i in items):
            live.append(n)
    # Batches of similar length: each is padded to its longest history, and on ML-1M
    # unsorted batches were half padding (validation took a third of a training epoch).
    live.sort(key=lambda n: len(histories[users[n]]))
    batch = max(1, min(BATCH, SCORES_PER_BATCH // max(1, len(rec.item_ids))))
    for start in range(0, len(live), batch):
        chunk = live[start : start + batch]
        clock = {} if at is None else {"at": [at[users[n]] for n in chunk]}  # other scorers take no clock
        logits = rec.scores([histories[users[n]] for n in chunk], **clock)
        rows = torch.tensor([rec.row(targets[users[n]]) for n in chunk], device=logits.device)
        target_scores = logits.gather(1, rows[:, None])
        found = (logits > target_scores).sum(1).float()
        found[torch.isinf(target_scores[:, 0])] = float("inf")  # the target was in the history
        ranks[chunk] = found.cpu().numpy()
        top = logits.topk(min(kmax, logits.size(1)), dim=1)
        # Short catalogues leave -inf (seen, padding) entries in a top-k: they were never recommended.
        top_items.update(top.indices[torch.isfinite(top.values)].tolist())
    return _summarise(ranks, top_items, len(rec.item_ids), ks)


def popularity_baseline(
    train: Mapping[str, UserSequence],
    histories: Mapping[str, Sequence[str] | UserSequence],
    targets: Mapping[str, str],
    *,
    ks: Sequence[int] = (10,),
) -> dict[str, float]:
    """Most-popular items in training, the user's history excluded: the floor any model must beat."""
    counts = Counter(i for s in train.values() for i in s.items)
    popular = [i for i, _ in counts.most_common()]
    sorted_counts = np.sort(np.array(list(counts.values()), dtype=np.int64))
    kmax = max(ks)
    users = [u for u in targets if u in histories]
    ranks = np.full(len(users), np.inf)
    top_items: set[str] = set()
    for n, user in enumerate(users):
        history = histories[user]
        seen = set(history.items if isinstance(history, UserSequence) else history)
        target = targets[user]
        top: list[str] = []
        for item in popular:
            if len(top) == kmax:
                break
            if item not in seen:
                top.append(item)
        top_items.update(top)
        if target in seen:
            continue
        c = counts.get(target, 0)
        greater = len(sorted_counts) - np.searchsorted(sorted_counts, c, side="right")
        greater -= sum(1 for i in seen if counts.get(i, 0) > c)
        ranks[n] = float(greater)
    return _summarise(ranks, top_items, len(counts), ks)
