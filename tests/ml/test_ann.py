"""The approximate index past ann_min_items: the same lists as exact scoring, filters still exact."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from recommender.ml import ann
from recommender.ml.inference import Recommender
from tests.ml.factories import CONTENT_DIM, content_vectors, fresh_copy, trained

pytest.importorskip("faiss")

N_NEW = 3000


def catalogue(boost: float = 0.0) -> Recommender:
    """The planted model grown to ~3,000 items, each near one trained item's content (as topics are)."""
    rec = fresh_copy(trained())
    rec.new_item_boost = boost
    rng = np.random.default_rng(5)
    topics = np.stack(list(content_vectors().values()))
    vectors = topics[rng.integers(len(topics), size=N_NEW)] + 0.3 * rng.normal(size=(N_NEW, CONTENT_DIM))
    rec.add_items({f"n{j}": v.astype(np.float32) for j, v in enumerate(vectors)})
    return rec


def histories(rec: Recommender, n: int = 60) -> list[list[str]]:
    rng = np.random.default_rng(6)
    return [list(rng.choice(rec.item_ids, size=int(rng.integers(1, 8)), replace=False)) for _ in range(n)]


@pytest.fixture(autouse=True)
def small_groups_indexed(monkeypatch) -> None:
    """Index the ~3,000 content-only items (the 40 trained ones stay below the size and scored exactly)."""
    monkeypatch.setattr(ann, "EXACT_GROUP", 100)


@pytest.fixture
def searches(monkeypatch) -> list[int]:
    """A spy on the index: the number of queries of each search call."""
    calls: list[int] = []
    search = ann.ItemIndex.search

    def spy(self: ann.ItemIndex, queries: np.ndarray, k: int) -> np.ndarray:
        calls.append(len(queries))
        return search(self, queries, k)

    monkeypatch.setattr(ann.ItemIndex, "search", spy)
    return calls


def ids(recs) -> list[str]:
    return [r.item_id for r in recs]


@pytest.mark.parametrize("boost", [0.0, 2.0])
def test_above_the_threshold_the_index_finds_the_exact_top_10(boost, searches):
    rec = catalogue(boost)
    users = histories(rec)
    exact = rec.recommend_batch(users, k=10, explain=False)
    assert not searches
    rec.ann_min_items = 1000
    assert rec._state.item_index is not None and rec._state.item_index.rows == len(rec.item_ids)
    approx = rec.recommend_batch(users, k=10, explain=False)
    assert searches == [len(users)]
    recall = np.mean([len(set(ids(a)) & set(ids(e))) / 10 for a, e in zip(approx, exact, strict=True)])
    assert recall >= 0.95
    for a, e in zip(approx, exact, strict=True):
        assert len(a) == 10
        if ids(a)[0] == ids(e)[0]:  # the probability's normaliser is estimated from a sample
            assert a[0].score == pytest.approx(e[0].score, rel=0.15)


def test_an_excluded_item_never_appears_even_when_the_index_ranks_it_first(searches):
    rec = catalogue(boost=3.0)  # content-only items (the indexed ones) lead the lists
    rec.ann_min_items = 1000
    history = histories(rec, 1)[0]
    (part,) = rec._state.item_index.parts
    first = rec.item_ids[part.search(rec.user_vectors([history]).numpy(), 1)[0, 0] - 1]
    assert ids(rec.recommend(history, k=10, explain=False))[0] == first
    recs = rec.recommend(history, k=10, exclude={first}, explain=False)
    assert first not in ids(recs) and len(recs) == 10
    assert not set(ids(recs)) & set(history)  # seen items stay out too
    assert len(searches) == 3


def test_allowed_restricts_the_index_path_exactly(searches):
    rec = catalogue()
    rec.ann_min_items = 1000
    allowed = set(rec.item_ids[::3])
    for history in histories(rec, 10):
        recs = rec.recommend(history, k=10, allowed=allowed, explain=False)
        assert len(recs) == 10 and set(ids(recs)) <= allowed
    assert len(searches) == 10


def test_filters_that_leave_too_few_candidates_fall_back_to_exact_scoring(monkeypatch, searches):
    rec = catalogue()
    rec.ann_min_items = 1000
    exact_calls = []
    top_exact = Recommender._top_exact

    def spy(self, state, states, banned, allowed, wanted, bias=None):
        exact_calls.append(len(banned))
        return top_exact(self, state, states, banned, allowed, wanted, bias)

    monkeypatch.setattr(Recommender, "_top_exact", spy)
    history = histories(rec, 1)[0]
    scores = rec.scores([history])[0]
    # the 600 new items the user would like least: none is among the index's candidates
    order = [rec.item_ids[c - 1] for c in scores.argsort().tolist() if c and torch.isfinite(scores[c])]
    allowed = [i for i in order if i.startswith("n")][:600]
    recs = rec.recommend(history, k=10, allowed=set(allowed), explain=False)
    assert searches and exact_calls == [1]
    assert ids(recs) == allowed[::-1][:10]


def test_a_few_allowed_items_are_scored_without_the_index(searches):
    rec = catalogue()
    rec.ann_min_items = 1000
    allowed = set(rec.item_ids[-7:])
    history = histories(rec, 1)[0]
    recs = rec.recommend(history, k=10, allowed=allowed, explain=False)
    assert not searches
    assert set(ids(recs)) == allowed - set(history)


def test_items_added_after_the_build_are_recommended_without_a_rebuild(searches):
    rec = catalogue()
    rec.ann_min_items = 1000
    built = rec._state.item_index
    history = histories(rec, 1)[0]
    user = rec.user_vectors([history])[0]
    # content the model projects onto the user's direction: it must rank first
    weight = rec.model.items.content_proj.weight.detach()
    aim = (weight.T @ user).numpy()
    rec.add_items({"late": 10 * aim / np.linalg.norm(aim)})
    assert rec._state.item_index is built
    assert rec.recommend(history, k=10, explain=False)[0].item_id == "late"
    assert searches


def test_generate_works_on_the_index_candidates(searches):
    rec = catalogue()
    rec.ann_min_items = 1000
    history = histories(rec, 1)[0]
    recs = rec.recommend(history, k=5, generate=True, explain=False)
    assert len(recs) == 5 and len(set(ids(recs))) == 5 and not set(ids(recs)) & set(history)
    assert searches


def test_below_the_threshold_scoring_is_exact(searches):
    rec = catalogue()
    rec.ann_min_items = len(rec.item_ids)
    assert rec._state.item_index is None
    rec.recommend(histories(rec, 1)[0], k=10, explain=False)
    assert not searches


def test_without_faiss_scoring_is_exact_and_says_so_once(monkeypatch, caplog, searches):
    monkeypatch.setattr(ann, "faiss", None)
    monkeypatch.setattr(ann, "_warned", False)
    rec = catalogue()
    with caplog.at_level(logging.WARNING, logger="recommender.ml.ann"):
        rec.ann_min_items = 1000
        rec.add_items({"late": np.ones(CONTENT_DIM, dtype=np.float32)})
    assert rec._state.item_index is None
    assert len(rec.recommend(histories(rec, 1)[0], k=10, explain=False)) == 10
    assert not searches
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "faiss is not installed" in caplog.records[0].message
