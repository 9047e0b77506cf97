"""Serving: exclusions, allowed lists, unknown ids, batching, generation, similar items, new items."""

import logging

import numpy as np
import pytest
import torch

from recommender.ml.data import UserSequence
from recommender.ml.inference import EXPLAIN_EVENTS, MIN_INFLUENCE, PERSONAL_LIFT, Recommendation
from recommender.ml.trainer import train
from tests.ml.factories import (
    CONTENT_DIM,
    N_ITEMS,
    fresh_copy,
    planted_sequences,
    successor_map,
    tiny_config,
    trained,
)


def test_history_items_are_excluded_unless_allow_seen():
    rec = trained()
    history = ["i1", "i2", "i3"]
    ids = [r.item_id for r in rec.recommend(history, k=39)]
    assert not set(ids) & set(history)
    assert len(ids) == 37  # everything else, and nothing more
    with_seen = [r.item_id for r in rec.recommend(history, k=40, allow_seen=True)]
    assert set(history) <= set(with_seen)


def test_items_seen_before_the_models_window_are_excluded_too():
    """The model reads the last max_len events; an item read earlier is still seen."""
    rec = trained()
    window = rec.model.config.max_len
    others = [f"i{n}" for n in range(1, 40)][:window]
    history = ["i0", *others]  # i0 is older than the last `window` events
    assert len(history) > window
    assert rec.scores([history])[0][rec.row("i0")] == float("-inf")
    everything = [r.item_id for r in rec.recommend(history, k=40)]
    assert everything and "i0" not in everything and not set(everything) & set(history)
    assert "i0" in [r.item_id for r in rec.recommend(others, k=40)]  # not seen: it can come back


def test_excluded_items_are_never_returned_and_allowed_restricts_candidates():
    rec = trained()
    nxt = successor_map()
    best = rec.recommend(["i5"], k=1)[0].item_id
    assert best == nxt["i5"]
    ids = [r.item_id for r in rec.recommend(["i5"], k=40, exclude=[best, "i7"])]
    assert best not in ids and "i7" not in ids
    assert {r.item_id for r in rec.recommend(["i5"], k=10, allowed=["i8", "i9"])} == {"i8", "i9"}


def test_scores_are_probabilities_in_rank_order():
    rec = trained()
    recs = rec.recommend(["i1", "i2", "i3"], k=10)
    scores = [r.score for r in recs]
    assert scores == sorted(scores, reverse=True)
    assert 0 < sum(scores) <= 1.0001


def _list_log_probs(rec, history: list[str], listed: list[str]) -> torch.Tensor:
    """Log-probabilities of the listed items among themselves, for this history."""
    logits = rec.scores([history], exclude_seen=False)[0][[rec.row(i) for i in listed]]
    return torch.log_softmax(logits, dim=0)


def _typical_log_probs(rec, listed: list[str]) -> torch.Tensor:
    """Log-probabilities of the listed items among themselves, for the typical reader."""
    matrix = rec.model.item_matrix().detach()[[rec.row(i) for i in listed]]
    return torch.log_softmax(rec.model.typical @ matrix.T, dim=0)


def test_the_cited_event_is_the_one_whose_removal_lowers_the_score_most():
    """Leave-one-out, checked from outside: each item's share of its list without each event."""
    rec = trained()
    history = ["i7", "i12", "i30", "i3", "i21"]
    recs = rec.recommend(history, k=10)
    listed = [r.item_id for r in recs]
    full = _list_log_probs(rec, history, listed)
    drops = {
        e: full - _list_log_probs(rec, [i for i in history if i != e], listed) for e in dict.fromkeys(history)
    }
    cited = 0
    for n, r in enumerate(recs):
        best = max(float(d[n]) for d in drops.values())
        if r.explanation is None:  # no groups given: no reason, one a typical reader shares, or
            # a read that alone does not lift the item (test_sufficient_reasons.py)
            top = max(drops, key=lambda e: float(drops[e][n]))
            alone = _list_log_probs(rec, [top], listed)[n] - _typical_log_probs(rec, listed)[n]
            assert (best < MIN_INFLUENCE or r.popular or float(alone) < PERSONAL_LIFT) and r.group is None
            continue
        cited += 1
        assert float(drops[r.explanation][n]) >= best - 1e-4 and best >= MIN_INFLUENCE
    assert cited >= 1


def test_a_group_explains_what_no_single_event_does():
    """Two reads that carry the same signal share the credit; together they explain the item."""
    rec = trained()
    nxt = successor_map()
    history = ["i7", "i12", "i3", "i3", "i30"]
    groups = {"pair": ["i3", "i30"], "other": ["i7"], "unknown": ["nope"]}
    recs = rec.recommend(history, k=10, groups=groups)
    listed = [r.item_id for r in recs]
    full = _list_log_probs(rec, history, listed)
    without_pair = _list_log_probs(rec, ["i7", "i12"], listed)
    without = {"pair": without_pair, "other": _list_log_probs(rec, ["i12", "i3", "i3", "i30"], listed)}
    members = {"pair": {"i3", "i30"}, "other": {"i7"}}
    for n, r in enumerate(recs):
        assert r.explanation is None or r.group is None  # one reason each
        if r.group == "pair":
            assert float(full[n] - without_pair[n]) >= MIN_INFLUENCE
        if r.explanation is not None:  # no group the cited read is not part of lowers the item more
            alone = full[n] - _list_log_probs(rec, [i for i in history if i != r.explanation], listed)[n]
            for name, rest in without.items():
                assert r.explanation in members[name] or float(full[n] - rest[n]) <= float(alone) + 1e-4
    assert {r.group for r in recs} <= {"pair", "other", None}
    # A group holding the whole history explains whatever no single read does: nothing to compare with
    # (within the history; a model with a typical reader calls what that reader gets as well popular).
    plain = fresh_copy(rec)
    plain.model.config.typical_reader = False
    for model in (rec, plain):
        whole = model.recommend(["i3", "i30"], k=10, groups={"all": ["i3", "i30"]})
        assert whole[0].item_id == nxt["i30"] and whole[0].explanation == "i30"
        assert all(r.explanation in {"i3", "i30"} or r.group == "all" or r.popular for r in whole)
    assert not any(r.popular for r in whole) and any(r.group == "all" for r in whole)
    assert [r.explanation for r in plain.recommend(["i3", "i30"], k=10)].count(None) >= 1  # without the group


def test_explanations_can_be_skipped_and_a_one_item_history_explains_itself():
    rec = trained()
    assert {r.explanation for r in rec.recommend(["i1", "i2"], k=5, explain=False)} == {None}
    lone = rec.recommend(["i5"], k=5)  # the one read explains all but what a typical reader gets too
    assert lone[0].explanation == "i5" and all(r.explanation == "i5" or r.popular for r in lone)
    batch = rec.recommend_batch([["i1", "i2"], ["i5"]], k=3)
    assert [r.item_id for r in batch[0]] == [r.item_id for r in rec.recommend(["i1", "i2"], k=3)]
    assert [r.explanation for r in batch[0]] == [r.explanation for r in rec.recommend(["i1", "i2"], k=3)]


def test_user_vectors_score_every_item_by_dot_product():
    """The user vector is the whole model side of a request; scoring is one matmul with the items."""
    rec = trained()
    histories = [["i1", "i2", "i3"], ["i5"]]
    vectors = rec.user_vectors(histories)
    assert vectors.shape == (2, rec.model.config.d_model)
    with torch.no_grad():
        items = rec.model.item_matrix()
    expected = vectors @ items[1:].T
    assert torch.allclose(rec.scores(histories, exclude_seen=False)[:, 1:], expected, atol=1e-5)
    by_vector = [rec.item_ids[i] for i in expected[0].topk(5).indices.tolist()]
    assert by_vector == [r.item_id for r in rec.recommend(histories[0], k=5, allow_seen=True)]
    assert not torch.allclose(vectors[0], vectors[1])
    with pytest.raises(ValueError, match=r"positions \[1\] hold no item the model knows"):
        rec.user_vectors([["i1"], ["nope"]])
    with pytest.raises(ValueError, match="no item the model knows"):
        rec.scores([[]])


def test_unknown_history_ids_are_skipped_and_an_unknown_history_gives_nothing(caplog):
    rec = trained()
    with caplog.at_level(logging.WARNING):
        assert rec.recommend(["nope"], k=5) == []
        mixed = rec.recommend(["nope", "i5"], k=5)
    assert mixed == rec.recommend(["i5"], k=5)
    assert "unknown" in caplog.text
    assert rec.recommend([], k=5) == []


def test_generated_lists_have_no_repeats_and_respect_exclusions():
    rec = trained()
    for history in (["i1"], ["i4", "i9"], ["i3", "i3", "i7"]):
        recs = rec.recommend(history, k=12, exclude=["i0"], generate=True)
        ids = [r.item_id for r in recs]
        assert len(ids) == 12 and len(set(ids)) == 12
        assert not set(ids) & {"i0", *history}


def test_generated_list_starts_with_the_best_item():
    rec = trained()
    assert rec.recommend(["i5"], k=5, generate=True)[0] == rec.recommend(["i5"], k=5)[0]


def test_a_model_whose_list_steps_never_trained_refuses_to_generate_but_still_ranks():
    untrained_steps = train(planted_sequences(60), tiny_config(epochs=2, aux_positions=0)).recommender
    for rec in (untrained_steps, fresh_copy(untrained_steps)):  # the artifact keeps what it trained
        assert not rec.list_steps_trained
        with pytest.raises(ValueError, match="aux_positions 0"):
            rec.recommend(["i5"], k=5, generate=True)
        with pytest.raises(ValueError, match="aux_positions 0"):
            rec.recommend_batch([["i5"]], k=5, generate=True)
        assert len(rec.recommend(["i5"], k=5)) == 5
    assert trained().list_steps_trained
    assert len(trained().recommend(["i5"], k=5, generate=True)) == 5


def test_batch_matches_one_by_one_in_input_order():
    rec = trained()
    histories = [["i1", "i2"], ["nope"], ["i7", "i8", "i9", "i10"], ["i3"]]
    excludes = [["i4"], [], [], ["i5"]]
    batch = rec.recommend_batch(histories, k=5, excludes=excludes)
    single = [rec.recommend(h, k=5, exclude=e) for h, e in zip(histories, excludes, strict=True)]
    assert [[r.item_id for r in b] for b in batch] == [[r.item_id for r in s] for s in single]
    assert batch[1] == []
    for b, s in zip(batch, single, strict=True):
        assert np.allclose([r.score for r in b], [r.score for r in s], atol=1e-5)


def test_similar_returns_the_item_itself_never_and_cosine_scores():
    rec = trained()
    sims = rec.similar("i3", k=5, exclude=["i4"])
    assert len(sims) == 5 and all(isinstance(s, Recommendation) for s in sims)
    assert "i3" not in [s.item_id for s in sims] and "i4" not in [s.item_id for s in sims]
    assert all(-1.0 <= s.score <= 1.0 for s in sims)
    assert rec.similar("nope") == []


def test_added_items_can_be_recommended_and_found_similar():
    rec = fresh_copy(trained())
    vector = np.random.default_rng(3).normal(size=CONTENT_DIM).astype(np.float32)
    rec.add_items({"brand-new": vector / np.linalg.norm(vector)})
    assert "brand-new" in rec
    assert [r.item_id for r in rec.recommend(["i1"], k=1, allowed=["brand-new"])] == ["brand-new"]
    assert rec.similar("brand-new", k=3)


def test_a_wrong_sized_vector_rejects_the_whole_call_and_changes_nothing():
    rec = fresh_copy(trained())
    before = rec.model.items.content.clone()
    listed = [r.item_id for r in rec.recommend(["i1", "i2"], k=5)]
    good = np.ones(CONTENT_DIM, dtype=np.float32) / np.sqrt(CONTENT_DIM)
    bad = np.ones(3, dtype=np.float32)
    with pytest.raises(ValueError, match=f"'i4': content vector has 3 dims, the model expects {CONTENT_DIM}"):
        rec.add_items({"i3": good, "i4": bad})  # known items only: written in place, so checked first
    assert torch.equal(rec.model.items.content, before)  # i3's text was not half-updated
    with pytest.raises(ValueError, match="3 dims"):
        rec.add_items({"brand-new": good, "i4": bad})
    assert "brand-new" not in rec
    assert [r.item_id for r in rec.recommend(["i1", "i2"], k=5)] == listed


def test_adding_items_computes_only_their_rows_and_matches_a_full_rebuild():
    rec = fresh_copy(trained())
    rng = np.random.default_rng(5)
    first = rng.normal(size=(3, CONTENT_DIM)).astype(np.float32)
    rec.add_items({f"new{n}": v for n, v in enumerate(first)})
    known = rec.item_ids[0]
    for added in ({"new9": first[0], known: first[1]}, {"new10": first[2], "new1": first[0]}):
        rec.add_items(added)  # a known trained item re-embedded (full rebuild), then new ones only
        incremental = rec._state.matrix
        with torch.no_grad():
            rebuilt = rec.model.eval().item_matrix().float()
        assert incremental.shape == rebuilt.shape == (len(rec.item_ids) + 1, rec.model.config.d_model)
        assert torch.allclose(incremental, rebuilt, atol=1e-5)


def test_items_past_the_spare_rows_move_the_matrix_to_a_larger_room_once():
    rec = fresh_copy(trained())
    room = rec._state.room
    spare = room.size(0) - len(rec.item_ids) - 1
    vectors = np.random.default_rng(6).normal(size=(spare + 5, CONTENT_DIM)).astype(np.float32)
    rec.add_items({f"early{n}": v for n, v in enumerate(vectors[:spare])})
    assert rec._state.room is room  # filled to the last spare row in place
    rec.add_items({f"late{n}": v for n, v in enumerate(vectors[spare:])})
    assert rec._state.room is not room and rec._state.room.size(0) > len(rec.item_ids) + 1
    with torch.no_grad():
        rebuilt = rec.model.eval().item_matrix().float()
    assert torch.allclose(rec._state.matrix, rebuilt, atol=1e-5)
    assert rec.recommend(["i1"], k=3, allowed=["late0", "late4", "i2"])


def test_new_item_boost_raises_only_untrained_items_and_covers_items_added_later():
    rec = fresh_copy(trained())
    rng = np.random.default_rng(4)
    rec.add_items({"early": rng.normal(size=CONTENT_DIM).astype(np.float32)})
    plain = rec.scores([["i1", "i2"]])[0]
    assert rec.recommend(["i1", "i2"], k=1)[0].item_id != "early"
    rec.new_item_boost = 50.0
    rec.add_items({"late": rng.normal(size=CONTENT_DIM).astype(np.float32)})
    boosted = rec.scores([["i1", "i2"]])[0]
    new = [rec.row("early"), rec.row("late")]
    trained_cols = [rec.row(i) for i in rec.item_ids[:N_ITEMS] if i not in ("i1", "i2")]
    assert torch.allclose(boosted[trained_cols], plain[trained_cols], atol=1e-5)
    assert torch.allclose(boosted[new[0]], plain[new[0]] + 50.0, atol=1e-4)
    assert {r.item_id for r in rec.recommend(["i1", "i2"], k=2)} == {"early", "late"}
    assert {r.item_id for r in rec.recommend(["i1", "i2"], k=2, generate=True)} == {"early", "late"}
    rec.new_item_boost = 0.0
    assert torch.allclose(rec.scores([["i1", "i2"]])[0][new[0]], plain[new[0]], atol=1e-5)


def test_new_item_boost_must_be_finite():
    rec = fresh_copy(trained())
    for bad in (float("inf"), float("-inf"), float("nan")):
        with pytest.raises(ValueError, match="finite"):
            rec.new_item_boost = bad
    assert rec.new_item_boost == 0.0


def test_only_the_newest_reads_may_be_cited_so_a_long_history_stays_cheap():
    rec = trained()
    history = [f"i{n}" for n in range(30)]
    recs = rec.recommend(history, k=10)
    newest = set(history[-EXPLAIN_EVENTS:])
    assert any(r.explanation for r in recs)
    assert all(r.explanation is None or r.explanation in newest for r in recs)


def test_a_history_without_times_is_spaced_as_training_spaced_it():
    """Item ids alone (the CLI's recommend, most callers) are read like an untimed UserSequence.

    Training gives untimed events one second apart (UserSequence), serving read plain ids as
    zero seconds apart: another gap bucket at every step. On ML-1M the CLI's lists scored
    NDCG@10 .1653 against .1783 for the same model asked with training's spacing.
    """
    rec = trained()
    history = ["i1", "i2", "i3", "i4"]
    plain = rec.recommend_batch([history], 10, explain=False)[0]
    spaced = rec.recommend_batch([UserSequence(history)], 10, explain=False)[0]
    assert [(r.item_id, r.score) for r in plain] == [(r.item_id, r.score) for r in spaced]
