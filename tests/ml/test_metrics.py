"""Full-ranking metrics with seen items excluded, and the popularity floor."""

import math

import pytest
import torch

from recommender.ml import metrics
from recommender.ml.data import UserSequence
from recommender.ml.metrics import evaluate, popularity_baseline
from tests.ml.factories import planted_sequences, successor_map, trained


class FixedScores:
    """A stand-in Recommender whose logits are the same for every history: 'a' > 'b' > 'c' > 'd'."""

    item_ids = ["a", "b", "c", "d"]

    def row(self, item_id):
        return self.item_ids.index(item_id) + 1 if item_id in self.item_ids else None

    def scores(self, histories):
        out = torch.tensor([[float("-inf"), 4.0, 3.0, 2.0, 1.0]]).repeat(len(histories), 1)
        for b, h in enumerate(histories):
            for i in h:
                if self.row(i) is not None:
                    out[b, self.row(i)] = float("-inf")
        return out


def test_ranks_exclude_the_history_and_unknown_targets_count_as_misses():
    histories = {"u1": ["a"], "u2": ["x", "b"], "u3": ["c"], "u4": ["a"]}
    targets = {"u1": "b", "u2": "d", "u3": "zzz", "u4": "a"}
    found = evaluate(FixedScores(), histories, targets, ks=(1, 2))
    # u1: b ranks first once a is excluded; u2: d is third (a, c before); u3 unknown; u4 target seen.
    assert found["users"] == 4
    assert found["hr@1"] == pytest.approx(0.25)
    assert found["ndcg@2"] == pytest.approx(0.25)
    assert found["mrr"] == pytest.approx((1 + 1 / 3) / 4)
    assert found["coverage@2"] == pytest.approx(3 / 4)


def test_popularity_baseline_ranks_by_training_counts_without_seen_items():
    train = {
        "u": UserSequence(["a", "a2", "a"]),
        "v": UserSequence(["a", "b"]),
        "w": UserSequence(["b", "c"]),
    }
    found = popularity_baseline(train, {"x": ["a"], "y": []}, {"x": "b", "y": "c"}, ks=(1, 3))
    assert found["hr@1"] == pytest.approx(0.5)  # x: b first once a is seen; y: c is behind a and b
    assert found["ndcg@3"] == pytest.approx((1 + 1 / math.log2(4)) / 2)


def test_trained_model_beats_popularity_on_the_planted_pattern():
    rec = trained()
    nxt = successor_map()
    histories = {f"u{n}": [p, i] for n, (p, i) in enumerate(nxt.items())}
    targets = {f"u{n}": nxt[i] for n, (_, i) in enumerate(nxt.items())}
    model = evaluate(rec, histories, targets)
    pop = popularity_baseline(planted_sequences(), histories, targets)
    assert model["ndcg@10"] > 0.8 and pop["ndcg@10"] < 0.5


def test_coverage_never_counts_seen_items_left_in_a_short_top_k():
    """With 4 items and 3 seen, a top-10 holds one real recommendation; coverage is 1/4, not > 1."""
    found = evaluate(FixedScores(), {"u": ["a", "b", "c"]}, {"u": "d"}, ks=(10,))
    assert found["hr@10"] == 1.0
    assert found["coverage@10"] == pytest.approx(1 / 4)


class RecordingScores(FixedScores):
    """FixedScores that records the history lengths of each batch it is asked to score."""

    def __init__(self):
        self.batches = []

    def scores(self, histories):
        self.batches.append([len(h) for h in histories])
        return super().scores(histories)


def test_batches_hold_histories_of_similar_length_and_each_rank_stays_with_its_user(monkeypatch):
    """Each batch is padded to its longest history, so evaluate() batches by length; the
    order it scores in must not move a rank to another user."""
    monkeypatch.setattr(metrics, "BATCH", 2)
    rec = RecordingScores()
    histories = {
        "long": ["a", "x", "y", "z", "w"],  # a excluded: b ranks first
        "short": ["d"],  # d excluded: a ranks first
        "mid": ["a", "b", "x", "y"],  # a, b excluded: c ranks first
        "two": ["x", "c"],  # c excluded: b ranks second
    }
    targets = {"long": "b", "short": "a", "mid": "c", "two": "b"}
    found = evaluate(rec, histories, targets, ks=(1,))
    assert rec.batches == [[1, 2], [4, 5]]
    assert found["hr@1"] == pytest.approx(3 / 4)
    assert found["mrr"] == pytest.approx((1 + 1 + 1 + 1 / 2) / 4)
