"""Synthetic sequences with a planted pattern, and one small trained model shared by the ML tests."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from recommender.ml.artifact import artifact_files, load_artifact_files
from recommender.ml.data import UserSequence
from recommender.ml.inference import Recommender
from recommender.ml.trainer import TrainConfig, train

N_ITEMS = 40
CONTENT_DIM = 16


def successor_map(n_items: int = N_ITEMS, seed: int = 0) -> dict[str, str]:
    """The planted rule: after item x comes item next[x] (a random cycle over all items)."""
    order = np.random.default_rng(seed).permutation(n_items)
    return {f"i{order[j]}": f"i{order[(j + 1) % n_items]}" for j in range(n_items)}


def planted_sequences(n_users: int = 300, *, noise: float = 0.1, seed: int = 0) -> dict[str, UserSequence]:
    """Users who mostly follow the planted rule, with a share of random jumps."""
    rng = np.random.default_rng(seed + 1)
    nxt = successor_map()
    items = sorted(nxt)
    out = {}
    for u in range(n_users):
        seq = [items[rng.integers(len(items))]]
        for _ in range(int(rng.integers(8, 20))):
            seq.append(items[rng.integers(len(items))] if rng.random() < noise else nxt[seq[-1]])
        out[f"u{u}"] = UserSequence(seq, timestamps=[1000.0 * j for j in range(len(seq))])
    return out


def content_vectors(seed: int = 0) -> dict[str, np.ndarray]:
    """A random unit vector per planted item (stands in for embedded text)."""
    rng = np.random.default_rng(seed + 2)
    vectors = rng.normal(size=(N_ITEMS, CONTENT_DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return {f"i{n}": vectors[n] for n in range(N_ITEMS)}


def tiny_config(**overrides) -> TrainConfig:
    """A model small enough to train in a few seconds on one CPU core."""
    base = dict(
        d_model=32,
        n_heads=2,
        n_layers=1,
        dropout=0.1,
        max_len=24,
        list_len=4,
        batch_size=32,
        lr=5e-3,
        warmup=10,
        epochs=25,
        patience=25,
        seed=0,
        device="cpu",
        bf16=False,
    )
    return TrainConfig(**{**base, **overrides})


@lru_cache(maxsize=1)
def trained() -> Recommender:
    """One model on the planted data with content vectors, trained once per test session."""
    return train(
        planted_sequences(), tiny_config(), content=content_vectors(), embedder_name="test"
    ).recommender


def fresh_copy(rec: Recommender) -> Recommender:
    """An independent copy (through the artifact bytes), for tests that add items."""
    return load_artifact_files(artifact_files(rec))
