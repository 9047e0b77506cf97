"""A read is cited only when it is sufficient as well as necessary: alone, it lifts the item too.

The planted world has an AND rule: after key ``a{j}`` and, later, key ``b{j}``, the
reader reads ``t{j}``; either key without the other changes nothing (the walk goes on).
Leaving out one key lowers ``t{j}`` as much as anything can, but that key alone does not
list it: "Because you read a{j}" would be false, and the pair of keys is the reason.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from recommender.ml.data import UserSequence
from recommender.ml.inference import MIN_INFLUENCE, PERSONAL_LIFT, Recommender
from recommender.ml.trainer import train
from tests.ml.factories import successor_map, tiny_config

PAIRS = 10


@lru_cache(maxsize=1)
def with_pairs() -> Recommender:
    """The planted successor walk, with key pairs inserted: both -> t{j}, one alone -> nothing."""
    rng = np.random.default_rng(3)
    nxt = successor_map()
    items = sorted(nxt)
    seqs = {}
    for u in range(1000):
        j, kind = u % PAIRS, ("both", "both", "b", "b", "a")[(u // PAIRS) % 5]
        n = int(rng.integers(8, 16))
        at_a, at_b = sorted(rng.choice(np.arange(1, n), 2, replace=False))
        seq = [items[rng.integers(len(items))]]
        while len(seq) < n:
            if len(seq) == at_a and kind in ("both", "a"):
                seq.append(f"a{j}")
            elif len(seq) == at_b and kind in ("both", "b"):
                seq.append(f"b{j}")
                if kind == "both":
                    seq.append(f"t{j}")
            seq.append(nxt[[s for s in seq if s.startswith("i")][-1]])
        seqs[f"u{u}"] = UserSequence(seq, timestamps=[1000.0 * k for k in range(len(seq))])
    return train(seqs, tiny_config(epochs=40, n_layers=2)).recommender


def _shares(rec: Recommender, histories: list[list[str]], listed: list[str]) -> torch.Tensor:
    """(histories + 1, listed) log-probabilities in the list; the last row is the typical reader's."""
    matrix = rec.model.item_matrix().detach()[[rec.row(i) for i in listed]]
    states = torch.cat([rec.user_vectors(histories), rec.model.typical[None]])
    return torch.log_softmax(states @ matrix.T, dim=1)


def test_a_read_that_alone_does_not_lift_the_item_is_not_its_reason():
    rec = with_pairs()
    nxt = successor_map()
    insufficient = 0
    for j, start in enumerate(sorted(nxt)[:PAIRS]):
        walk = [start, nxt[start], nxt[nxt[start]]]
        history = [walk[0], f"a{j}", walk[1], walk[2], f"b{j}"]
        keys = {"keys": [f"a{j}", f"b{j}"]}
        recs = rec.recommend(history, k=5, groups=keys)
        listed = [r.item_id for r in recs]
        events = list(dict.fromkeys(history))
        # checked from outside: leave-one-out drops, and each read (and the pair) as the whole history
        full = _shares(rec, [history], listed)[0]
        without = _shares(rec, [[e for e in history if e != read] for read in events], listed)[:-1]
        drops = full - without
        alone = _shares(rec, [[read] for read in events] + [keys["keys"]], listed)
        lifts = alone[:-1] - alone[-1]
        for n, r in enumerate(recs):
            best = int(drops[:, n].argmax())
            if r.explanation is not None:
                cited = events.index(r.explanation)
                assert float(drops[cited, n]) >= float(drops[best, n]) - 1e-4 >= MIN_INFLUENCE - 1e-4
                assert float(lifts[cited, n]) >= PERSONAL_LIFT, (history, r)
            if r.group == "keys":
                assert float(lifts[-1, n]) >= PERSONAL_LIFT
            necessary = float(drops[best, n]) >= MIN_INFLUENCE and not r.popular and not r.fresh
            if necessary and float(lifts[best, n]) < PERSONAL_LIFT:
                insufficient += 1
                assert r.explanation is None, (history, r, events[best])
    assert insufficient >= 1  # the case exists, so citing by removal alone would fail above
