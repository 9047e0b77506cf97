"""`python -m recommender.ml` from outside the code: train from a CSV export, recommend from JSON lines."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

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
    (tmp_path / "h.jsonl").write_text(
        "\n".join(
            [
                json.dumps({"user": "ok", "history": ["nope-1", known]}),
                "{not json",
                json.dumps({"user": "bad", "history": "i1"}),
                json.dumps({"user": "empty", "history": ["nope-2"]}),
            ]
        )
    )
    done = run_cli("recommend", "--model", str(model_dir), "--histories", str(tmp_path / "h.jsonl"))
    assert done.returncode == 1  # some lines were malformed
    assert "h.jsonl:1: skipping unknown item id(s): nope-1" in done.stderr
    assert "h.jsonl:2: malformed line" in done.stderr and "h.jsonl:3: malformed line" in done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert [o["user"] for o in out] == ["ok", "empty"]
    assert len(out[0]["items"]) == 10 and out[1]["items"] == []


def test_a_malformed_events_file_or_corrupt_model_is_a_clear_error(model_dir, tmp_path):
    (tmp_path / "e.csv").write_text("user_id,item_id,timestamp\nu1,i1,100\nu1,i2,not-a-time\n")
    done = run_cli("train", "--events", str(tmp_path / "e.csv"), "--out", str(tmp_path / "m"))
    assert done.returncode == 2 and "e.csv:3: malformed row" in done.stderr
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
