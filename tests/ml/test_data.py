"""Building training sequences from raw events, and the evaluation splits."""

from recommender.ml.data import (
    Event,
    UserSequence,
    build_sequences,
    gap_buckets,
    histories_for_test,
    leave_one_out,
    time_split,
)


def test_sequences_are_chronological_whatever_the_input_order():
    events = [Event("u", "b", 20.0), Event("u", "a", 10.0), Event("u", "c", 30.0), Event("v", "x", 5.0)]
    seqs = build_sequences(events)
    assert seqs["u"].items == ["a", "b", "c"]
    assert seqs["u"].timestamps == [10.0, 20.0, 30.0]
    assert seqs["v"].items == ["x"]


def test_consecutive_duplicates_collapse_keeping_the_stronger_event_type():
    events = [
        Event("u", "a", 1, "view"),
        Event("u", "a", 2, "purchase"),
        Event("u", "a", 3, "view"),
        Event("u", "b", 4, "view"),
        Event("u", "a", 5, "view"),
    ]
    seq = build_sequences(events, event_weights={"view": 1.0, "purchase": 3.0})["u"]
    assert seq.items == ["a", "b", "a"]  # only *consecutive* repeats merge
    assert seq.event_types == ["purchase", "view", "view"]
    assert seq.timestamps == [3.0, 4.0, 5.0]


def test_event_types_are_filtered_by_weight_and_by_include_list():
    events = [Event("u", "a", 1, "impression"), Event("u", "b", 2, "click"), Event("u", "c", 3, "like")]
    assert build_sequences(events, event_weights={"impression": 0.0})["u"].items == ["b", "c"]
    assert build_sequences(events, include_types={"click"})["u"].items == ["b"]


def test_sequences_keep_only_the_last_max_len_events_or_all_with_none():
    events = [Event("u", f"i{n}", n) for n in range(10)]
    assert build_sequences(events, max_len=3)["u"].items == ["i7", "i8", "i9"]
    assert build_sequences(events, max_len=None)["u"].items == [f"i{n}" for n in range(10)]


def test_leave_one_out_holds_out_last_for_test_and_second_to_last_for_validation():
    seqs = {"u": UserSequence(["a", "b", "c", "d"]), "short": UserSequence(["a", "b"])}
    split = leave_one_out(seqs)
    assert split.train["u"].items == ["a", "b"]
    assert (split.valid["u"], split.test["u"]) == ("c", "d")
    assert split.train["short"].items == ["a", "b"] and "short" not in split.test
    assert histories_for_test(split)["u"].items == ["a", "b", "c"]


def test_time_split_never_trains_or_validates_past_the_cutoff():
    seqs = {
        "u": UserSequence(["a", "b", "c", "d"], timestamps=[1, 2, 3, 4]),
        "late": UserSequence(["x"], timestamps=[9]),
    }
    split = time_split(seqs, cutoff=3.5)
    assert split.train["u"].items == ["a", "b"]
    assert split.valid["u"] == "c" and split.test["u"] == "d"
    assert "late" not in split.train


def test_gap_buckets_grow_with_the_time_between_events():
    buckets = gap_buckets([0.0, 1.0, 60.0, 86_400.0, 86_400.0 * 365])
    assert buckets[0] == 0
    assert buckets[1] < buckets[2] < buckets[3] < buckets[4]
