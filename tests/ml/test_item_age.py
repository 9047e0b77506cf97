"""The item-age logit: given publication times, a model learns how fresh readers want items."""

import math
import time

import numpy as np
import torch

from recommender.ml.data import UserSequence
from recommender.ml.inference import MIN_INFLUENCE
from recommender.ml.model import AGE_UNIT, age_buckets
from recommender.ml.trainer import train
from tests.ml.factories import fresh_copy, tiny_config

HOUR = 3600.0
N_NEWS = 120
FRESH = 3  # a reader picks one of the items published in the last FRESH hours


def published() -> dict[str, float]:
    """One item an hour: n{k} is published at hour k."""
    return {f"n{k}": k * HOUR for k in range(N_NEWS)}


def news_reads(n_users: int = 400, seed: int = 0) -> dict[str, UserSequence]:
    """Readers who read whatever is new when they come, at random hours: only the clock says what is next.

    Visits are far apart, so a reader's history says little about what is new now.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for u in range(n_users):
        hours = np.sort(rng.choice(np.arange(FRESH, N_NEWS), size=int(rng.integers(4, 9)), replace=False))
        items = [f"n{h - int(rng.integers(0, FRESH))}" for h in hours]
        out[f"r{u}"] = UserSequence(items, timestamps=[float(h) * HOUR + 60.0 for h in hours])
    return out


def content() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(N_NEWS, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return {f"n{k}": vectors[k] for k in range(N_NEWS)}


def fresh_share(rec, seqs, at_hour_shift: float = 0.0) -> float:
    """Share of top-3 items published within FRESH hours before each reader's last visit (+ a shift)."""
    born = published()
    fresh = total = 0
    for seq in seqs.values():
        now = seq.timestamps[-1] + at_hour_shift * HOUR
        top = rec.recommend(seq.items[:-1], k=3, at=now, explain=False)
        fresh += sum(0 <= now - born[r.item_id] <= FRESH * HOUR for r in top)
        total += len(top)
    return fresh / total


def test_age_buckets_split_unknown_future_and_half_octaves_of_ten_minutes():
    ages = torch.tensor([math.nan, -5.0, 0.0, AGE_UNIT, 3 * AGE_UNIT, 1e12], dtype=torch.float64)
    assert age_buckets(ages, 32).tolist() == [0, 1, 2, 4, 6, 31]
    steady = age_buckets(torch.linspace(0, 1e9, 1000, dtype=torch.float64), 32)
    assert bool((steady[1:] >= steady[:-1]).all())


def test_a_model_given_publication_times_recommends_what_is_new_at_the_time_asked():
    seqs = news_reads()
    config = tiny_config(epochs=12, max_len=12)
    aged = train(seqs, config, content=content(), published=published()).recommender
    plain = train(seqs, config, content=content()).recommender
    assert aged.config.age_buckets > 0 and plain.config.age_buckets == 0
    tests = news_reads(60, seed=9)
    with_clock, without = fresh_share(aged, tests), fresh_share(plain, tests)
    assert with_clock >= 0.8, (with_clock, without)  # 3 of 120 items are fresh at any hour
    assert with_clock >= without + 0.3, (with_clock, without)
    # Asked a day later, the same histories get that day's news: the list follows the clock.
    later = news_reads(60, seed=9)
    later = {u: s for u, s in later.items() if s.timestamps[-1] < (N_NEWS - 30) * HOUR}
    assert fresh_share(aged, later, at_hour_shift=24) >= 0.8
    assert aged.metadata["metrics"]["val_ndcg@10"] > 0.3


def test_publication_times_travel_with_the_artifact_and_with_items_added_after_training():
    seqs = news_reads(200)
    rec = train(seqs, tiny_config(epochs=8, max_len=12), content=content(), published=published()).recommender
    copy = fresh_copy(rec)
    history, now = ["n10", "n40"], 60 * HOUR
    assert copy.recommend(history, k=5, at=now, explain=False) == rec.recommend(
        history, k=5, at=now, explain=False
    )
    vector = np.random.default_rng(1).normal(size=16).astype(np.float32)
    copy.add_items(
        {"new_today": vector, "new_old": vector},  # the same text: only their age differs
        published={"new_today": now - HOUR - 60, "new_old": now - 50 * HOUR},
    )
    ranked = [r.item_id for r in copy.recommend(history, k=N_NEWS + 2, at=now, explain=False)]
    assert ranked.index("new_today") < ranked.index("new_old")
    # An added item without a publication time has an unknown age, not the newest one.
    copy.add_items({"undated": vector})
    ranked = [r.item_id for r in copy.recommend(history, k=N_NEWS + 3, at=now, explain=False)]
    assert ranked.index("new_today") < ranked.index("undated")


def test_served_lists_use_the_clock_and_see_items_added_within_the_same_minute():
    rec = train(news_reads(200), tiny_config(epochs=8, max_len=12), content=content(), published=published())
    rec = rec.recommender
    now, history = time.time(), ["n10", "n40"]
    vector = np.random.default_rng(2).normal(size=16).astype(np.float32)
    rec.add_items(
        {"fresh": vector, "stale": vector}, published={"fresh": now - HOUR - 60, "stale": now - 50 * HOUR}
    )
    ranked = [r.item_id for r in rec.recommend(history, k=N_NEWS + 2, explain=False)]  # no `at`: now
    assert ranked.index("fresh") < ranked.index("stale")
    rec.add_items({"fresh2": vector}, published={"fresh2": now - HOUR - 60})  # cached ages are not reused
    ranked = [r.item_id for r in rec.recommend(history, k=N_NEWS + 3, explain=False)]
    assert ranked.index("fresh2") < ranked.index("stale")


def test_an_item_listed_for_being_new_says_so_and_cites_no_read():
    """Checked from outside: the item-age logits, left out, lower a `fresh` item's share most."""
    seqs = news_reads(300)
    rec = train(seqs, tiny_config(epochs=10, max_len=12), content=content(), published=published())
    rec = rec.recommender
    born = rec.model.born.clone()
    fresh_seen = 0
    for seq in list(news_reads(20, seed=4).values()):
        history, now = seq.items[:-1], seq.timestamps[-1]
        recs = rec.recommend(history, k=10, at=now)
        columns = [rec.row(r.item_id) for r in recs]

        def shares(items, now=now, columns=columns, clock=True):
            logits = rec.scores([items], at=now, exclude_seen=False)[0][columns]
            if not clock:
                logits = logits - rec.model.age_logits(torch.tensor([now]), born[columns])[0].detach().float()
            return torch.log_softmax(logits, dim=0)

        full = shares(history)
        age = full - shares(history, clock=False)
        reads = [full - shares([i for i in history if i != e]) for e in dict.fromkeys(history)]
        best_read = torch.stack(reads).max(0).values
        for n, r in enumerate(recs):
            if r.fresh:
                fresh_seen += 1
                assert r.explanation is None and r.group is None
                assert float(age[n]) >= max(float(best_read[n]), MIN_INFLUENCE) - 1e-4
            else:
                assert float(age[n]) < max(float(best_read[n]), MIN_INFLUENCE) + 1e-4
    assert fresh_seen >= 10  # readers here read what is new: the clock explains much of their lists
