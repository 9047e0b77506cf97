"""The typical reader: an item that any reader's list holds as high is "popular", not explained by a read."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from recommender.ml.data import UserSequence
from recommender.ml.inference import PERSONAL_LIFT, Recommender
from recommender.ml.trainer import train
from tests.ml.factories import fresh_copy, planted_sequences, successor_map, tiny_config, trained

HIT = "hit"


def lifts(rec: Recommender, history: list[str], listed: list[str]) -> np.ndarray:
    """Checked from outside: each listed item's log-probability in the list, this reader minus typical."""
    matrix = rec.model.item_matrix().detach()[[rec.row(i) for i in listed]]
    reader = rec.user_vectors([history])[0]
    logits = torch.stack([reader, rec.model.typical]) @ matrix.T
    share = torch.log_softmax(logits, dim=1)
    return (share[0] - share[1]).numpy()


@lru_cache(maxsize=1)
def with_a_hit() -> tuple[Recommender, dict[str, str]]:
    """The planted successor rule, but a third of all steps go to one hit item, whoever reads."""
    rng = np.random.default_rng(5)
    nxt = successor_map()
    items = sorted(nxt)
    seqs = {}
    for u in range(300):
        seq = [items[rng.integers(len(items))]]
        while len(seq) < int(rng.integers(10, 20)):
            last = seq[-1] if seq[-1] != HIT else seq[-2]
            seq.append(HIT if rng.random() < 0.35 and HIT not in seq else nxt[last])
        seqs[f"u{u}"] = UserSequence(seq, timestamps=[1000.0 * j for j in range(len(seq))])
    return train(seqs, tiny_config(epochs=30)).recommender, nxt


def test_the_typical_reader_is_the_mean_state_of_the_trained_readers():
    rec = trained()
    readers = list(planted_sequences().values())  # every event: the served model learned them all
    assert rec.model.config.typical_reader
    assert torch.allclose(rec.model.typical, rec.user_vectors(readers).mean(0), atol=1e-5)
    copy = fresh_copy(rec)  # stored with the model
    assert torch.equal(copy.model.typical, rec.model.typical)


def test_an_item_every_reader_gets_is_popular_and_the_personal_one_cites_its_read():
    rec, nxt = with_a_hit()
    checked = 0
    for start in ["i3", "i11", "i25", "i30"]:
        history = [start, nxt[start]]
        recs = rec.recommend(history, k=5)
        by_id = {r.item_id: r for r in recs}
        assert HIT in by_id and nxt[history[-1]] in by_id, [r.item_id for r in recs]
        hit, personal = by_id[HIT], by_id[nxt[history[-1]]]
        assert hit.popular and hit.explanation is None and hit.group is None
        assert not personal.popular and personal.explanation == history[-1]
        listed = [r.item_id for r in recs]
        lift = dict(zip(listed, lifts(rec, history, listed), strict=True))
        for r in recs:  # popular exactly when this reader lifts the item less than PERSONAL_LIFT
            assert r.popular == (lift[r.item_id] < PERSONAL_LIFT), (r, lift[r.item_id])
            assert not (r.popular and (r.explanation or r.group or r.fresh))
            checked += 1
    assert checked == 20


def test_a_model_without_a_typical_reader_calls_every_pick_personal():
    """Models trained before the typical reader was stored explain as they did."""
    rec, nxt = with_a_hit()
    old = fresh_copy(rec)
    old.model.config.typical_reader = False
    history = ["i3", nxt["i3"]]
    before, now = old.recommend(history, k=5), rec.recommend(history, k=5)
    assert [r.item_id for r in before] == [r.item_id for r in now]
    assert not any(r.popular for r in before) and any(r.popular for r in now)
    for a, b in zip(before, now, strict=True):
        assert b.popular or (a.explanation, a.group) == (b.explanation, b.group)
