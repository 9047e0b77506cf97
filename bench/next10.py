"""The list task of ``bench.quality --task next10``: does the decoder write better lists?

Each user's last 10 items are held out; the model trains on the rest (the
production path: holdout of the last training item, then a refit on all of it)
and writes one 10-item list per user. Each list is scored against that user's
held-out set: list NDCG@10 with all ten relevant, Recall@10, intra-list
diversity (1 - mean pairwise cosine of the items' content vectors) and
catalogue coverage. Rows: the first decoder step's independent top-10, the
decoder generating the list greedily, and the first step's top-50 re-ranked by
MMR (the serving default, lambda 0.8, on content cosine).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from recommender.ml.data import UserSequence
from recommender.ml.inference import Recommender

HELD_OUT = 10
MMR_POOL = 50
MMR_LAMBDA = 0.8


def split_last(sequences: Mapping[str, UserSequence], n: int = HELD_OUT) -> tuple[dict, dict]:
    """(training sequences, held-out sets): users with at least n + 3 events lose their last n."""
    train, held = {}, {}
    for user, seq in sequences.items():
        if len(seq) >= n + 3:
            train[user] = seq.head(-n)
            held[user] = set(seq.items[-n:])
        else:
            train[user] = seq
    return train, held


def list_scores(
    lists: Mapping[str, Sequence[str]],
    held: Mapping[str, set[str]],
    unit: Mapping[str, np.ndarray],
    n_items: int,
) -> dict[str, float]:
    """Mean list NDCG@10 (every held-out item relevant), Recall@10, diversity; catalogue coverage."""
    discounts = 1.0 / np.log2(np.arange(2, HELD_OUT + 2))
    ndcg, recall, diversity = [], [], []
    for user, targets in held.items():
        listed = list(lists.get(user, []))[:HELD_OUT]
        gains = np.array([item in targets for item in listed], dtype=float)
        ideal = discounts[: min(len(targets), HELD_OUT)].sum()
        ndcg.append(float((gains * discounts[: len(gains)]).sum() / ideal))
        recall.append(float(gains.sum() / len(targets)))
        vectors = [unit[i] for i in listed if i in unit]
        if len(vectors) >= 2:
            m = np.stack(vectors)
            cos = m @ m.T
            pairs = len(vectors) * (len(vectors) - 1)
            diversity.append(1.0 - float((cos.sum() - np.trace(cos)) / pairs))
    covered = {i for listed in lists.values() for i in listed[:HELD_OUT]}
    return {
        "ndcg@10": float(np.mean(ndcg)),
        "recall@10": float(np.mean(recall)),
        "diversity": float(np.mean(diversity)) if diversity else 0.0,
        "coverage": len(covered) / n_items,
    }


def mmr(pool: Sequence[tuple[str, float]], unit: Mapping[str, np.ndarray], k: int) -> list[str]:
    """Pick k of (item, probability) by lambda * relevance - (1 - lambda) * max cosine to the picked."""
    top = max((p for _, p in pool), default=1.0) or 1.0
    relevance = np.array([p / top for _, p in pool])
    dim = len(next(iter(unit.values())))
    vectors = np.stack([unit.get(i, np.zeros(dim, dtype=np.float32)) for i, _ in pool])
    closest = np.full(len(pool), -np.inf)
    left = np.ones(len(pool), dtype=bool)
    picked: list[str] = []
    while left.any() and len(picked) < k:
        penalty = np.where(np.isfinite(closest), closest, 0.0)
        score = np.where(left, MMR_LAMBDA * relevance - (1 - MMR_LAMBDA) * penalty, -np.inf)
        best = int(score.argmax())
        picked.append(pool[best][0])
        left[best] = False
        closest = np.maximum(closest, vectors @ vectors[best])
    return picked


def write_lists(
    rec: Recommender, histories: Mapping[str, UserSequence], how: str
) -> tuple[dict[str, list[str]], float]:
    """One 10-item list per user by `how` (first-step | generate | mmr); and the median ms per user."""
    unit = _unit_vectors(rec)
    users = sorted(histories)
    lists: dict[str, list[str]] = {}
    per_user = []
    for start in range(0, len(users), 256):
        part = users[start : start + 256]
        batch = [histories[u] for u in part]
        began = time.perf_counter()
        if how == "mmr":
            ranked = rec.recommend_batch(batch, k=MMR_POOL, explain=False)
            out = [mmr([(r.item_id, r.score) for r in recs], unit, HELD_OUT) for recs in ranked]
        else:
            ranked = rec.recommend_batch(batch, k=HELD_OUT, generate=how == "generate", explain=False)
            out = [[r.item_id for r in recs] for recs in ranked]
        per_user.append((time.perf_counter() - began) * 1000 / len(part))
        lists.update(zip(part, out, strict=True))
    return lists, float(np.median(per_user))


def _unit_vectors(rec: Recommender) -> dict[str, np.ndarray]:
    """Each item's content vector, normalised (the model's content buffer: the embedded texts)."""
    table = rec.model.items
    if not rec.model.config.content_dim:
        return {}
    content = table.content.detach().float().cpu().numpy()
    norms = np.linalg.norm(content, axis=1, keepdims=True)
    content = content / np.where(norms > 0, norms, 1.0)
    return {item: content[n + 1] for n, item in enumerate(rec.item_ids)}


def run_next10(
    sequences: Mapping[str, UserSequence], train_fn: Callable[[dict[str, UserSequence]], Recommender]
) -> tuple[list[tuple], int]:
    """Train on all but each user's last 10 items, then score the three ways of writing a list."""
    train_seqs, held = split_last(sequences)
    rec = train_fn(train_seqs)
    unit = _unit_vectors(rec)
    histories = {u: train_seqs[u] for u in held}
    rows = []
    for label, how in [
        ("first step, independent top-10", "first-step"),
        ("decoder generating (greedy)", "generate"),
        (f"first step top-{MMR_POOL} + MMR (lambda {MMR_LAMBDA})", "mmr"),
    ]:
        if how == "generate" and not rec.list_steps_trained:
            rows.append((f"{label}: list steps not trained (aux_positions 0)", len(held), *["-"] * 5))
            continue
        lists, ms = write_lists(rec, histories, how)
        found = list_scores(lists, held, unit, len(rec.item_ids))
        rows.append(
            (
                label,
                len(held),
                f"{found['ndcg@10']:.4f}",
                f"{found['recall@10']:.4f}",
                f"{found['diversity']:.4f}",
                f"{found['coverage']:.4f}",
                f"{ms:.2f}",
            )
        )
    return rows, len(held)
