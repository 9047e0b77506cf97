"""`python -m recommender.ml` from outside the code: train from a CSV export, recommend from JSON lines."""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from recommender.ml.artifact import load_artifact
from recommender.ml.cli import InputError, build_parser, main, read_items
from recommender.ml.trainer import TrainConfig, train
from tests.ml.factories import planted_sequences, successor_map

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "recommender.ml", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A model trained by the CLI on the planted pattern (events in shuffled row order)."""
    folder = tmp_path_factory.mktemp("cli")
    rows = [
        (user, item, f"{ts:.0f}")
        for user, seq in planted_sequences(200).items()
        for item, ts in zip(seq.items, seq.timestamps, strict=True)
    ]
    rows.reverse()  # the CLI must order each user's events by timestamp itself
    with (folder / "events.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "timestamp"])
        writer.writerows(rows)
    done = run_cli(
        "train", "--events", str(folder / "events.csv"), "--out", str(folder / "model"),
        "--epochs", "12", "--device", "cpu", "--max-len", "24",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["epochs"] >= 1 and len(summary["sha256"]) == 64
    assert "epoch 1/12" in done.stderr  # progress goes to stderr, the summary to stdout
    return folder / "model"


def test_recommend_answers_each_line_in_order_with_the_planted_next_item(model_dir, tmp_path):
    nxt = successor_map()
    pairs = list(nxt.items())[:20]
    lines = [json.dumps({"user": f"u{n}", "history": [p, i]}) for n, (p, i) in enumerate(pairs)]
    (tmp_path / "h.jsonl").write_text("\n".join(lines) + "\n")
    done = run_cli(
        "recommend", "--model", str(model_dir), "--histories", str(tmp_path / "h.jsonl"), "--k", "5"
    )
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert [o["user"] for o in out] == [f"u{n}" for n in range(len(pairs))]
    assert all(len(o["items"]) == 5 == len(o["scores"]) for o in out)
    hits = sum(o["items"][0] == nxt[i] for o, (_, i) in zip(out, pairs, strict=True))
    assert hits >= 0.8 * len(pairs)
    for o, (p, i) in zip(out, pairs, strict=True):  # history items are excluded by default
        assert p not in o["items"] and i not in o["items"]


def test_exclude_and_allow_seen(model_dir, tmp_path):
    nxt = successor_map()
    prev, item = next(iter(nxt.items()))
    lines = [
        {"user": "a", "history": [prev, item], "exclude": [nxt[item]]},
        {"user": "b", "history": [item, nxt[item], nxt[nxt[item]], item]},
    ]
    (tmp_path / "h.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    seen = run_cli(
        "recommend", "--model", str(model_dir), "--histories", str(tmp_path / "h.jsonl"), "--k", "40"
    )
    a, b = (json.loads(line) for line in seen.stdout.splitlines())
    assert nxt[item] not in a["items"]
    assert not {item, nxt[item], nxt[nxt[item]]} & set(b["items"])
    allowed = run_cli(
        "recommend", "--model", str(model_dir), "--histories", str(tmp_path / "h.jsonl"),
        "--k", "40", "--allow-seen",
    )  # fmt: skip
    b_allowed = json.loads(allowed.stdout.splitlines()[1])
    assert {item, nxt[item]} & set(b_allowed["items"])


def test_unknown_ids_are_skipped_with_a_warning_and_bad_lines_reported_by_number(model_dir, tmp_path):
    known = next(iter(successor_map()))
    (tmp_path / "h.jsonl").write_bytes(
        "\n".join(
            [
                json.dumps({"user": "ok", "history": ["nope-1", known]}),
                "{not json",
                json.dumps({"user": "bad", "history": "i1"}),
                json.dumps({"user": "empty", "history": ["nope-2"]}),
                '{"user": "latin-1", "history": ["caf\xe9"]}',
            ]
        ).encode("latin-1")  # the last line is not UTF-8
    )
    done = run_cli("recommend", "--model", str(model_dir), "--histories", str(tmp_path / "h.jsonl"))
    assert done.returncode == 1  # some lines were malformed
    assert "h.jsonl:1: skipping unknown item id(s): nope-1" in done.stderr
    assert "h.jsonl:2: malformed line skipped: column 2: Expecting property name" in done.stderr
    assert 'h.jsonl:3: malformed line skipped: field "history": must be a list' in done.stderr
    assert "h.jsonl:5: malformed line skipped: column 37: not UTF-8 text" in done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert [o["user"] for o in out] == ["ok", "empty"]
    assert len(out[0]["items"]) == 10 and out[1]["items"] == []


def test_a_malformed_events_file_or_corrupt_model_is_a_clear_error(model_dir, tmp_path):
    (tmp_path / "e.csv").write_text("user_id,item_id,timestamp\nu1,i1,100\nu1,i2,not-a-time\n")
    done = run_cli("train", "--events", str(tmp_path / "e.csv"), "--out", str(tmp_path / "m"))
    assert done.returncode == 2, done.stderr
    assert "e.csv:3: column 3 (timestamp): 'not-a-time' is not a number" in done.stderr
    assert "Traceback" not in done.stderr
    (tmp_path / "h.jsonl").write_text(json.dumps({"history": ["i1"]}))
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("metadata.json", "model.safetensors"):
        (broken / name).write_bytes((model_dir / name).read_bytes())
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100] + b"\0" * 100)
    done = run_cli("recommend", "--model", str(broken), "--histories", str(tmp_path / "h.jsonl"))
    assert done.returncode == 2 and "error:" in done.stderr and "Traceback" not in done.stderr
    histories = str(tmp_path / "h.jsonl")
    done = run_cli("recommend", "--model", str(model_dir), "--histories", histories, "--new-item-boost=inf")
    assert done.returncode == 2 and "must be a finite number" in done.stderr
    assert "Traceback" not in done.stderr


def test_every_subcommand_and_every_option_has_one_line_of_help_that_states_its_default():
    parser = build_parser()
    (commands,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(commands.choices) == {"train", "recommend", "evaluate"}
    listed = {a.dest: a.help for a in commands._choices_actions}  # the lines of `--help`
    for name, sub in commands.choices.items():
        assert listed.get(name) and "\n" not in listed[name], name
        assert sub.description and "\n" not in sub.description, name
        options = [a for a in sub._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]
        assert options, name
        for action in options:
            where = f"{name} {action.option_strings[0]}"
            assert action.help and action.help.strip(), f"{where} has no help"
            text = sub._get_formatter()._expand_help(action)  # %(default)s filled in, as --help shows it
            assert "\n" not in text, where
            assert ("(required)" if action.required else "(default: ") in text, f"{where}: {text!r}"
            if not action.required and action.default not in (None, False):
                assert f"(default: {action.default})" in text, f"{where}: {text!r}"
        assert "(default: " in sub.format_help()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            b"user_id,item_id,timestamp\nu1,i1,100\nu1,i2,abc\n",
            "3: column 3 (timestamp): 'abc' is not a number",
        ),
        (
            b"user_id,item_id,timestamp,event_type,value\nu1,i1,100,view,\nu1,i2,101,buy,lots\n",
            "3: column 5 (value): 'lots' is not a number",
        ),
        (b"user_id,item_id,timestamp\nu1,i1,100\nu1,i2\n", "3: column 3 (timestamp): missing"),
        (b"timestamp,user_id,item_id\n100,u1,i1\n101,u\xff,i2\n", "3: column 2 (user_id): not UTF-8"),
        (b"user_id,item,timestamp\nu1,i1,100\n", "1: missing column(s) item_id"),
    ],
    ids=["timestamp", "value", "short-row", "not-utf8", "header"],
)
@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_a_malformed_events_line_is_exit_2_naming_file_line_and_column(
    tmp_path, capsys, command, content, expected
):
    events = tmp_path / "events.csv"
    events.write_bytes(content)
    if command == "train":
        code = main(["train", "--events", str(events), "--out", str(tmp_path / "m"), "--device", "cpu"])
    else:  # the events are read before the model, so no model is needed to reach the error
        code = main(["evaluate", "--events", str(events), "--model", str(tmp_path / "none")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: {events}:{expected}"), err  # the position comes first
    assert err.count("\n") == 1 and not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"item_id,text\ni1,a text\n,another\n", "3: column 1 (item_id): empty"),
        (b"item_id,tags,text\ni1,x|y\n", "2: column 3 (text): missing"),
    ],
)
def test_a_malformed_items_line_names_file_line_and_column(tmp_path, content, expected):
    items = tmp_path / "items.csv"
    items.write_bytes(content)
    with pytest.raises(InputError) as raised:
        read_items(items)
    assert str(raised.value).startswith(f"{items}:{expected}")


def test_train_gives_the_model_the_library_trains_from_whole_histories(tmp_path):
    """The CLI hands train() whole histories, as bench.quality does: the same events, the same model.

    Cutting each history to --max-len before train() left every long history two events short
    of what the library trains on: with max_len shorter than the histories the models differed.
    """
    sequences = planted_sequences(60)
    with (tmp_path / "events.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "timestamp"])
        for user, seq in sequences.items():
            writer.writerows((user, i, f"{t:.0f}") for i, t in zip(seq.items, seq.timestamps, strict=True))
    done = run_cli(
        "train", "--events", str(tmp_path / "events.csv"), "--out", str(tmp_path / "cli"),
        "--epochs", "2", "--device", "cpu", "--max-len", "6", "--seed", "3",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    config = TrainConfig(epochs=2, device="cpu", max_len=6, seed=3)
    library = train(sequences, config).recommender
    cli = load_artifact(tmp_path / "cli")
    histories = [s.items for s in list(sequences.values())[:10]]
    for ours, theirs in zip(
        cli.recommend_batch(histories, 5), library.recommend_batch(histories, 5), strict=True
    ):
        assert [r.item_id for r in ours] == [r.item_id for r in theirs]
        assert [r.score for r in ours] == pytest.approx([r.score for r in theirs], rel=1e-4, abs=1e-5)


def write_events(path: Path, sequences) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user_id", "item_id", "timestamp"])
        for user, seq in sequences.items():
            writer.writerows((user, i, f"{t:.0f}") for i, t in zip(seq.items, seq.timestamps, strict=True))


def test_config_sets_other_train_config_fields_and_a_bad_one_is_exit_2_before_training(tmp_path):
    write_events(tmp_path / "events.csv", planted_sequences(40))
    base = ["train", "--events", str(tmp_path / "events.csv"), "--epochs", "1", "--device", "cpu"]
    done = run_cli(
        *base, "--out", str(tmp_path / "cli"), "--config", '{"d_model": 24, "whole_histories": true}'
    )
    assert done.returncode == 0, done.stderr
    trained_with = load_artifact(tmp_path / "cli").metadata["train_config"]
    assert trained_with["d_model"] == 24 and trained_with["whole_histories"] is True
    for bad, message in [
        ('{"d_modle": 24}', "Unknown training option(s): d_modle"),
        ('{"d_model": "wide"}', "d_model: 'wide' is not of type int"),
        ('{"bf16": 1}', "bf16: 1 is not of type bool"),
        ('{"epochs": 3}', "epochs: use --epochs"),
        ("[1]", "must be a JSON object"),
        ("{d_model: 24}", "not JSON"),
    ]:
        done = run_cli(*base, "--out", str(tmp_path / "bad"), "--config", bad)
        assert done.returncode == 2 and message in done.stderr, (bad, done.stderr)
        assert not (tmp_path / "bad").exists()
