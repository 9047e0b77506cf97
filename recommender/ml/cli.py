"""Command line for training offline from exports and checking a model from outside the code.

    python -m recommender.ml train --events events.csv [--items items.csv] --out MODEL_DIR
    python -m recommender.ml recommend --model MODEL_DIR --histories h.jsonl --k 10 > out.jsonl
    python -m recommender.ml evaluate --model MODEL_DIR --events events.csv [--k 10]

events.csv: header, columns user_id,item_id,timestamp (optional event_type,value);
timestamp is seconds or ISO 8601. items.csv: item_id,text (optional tags, |-separated).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from recommender.ml.artifact import ArtifactError, load_artifact, save_artifact
from recommender.ml.data import Event, build_sequences
from recommender.ml.inference import Recommender
from recommender.ml.metrics import evaluate, popularity_baseline
from recommender.ml.trainer import TrainConfig, TrainProgress, train

BATCH = 256


class InputError(Exception):
    """A malformed input file; the message names the file and line."""


def _timestamp(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def read_events(path: Path) -> Iterator[Event]:
    """Events from a CSV export; a bad row raises InputError with its line number."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"user_id", "item_id", "timestamp"} - set(reader.fieldnames or [])
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for row in reader:
            try:
                value = row.get("value")
                yield Event(
                    user=row["user_id"],
                    item=row["item_id"],
                    timestamp=_timestamp(row["timestamp"]),
                    event_type=row.get("event_type") or "view",
                    value=float(value) if value not in (None, "") else None,
                )
            except (ValueError, TypeError, AttributeError) as exc:
                raise InputError(f"{path}:{reader.line_num}: malformed row: {exc}") from exc


def read_items(path: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """item id -> text, and item id -> tag names."""
    texts: dict[str, str] = {}
    tags: dict[str, list[str]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"item_id", "text"} - set(reader.fieldnames or [])
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for row in reader:
            if not row["item_id"] or row["text"] is None:
                raise InputError(f"{path}:{reader.line_num}: malformed row")
            texts[row["item_id"]] = row["text"]
            names = [t.strip() for t in (row.get("tags") or "").split("|") if t.strip()]
            if names:
                tags[row["item_id"]] = names
    return texts, tags


def _print_progress(p: TrainProgress) -> None:
    val = f"{p.val_ndcg10:.4f}" if p.val_ndcg10 is not None else "-"
    eta = f"{p.eta_seconds:.0f}s" if p.eta_seconds is not None else "-"
    print(f"epoch {p.epoch}/{p.epochs}  loss {p.loss:.4f}  val ndcg@10 {val}  eta {eta}", file=sys.stderr)


def cmd_train(args: argparse.Namespace) -> int:
    sequences = build_sequences(read_events(Path(args.events)), max_len=args.max_len)
    content = tags = embedder_name = None
    if args.items:
        from recommender.ml.embedder import Embedder  # only when texts are given: loading it takes time

        texts, tags = read_items(Path(args.items))
        embedder = Embedder(args.embedder, device=args.device)
        ids = list(texts)
        vectors = embedder.encode([texts[i] for i in ids])
        content = dict(zip(ids, vectors, strict=True))
        embedder_name = embedder.name
    config = TrainConfig(
        epochs=args.epochs,
        max_minutes=args.max_minutes,
        device=args.device,
        seed=args.seed,
        max_len=args.max_len,
    )
    result = train(
        sequences,
        config,
        content=content,
        tags=tags or None,
        embedder_name=embedder_name,
        progress=_print_progress,
    )
    digest = save_artifact(result.recommender, args.out)
    summary = {
        "out": str(args.out),
        "sha256": digest,
        "epochs": result.epochs_run,
        "seconds": round(result.seconds, 1),
    }
    print(json.dumps({**summary, **result.metrics}))
    return 0


def _parse_history_line(line: str) -> tuple[object, list[str], list[str]]:
    record = json.loads(line)
    if not isinstance(record, dict):
        raise ValueError("expected a JSON object")
    history = record.get("history")
    exclude = record.get("exclude", [])
    if not isinstance(history, list) or not all(isinstance(i, str) for i in history):
        raise ValueError('"history" must be a list of item id strings')
    if not isinstance(exclude, list) or not all(isinstance(i, str) for i in exclude):
        raise ValueError('"exclude" must be a list of item id strings')
    return record.get("user"), history, exclude


def _flush(
    rec: Recommender, batch: list[tuple[object, list[str], list[str]]], args: argparse.Namespace
) -> None:
    lists = rec.recommend_batch(
        [h for _, h, _ in batch], args.k, excludes=[e for _, _, e in batch], allow_seen=args.allow_seen
    )
    for (user, _, _), recs in zip(batch, lists, strict=True):
        out = {"user": user, "items": [r.item_id for r in recs], "scores": [round(r.score, 6) for r in recs]}
        sys.stdout.write(json.dumps(out) + "\n")
    batch.clear()


def cmd_recommend(args: argparse.Namespace) -> int:
    """One output line per well-formed input line, in input order; exit 1 if any line was malformed."""
    rec = load_artifact(args.model)
    rec.new_item_boost = args.new_item_boost
    batch: list[tuple[object, list[str], list[str]]] = []
    bad = 0
    with open(args.histories, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                user, history, exclude = _parse_history_line(line)
            except ValueError as exc:  # json.JSONDecodeError is a ValueError
                print(f"{args.histories}:{number}: malformed line skipped: {exc}", file=sys.stderr)
                bad += 1
                continue
            unknown = [i for i in history if i not in rec]
            if unknown:
                shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
                print(f"{args.histories}:{number}: skipping unknown item id(s): {shown}", file=sys.stderr)
            batch.append((user, [i for i in history if i in rec], exclude))
            if len(batch) >= BATCH:
                _flush(rec, batch, args)
    if batch:
        _flush(rec, batch, args)
    return 1 if bad else 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Each user's last event is the target, the rest the history; model next to popularity."""
    sequences = build_sequences(read_events(Path(args.events)), max_len=10_000)
    histories = {u: s.head(-1) for u, s in sequences.items() if len(s) >= 2}
    targets = {u: s.items[-1] for u, s in sequences.items() if len(s) >= 2}
    rec = load_artifact(args.model)
    ks = (args.k,)
    result = {"model": evaluate(rec, histories, targets, ks=ks)}
    result["popularity"] = popularity_baseline(histories, histories, targets, ks=ks)
    print(json.dumps(result))
    return 0


def _finite(text: str) -> float:
    """A float argument that is a number: argparse's float() also takes 'inf' and 'nan'."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m recommender.ml", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model from an events CSV and save the artifact")
    p.add_argument("--events", required=True)
    p.add_argument("--items", help="item_id,text[,tags] CSV: content vectors for cold start")
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-len", type=int, default=TrainConfig.max_len)
    p.add_argument(
        "--embedder", default=None, help="sentence-transformers name or path (default: bundled MiniLM)"
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("recommend", help="recommend for each history in a JSON-lines file")
    p.add_argument("--model", required=True)
    p.add_argument("--histories", required=True)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--allow-seen", action="store_true", help="allow items already in the history")
    p.add_argument(
        "--new-item-boost",
        type=_finite,
        default=0.0,
        help="logit added to items the model was not trained on",
    )
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser("evaluate", help="leave-last-out full-ranking metrics of a model on an events CSV")
    p.add_argument("--model", required=True)
    p.add_argument("--events", required=True)
    p.add_argument("--k", type=int, default=10)
    p.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (InputError, ArtifactError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
