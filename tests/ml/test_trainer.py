"""Training: the model learns a planted sequential pattern, cold items ride on their content, refresh."""

import numpy as np
import pytest
import torch

from recommender.ml import trainer
from recommender.ml.data import UserSequence
from recommender.ml.metrics import evaluate
from recommender.ml.trainer import TrainConfig, train
from tests.ml.factories import (
    CONTENT_DIM,
    N_ITEMS,
    content_vectors,
    fresh_copy,
    planted_sequences,
    successor_map,
    tiny_config,
    trained,
)


def test_trained_model_ranks_the_planted_next_item_first_far_above_chance():
    rec = trained()
    nxt = successor_map()
    firsts = [rec.recommend([prev, item], k=1)[0].item_id for prev, item in nxt.items()]
    hit_rate = np.mean([first == nxt[item] for first, (_, item) in zip(firsts, nxt.items(), strict=True)])
    assert hit_rate >= 0.8, hit_rate  # chance is 1 / 40
    assert rec.metadata["metrics"]["val_ndcg@10"] > 0.6


def test_cold_item_with_text_close_to_a_popular_warm_item_beats_random_cold_items():
    rec = fresh_copy(trained())
    warm = content_vectors()
    rng = np.random.default_rng(7)
    nxt = successor_map()
    wins = 0
    for n, (prev, target) in enumerate(nxt.items()):
        twin = warm[nxt[target]] + 0.05 * rng.normal(size=CONTENT_DIM).astype(np.float32)
        randoms = rng.normal(size=(5, CONTENT_DIM)).astype(np.float32)
        cold = {f"twin{n}": twin / np.linalg.norm(twin)}
        cold |= {f"rand{n}_{j}": v / np.linalg.norm(v) for j, v in enumerate(randoms)}
        rec.add_items(cold)  # each round adds its own fresh ids
        top = rec.recommend([prev, target], k=1, allowed=list(cold))
        wins += top[0].item_id == f"twin{n}"
    assert wins / len(nxt) >= 0.8  # chance is 1 / 6


def test_cold_twin_of_the_next_item_ranks_high_among_all_items_warm_ones_included():
    """Against the whole catalogue, not only other cold items: content-only vectors used to rank last."""
    rec = fresh_copy(trained())
    warm = content_vectors()
    rng = np.random.default_rng(3)
    nxt = successor_map()
    ranks = []
    for n, (prev, target) in enumerate(nxt.items()):
        twin = warm[nxt[target]] + 0.05 * rng.normal(size=CONTENT_DIM).astype(np.float32)
        rec.add_items({f"twin{n}": twin / np.linalg.norm(twin)})
        listed = [r.item_id for r in rec.recommend([prev, target], k=10, exclude=[nxt[target]])]
        ranks.append(listed.index(f"twin{n}") if f"twin{n}" in listed else 10)
    assert np.mean(np.array(ranks) == 0) >= 0.8, ranks  # content alone: first in 0 of 40 here


def test_training_is_deterministic_for_a_seed():
    seqs = planted_sequences(60)
    config = tiny_config(epochs=2)
    a = train(seqs, config).recommender.recommend(["i1", "i2"], k=5)
    b = train(seqs, config).recommender.recommend(["i1", "i2"], k=5)
    assert a == b


def test_progress_reports_every_epoch_and_time_budget_stops_early():
    seen = []
    result = train(planted_sequences(60), tiny_config(epochs=50, max_minutes=1e-4), progress=seen.append)
    assert result.epochs_run == 1 and len(seen) == 1
    assert seen[0].epoch == 1 and seen[0].loss > 0 and seen[0].val_ndcg10 is not None


class SlowingClock:
    """A clock that ticks one second per reading, and `delay` more from the epoch `after` on.

    The trainer's time (its one boundary we do not own) made reproducible: a "busy machine"
    is a clock that jumps once.
    """

    def __init__(self, delay: float = 0.0, after: int = 0) -> None:
        self.now, self.delay, self.after = 0.0, delay, after

    def __call__(self) -> float:
        self.now += 1.0
        return self.now

    def progress(self, p) -> None:
        if p.epoch == self.after:
            self.now += self.delay


def test_a_time_budget_plans_whole_epochs_so_a_pause_does_not_change_the_model(monkeypatch):
    """The budget becomes an epoch count, and the learning rate follows that count, not the clock.

    Before, the schedule read the clock at every step: a run that paused once (a busy
    machine) decayed its learning rate differently from then on, and one seed gave two models.
    """
    seqs, config = planted_sequences(60), tiny_config(epochs=40, patience=40)
    monkeypatch.setattr(trainer, "_clock", SlowingClock())
    probe = train(seqs, tiny_config(epochs=3, max_minutes=1e6))  # a budget: the clock is read each step
    per_epoch = probe.seconds / 3
    config.max_minutes = 20 * per_epoch / 60  # room for about 20 of the 40 epochs

    runs = []
    for delay in (0.0, 0.25 * per_epoch):
        clock = SlowingClock(delay, after=trainer.PLAN_AFTER + 2)
        monkeypatch.setattr(trainer, "_clock", clock)
        runs.append(train(seqs, config, progress=clock.progress))
    steady, paused = runs
    assert trainer.PLAN_AFTER + 4 < steady.planned_epochs < config.epochs
    assert paused.planned_epochs == steady.planned_epochs == steady.epochs_run == paused.epochs_run
    assert [r["lr"] for r in paused.history] == [r["lr"] for r in steady.history]
    last = next(r for r in steady.history if r["epoch"] == steady.epochs_run)
    assert last["lr"] < 2 * config.lr * config.final_lr_ratio  # the planned decay ran to its end
    for (name, a), b in zip(
        steady.recommender.model.state_dict().items(),
        paused.recommender.model.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b), name


def _stalled_at(history: list[dict], patience: int) -> int:
    """The epoch whose validation was the patience-th in a row without a new best."""
    best, bad = -1.0, 0
    for record in history:
        if record["val_ndcg@10"] > best:
            best, bad = record["val_ndcg@10"], 0
        else:
            bad += 1
            if bad == patience:
                return record["epoch"]
    raise AssertionError("validation never stalled")


def test_a_plateau_at_a_high_learning_rate_decays_from_the_best_epoch_before_stopping():
    """Validation can stall while the learning rate is still high (a long schedule: a large time
    budget, or cheap epochs): stopping there serves a model that never trained at a low rate."""
    seqs = planted_sequences(120)
    valid = {u: s.items[-1] for u, s in seqs.items()}
    histories = {u: s.head(-1) for u, s in seqs.items()}
    config = tiny_config(epochs=80, patience=3, lr=3e-2, warmup=0)
    reports = []
    result = train(histories, config, valid_targets=valid, progress=reports.append)
    stalled = _stalled_at(result.history, config.patience)
    lrs = {r["epoch"]: r["lr"] for r in result.history}
    assert lrs[stalled] > 0.5 * config.lr  # early in the schedule: the cosine had barely begun
    # Then `patience` more epochs, the rate falling linearly to the schedule's last one.
    assert result.epochs_run == stalled + config.patience < config.epochs
    decay = [lrs[e] for e in range(stalled, result.epochs_run + 1)]
    assert decay == sorted(decay, reverse=True)
    assert lrs[result.epochs_run] == pytest.approx(config.lr * config.final_lr_ratio)
    assert reports[-1].epochs == result.epochs_run  # progress counts to the decay's end
    # The served model is the best one seen, before or during the decay.
    assert result.metrics["val_ndcg@10"] == max(r["val_ndcg@10"] for r in result.history)

    # A rate already at its floor has nothing to decay: the run stops where validation stalled.
    flat = train(
        histories,
        tiny_config(epochs=80, patience=3, lr=3e-3, warmup=0, final_lr_ratio=1.0),
        valid_targets=valid,
    )
    assert flat.epochs_run == _stalled_at(flat.history, 3) < 80


def test_resume_keeps_what_was_learned_and_grows_the_item_table():
    first = train(planted_sequences(), tiny_config(epochs=8), content=content_vectors()).recommender
    new_items = {f"new{j}" for j in range(3)}
    more = dict(planted_sequences(100, seed=5))
    more["fresh"] = UserSequence(["i1", "new0", "new1", "new2", "i2"])
    refreshed = train(more, tiny_config(epochs=2, lr=1e-3), content=content_vectors(), resume_from=first)
    rec = refreshed.recommender
    assert rec.item_ids[:N_ITEMS] == first.item_ids[:N_ITEMS]
    assert new_items <= set(rec.item_ids)
    nxt = successor_map()
    hits = np.mean([rec.recommend([p, i], k=1)[0].item_id == nxt[i] for p, i in nxt.items()])
    assert hits >= 0.8


def test_sampled_softmax_also_learns_the_pattern():
    config = tiny_config(sampled_softmax_negatives=16, epochs=15)
    rec = train(planted_sequences(), config).recommender
    nxt = successor_map()
    hits = np.mean([rec.recommend([p, i], k=1)[0].item_id == nxt[i] for p, i in nxt.items()])
    assert hits >= 0.7


def test_default_config_is_the_documented_one():
    config = TrainConfig()
    assert config.max_len == 200 and config.sampled_softmax_negatives is None and config.seed == 0


def gapped_sequences(n_users: int = 300, seed: int = 0) -> dict[str, UserSequence]:
    """Chain items a0 -> a1 -> ... (a cycle) with a random filler item between every two of them.

    After a chain item the next event is unpredictable; the one after it is certain.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for u in range(n_users):
        start = int(rng.integers(20))
        seq: list[str] = []
        for j in range(int(rng.integers(5, 10))):
            seq += [f"a{(start + j) % 20}", f"f{rng.integers(20)}"]
        out[f"u{u}"] = UserSequence(seq)
    return out


def test_later_targets_rank_the_item_two_steps_on_when_the_next_one_is_unpredictable():
    sequences = gapped_sequences()
    histories = [([f"f{(n + 3) % 20}", f"a{n}"], f"a{(n + 1) % 20}") for n in range(20)]
    for later_targets, expect_first in [(0, False), (1, True)]:
        config = tiny_config(later_targets=later_targets, later_weight=0.5, epochs=16)
        rec = train(sequences, config).recommender
        firsts = [rec.recommend(history, k=1)[0].item_id == after_next for history, after_next in histories]
        # Next-item loss alone spreads the mass over the fillers; later targets put the chain item first.
        if expect_first:
            assert np.mean(firsts) >= 0.75, firsts
        else:
            assert np.mean(firsts) <= 0.2, firsts


def with_a_late_item(n_users: int = 300) -> dict[str, UserSequence]:
    """Planted sequences where 60 users end on "late", an item that occurs nowhere else."""
    seqs = planted_sequences(n_users)
    for user in sorted(seqs)[:60]:
        seq = seqs[user]
        seqs[user] = seq.appended("late", timestamp=seq.timestamps[-1] + 1000.0)
    return seqs


def test_an_item_seen_only_in_last_events_is_trained_in_the_served_model():
    """The holdout chooses the stopping point; the served model then learns the held-out events too."""
    seen: dict = {}

    def before(rec) -> None:
        row = rec.row("late")
        seen["trained"] = bool(rec.model.items.trained[row])
        seen["vector"] = rec.model.items.ids(torch.tensor([row]))[0].detach().clone()

    result = train(with_a_late_item(), tiny_config(epochs=6), before_refit=before)
    rec = result.recommender
    row = rec.row("late")
    assert seen["trained"] is False  # the chosen model never learned it: it was held out
    assert bool(rec.model.items.trained[row])
    assert not torch.equal(rec.model.items.ids(torch.tensor([row]))[0].detach(), seen["vector"])
    assert result.refit_epochs == 1 and result.history[-1]["refit"] is True
    assert rec.metadata["data"]["events"] == sum(len(s) for s in with_a_late_item().values())


def test_only_items_readers_read_get_an_id_row_held_out_ones_included():
    """A catalogue's unread items have no learned ID: the ID table (and its optimizer state) skips them."""
    content = content_vectors() | {f"unread{j}": np.eye(CONTENT_DIM, dtype=np.float16)[j] for j in range(10)}
    rec = train(with_a_late_item(), tiny_config(epochs=2), content=content).recommender
    table = rec.model.items
    read = {i for s in with_a_late_item().values() for i in s.items}
    assert "late" in read and len(rec.item_ids) == len(read) + 10
    id_rows = [int(table.id_row[rec.row(i)]) for i in sorted(read)]
    assert sorted(id_rows) == list(range(1, len(read) + 1))  # one row each, none shared
    assert rec.model.config.n_id_rows == len(table.id.weight) == len(read) + 1
    assert all(int(table.id_row[rec.row(f"unread{j}")]) == 0 for j in range(10))
    assert table.content.dtype == torch.float16  # the half-precision vectors went in as given
    assert torch.equal(table.content[rec.row("unread3")], torch.from_numpy(content["unread3"]))


def test_an_item_fewer_readers_than_min_id_readers_read_has_no_id_of_its_own_and_is_still_a_target():
    """An ID learned from one reader is that reader's taste, not the item's (demo: off-topic reasons)."""
    seqs = planted_sequences(60)
    for n, user in enumerate(sorted(seqs)[:3]):  # "rare" has one reader, "pair" two, "trio" three
        seq = seqs[user]
        for item in ("rare", "pair", "trio")[n:]:
            seq = seq.appended(item, timestamp=seq.timestamps[-1] + 1000.0)
        seqs[user] = seq.appended("i1", timestamp=seq.timestamps[-1] + 1000.0)
    rng = np.random.default_rng(3)
    content = content_vectors() | {
        i: rng.normal(size=CONTENT_DIM).astype(np.float32) for i in ("rare", "pair", "trio")
    }
    rec = train(seqs, tiny_config(epochs=2, min_id_readers=2), content=content).recommender
    table = rec.model.items
    rows = {i: rec.row(i) for i in ("rare", "pair", "trio")}
    assert int(table.id_row[rows["rare"]]) == 0
    assert int(table.id_row[rows["pair"]]) > 0 and int(table.id_row[rows["trio"]]) > 0
    assert rec.model.config.n_id_rows == N_ITEMS + 2 + 1  # the planted items, pair and trio, padding
    assert all(bool(table.trained[r]) for r in rows.values())  # all three stay in the training softmax
    with torch.no_grad():
        served = rec.model.item_matrix()
        alone = table.side(torch.tensor(list(rows.values())))
    shared = table.id.weight[0]  # the one ID vector of every item without a row of its own
    assert torch.allclose(served[rows["rare"]], alone[0] + shared, atol=1e-6)
    assert not torch.allclose(served[rows["pair"]], alone[1] + shared, atol=1e-3)


def test_resuming_gives_new_read_items_id_rows_and_keeps_the_learned_ones():
    first = train(planted_sequences(), tiny_config(epochs=2), content=content_vectors()).recommender
    old = first.model.items
    more = dict(planted_sequences(50, seed=5))
    more["fresh"] = UserSequence(["i1", "new0", "new1", "i2"])
    rec = train(more, tiny_config(epochs=1, lr=0.0), content=content_vectors(), resume_from=first).recommender
    table = rec.model.items
    assert rec.model.config.n_id_rows == first.model.config.n_id_rows + 2
    before = len(old.id.weight)
    assert {int(table.id_row[rec.row(i)]) for i in ("new0", "new1")} == {before, before + 1}
    rows = torch.tensor([first.row(f"i{j}") for j in range(N_ITEMS)])
    assert torch.equal(table.id_row[rows], old.id_row[rows])
    assert torch.equal(table.id.weight[: len(old.id.weight)], old.id.weight)  # lr 0: nothing moved


def test_without_a_refit_the_held_out_item_stays_untrained():
    """The counterpart: refit_epochs=0 serves the model chosen on the holdout, which never saw "late"."""
    rec = train(with_a_late_item(), tiny_config(epochs=6, refit_epochs=0)).recommender
    assert not bool(rec.model.items.trained[rec.row("late")])


def test_holdout_users_holds_out_only_a_sample_of_last_events():
    """Readers outside the sample learn their last event in training, before any refit."""
    seqs = planted_sequences(100)
    for user in sorted(seqs):
        seqs[user] = seqs[user].appended(f"last-{user}", timestamp=seqs[user].timestamps[-1] + 1000.0)
    result = train(seqs, tiny_config(epochs=1, refit_epochs=0, holdout_users=20))
    rec = result.recommender
    untrained = [u for u in seqs if not bool(rec.model.items.trained[rec.row(f"last-{u}")])]
    assert len(untrained) == 20
    assert result.validated_users == 20  # validated on exactly the held-out sample


def test_explicit_validation_targets_leave_nothing_to_refit():
    seqs = planted_sequences(60)
    valid = {u: s.items[-1] for u, s in seqs.items()}
    result = train({u: s.head(-1) for u, s in seqs.items()}, tiny_config(epochs=2), valid_targets=valid)
    assert result.refit_epochs == 0 and not any(r.get("refit") for r in result.history)


def test_a_catalogue_above_the_exact_softmax_limit_trains_with_sampled_negatives(monkeypatch):
    from recommender.ml import trainer

    monkeypatch.setattr(trainer, "AUTO_NEGATIVES", 16)
    rec = train(planted_sequences(), tiny_config(full_softmax_max_items=N_ITEMS - 1, epochs=15)).recommender
    assert rec.metadata["loss"] == "sampled softmax, 16 negatives"
    nxt = successor_map()
    hits = np.mean([rec.recommend([p, i], k=1)[0].item_id == nxt[i] for p, i in nxt.items()])
    assert hits >= 0.7
    assert train(planted_sequences(60), tiny_config(epochs=1)).recommender.metadata["loss"] == "exact softmax"


def test_the_served_weights_are_the_best_epochs_and_the_item_tables_are_untouched():
    """The best epoch's parameters are restored (buffers never change in training: they are not copied)."""
    seqs = planted_sequences(120)
    valid = {u: s.items[-1] for u, s in seqs.items()}
    histories = {u: s.head(-1) for u, s in seqs.items()}
    config = tiny_config(epochs=12, patience=12, lr=3e-2, final_lr_ratio=1.0, warmup=0)
    result = train(histories, config, content=content_vectors(), valid_targets=valid)
    metrics, ran = result.metrics, result.epochs_run
    assert metrics["best_epoch"] < ran  # a later epoch scored lower: the restore is what is checked
    again = evaluate(result.recommender, histories, valid, ks=(10,))
    assert again["ndcg@10"] == metrics["val_ndcg@10"]
    content = result.recommender.model.items.content
    for item, vector in content_vectors().items():
        assert torch.equal(content[result.recommender.row(item)], torch.from_numpy(vector).to(content.dtype))


def test_training_windows_hold_every_step_of_a_long_history_exactly_once():
    seq = UserSequence([f"i{n}" for n in range(10)])
    windows = trainer._windows([seq], 4, whole=True)
    steps = [(w.items[j], w.items[j + 1]) for w in windows for j in range(len(w) - 1)]
    assert sorted(steps) == sorted((f"i{n}", f"i{n + 1}") for n in range(9))
    assert max(len(w) for w in windows) == 4
    assert [w.items for w in trainer._windows([seq], 4, whole=False)] == [["i6", "i7", "i8", "i9"]]


def early_chain_sequences(n_users: int = 200, seed: int = 0) -> dict[str, UserSequence]:
    """Histories whose first 12 events follow a chain b0 -> b1 -> ... (a cycle of 10) and whose
    last 12 are random: past max_len, only the whole history holds the chain."""
    rng = np.random.default_rng(seed)
    out = {}
    for u in range(n_users):
        start = int(rng.integers(10))
        early = [f"b{(start + j) % 10}" for j in range(12)]
        out[f"u{u}"] = UserSequence(early + [f"r{rng.integers(30)}" for _ in range(12)])
    return out


def test_whole_histories_learn_what_only_the_events_before_the_last_window_hold():
    sequences = early_chain_sequences()
    for whole, expect in [(False, False), (True, True)]:
        rec = train(sequences, tiny_config(max_len=8, epochs=12, whole_histories=whole)).recommender
        firsts = [rec.recommend([f"b{n}"], k=1)[0].item_id == f"b{(n + 1) % 10}" for n in range(10)]
        if expect:
            assert np.mean(firsts) >= 0.8, firsts
        else:
            assert np.mean(firsts) <= 0.3, firsts


def test_check_overrides_names_an_unknown_field_or_a_wrong_type_and_accepts_the_rest():
    trainer.check_overrides({"d_model": 128, "lr": 1, "sampled_softmax_negatives": None, "bf16": False})
    for bad, message in [
        ({"d_modle": 8}, "Unknown training option(s): d_modle"),
        ({"d_model": "wide"}, "d_model: 'wide' is not of type int"),
        ({"n_layers": True}, "n_layers: True is not of type int"),
        ({"bf16": 1}, "bf16: 1 is not of type bool"),
        ({"device": None}, "device: None is not of type str"),
    ]:
        with pytest.raises(ValueError) as caught:
            trainer.check_overrides(bad)
        assert str(caught.value) == message
