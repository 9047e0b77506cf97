"""Command line for training offline from exports and checking a model from outside the code.

    python -m recommender.ml train --events events.csv [--items items.csv] --out MODEL_DIR
    torchrun --nproc-per-node 2 -m recommender.ml train ...   # the same, in 2 processes (DDP)
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
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TextIO

import numpy as np

from recommender.ml import distributed
from recommender.ml.artifact import ArtifactError, load_artifact, save_artifact
from recommender.ml.data import Event, build_sequences
from recommender.ml.inference import Recommender
from recommender.ml.metrics import evaluate, popularity_baseline
from recommender.ml.trainer import TrainConfig, TrainProgress, check_overrides, resolve_device, train

BATCH = 256


class InputError(Exception):
    """A malformed input file; the message names the file, the line and, if one is at fault, the column."""


def _where(path: Path, line: int, column: int | None = None, name: str | None = None) -> str:
    """The position every input error starts with: file:line: or file:line: column N (name):"""
    at = f"{path}:{line}:"
    if column is not None:
        at += f" column {column}" + (f" ({name})" if name else "") + ":"
    return at


def _timestamp(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class _Rows:
    """CSV rows with the file position of each field, so an error can point at the bad one."""

    def __init__(self, path: Path, handle: TextIO, required: Sequence[str]) -> None:
        self.path = path
        self.reader = csv.DictReader(handle)
        with self._located():
            header = self.reader.fieldnames or []
        missing = set(required) - set(header)
        if missing:
            have = ", ".join(map(repr, header)) if header else "nothing (empty file)"  # repr shows a BOM
            raise InputError(
                f"{_where(path, 1)} missing column(s) {', '.join(sorted(missing))}; the header has: {have}"
            )
        # DictReader keeps the last of duplicate names, and so does this mapping.
        self.columns = {name: number for number, name in enumerate(header, start=1)}
        self.width = len(header)

    @contextmanager
    def _located(self) -> Iterator[None]:
        """Turn the reader's own errors (bad bytes, csv.Error) into InputErrors with a position."""
        try:
            yield
        except UnicodeDecodeError as exc:  # before csv.Error: the decoder fails ahead of the parser
            raise _not_utf8(self.path) from exc
        except csv.Error as exc:
            raise InputError(f"{_where(self.path, self.reader.reader.line_num)} {exc}") from exc

    def __iter__(self) -> Iterator[dict[str, str | None]]:
        with self._located():
            yield from self.reader

    def error(self, name: str, problem: str) -> InputError:
        """An InputError at the current row and the named column."""
        # The inner reader's line_num: DictReader's own copy is only updated after a row parses.
        return InputError(
            f"{_where(self.path, self.reader.reader.line_num, self.columns[name], name)} {problem}"
        )

    def field(self, row: Mapping[str, str | None], name: str) -> str:
        """The value of a required column; a row shorter than the header is an error, not None."""
        value = row[name]
        if value is None:
            width = sum(v is not None for k, v in row.items() if k is not None)
            raise self.error(name, f"missing: the row has {width} field(s), the header {self.width}")
        return value


def _not_utf8(path: Path) -> InputError:
    """Where the first byte that is not UTF-8 lies: line, CSV field and byte within the line.

    The decoder only reports a position inside the chunk it was reading, so the
    (rare) error path reads the raw bytes once more to find the line.
    """
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw.count(b"\n", 0, exc.start) + 1
        before = raw[line_start : exc.start].decode("utf-8", errors="replace")
        column = len(next(csv.reader([before]), [""])) or 1
        header = next(csv.reader([raw.split(b"\n", 1)[0].decode("utf-8", errors="replace")]), [])
        name = header[column - 1] if line > 1 and column <= len(header) else None
        return InputError(
            f"{_where(path, line, column, name)} not UTF-8 text "
            f"(byte 0x{raw[exc.start]:02x} at byte {exc.start - line_start + 1} of the line)"
        )
    return InputError(f"{path}: not UTF-8 text")


def read_events(path: Path) -> Iterator[Event]:
    """Events from a CSV export; a bad row raises InputError naming its line and column."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = _Rows(path, handle, ("user_id", "item_id", "timestamp"))
        for row in rows:
            user, item, stamp = (
                rows.field(row, "user_id"),
                rows.field(row, "item_id"),
                rows.field(row, "timestamp"),
            )
            try:
                timestamp = _timestamp(stamp)
            except ValueError:
                raise rows.error("timestamp", f"{stamp!r} is not a number or an ISO 8601 time") from None
            value = row.get("value")
            try:
                number = float(value) if value not in (None, "") else None
            except ValueError:
                raise rows.error("value", f"{value!r} is not a number") from None
            yield Event(
                user=user,
                item=item,
                timestamp=timestamp,
                event_type=row.get("event_type") or "view",
                value=number,
            )


def read_items(path: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """item id -> text, and item id -> tag names; a bad row raises InputError naming its line and column."""
    texts: dict[str, str] = {}
    tags: dict[str, list[str]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        rows = _Rows(path, handle, ("item_id", "text"))
        for row in rows:
            item_id = rows.field(row, "item_id")
            if not item_id:
                raise rows.error("item_id", "empty")
            text = rows.field(row, "text")
            texts[item_id] = text
            names = [t.strip() for t in (row.get("tags") or "").split("|") if t.strip()]
            if names:
                tags[item_id] = names
    return texts, tags


def _print_progress(p: TrainProgress) -> None:
    val = f"{p.val_ndcg10:.4f}" if p.val_ndcg10 is not None else "-"
    eta = f"{p.eta_seconds:.0f}s" if p.eta_seconds is not None else "-"
    print(f"epoch {p.epoch}/{p.epochs}  loss {p.loss:.4f}  val ndcg@10 {val}  eta {eta}", file=sys.stderr)


def cmd_train(args: argparse.Namespace) -> int:
    """Train and write the artifact; under ``torchrun`` every rank trains its share, rank 0 writes."""
    several = distributed.init_from_env(resolve_device(args.device))
    try:
        return _train(args)
    finally:
        if several:
            distributed.finish()


def _train(args: argparse.Namespace) -> int:
    # Whole histories, as bench.quality passes them: train() cuts each to config.max_len itself
    # (after its holdout). Cutting here too left every long history two events short.
    sequences = build_sequences(read_events(Path(args.events)), max_len=None)
    content = tags = embedder_name = None
    if args.items:
        from recommender.ml.embedder import Embedder  # only when texts are given: loading it takes time

        texts, tags = read_items(Path(args.items))
        embedder = Embedder(args.embedder, device=args.device)
        ids = list(texts)
        # In half precision, as the model stores them: half the memory of float32 vectors.
        vectors = embedder.encode([texts[i] for i in ids]).astype(np.float16)
        content = dict(zip(ids, vectors, strict=True))
        embedder_name = embedder.name
    config = TrainConfig(
        epochs=args.epochs,
        max_minutes=args.max_minutes,
        device=args.device,
        seed=args.seed,
        max_len=args.max_len,
        **(args.config or {}),
    )
    result = train(
        sequences,
        config,
        content=content,
        tags=tags or None,
        embedder_name=embedder_name,
        progress=_print_progress,
    )
    rank, size = distributed.world()
    if rank != 0:
        return 0
    digest = save_artifact(result.recommender, args.out)
    summary = {
        "out": str(args.out),
        "sha256": digest,
        "epochs": result.epochs_run,
        "planned_epochs": result.planned_epochs,
        "seconds": round(result.seconds, 1),
        "epoch_seconds": [round(r["seconds"], 2) for r in result.history if not r.get("refit")],
        "processes": size,
    }
    print(json.dumps({**summary, **result.metrics}))
    return 0


def _parse_history_line(line: str) -> tuple[object, list[str], list[str]]:
    """user, history, exclude of one JSON line; a ValueError names the column or field at fault."""
    if not line.isascii():
        try:
            line.encode("utf-8")
        except UnicodeEncodeError as exc:  # the file is read with surrogateescape: a byte that is not UTF-8
            raise ValueError(f"column {exc.start + 1}: not UTF-8 text") from exc
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"column {exc.colno}: {exc.msg}") from exc
    if not isinstance(record, dict):
        column = len(line) - len(line.lstrip()) + 1
        raise ValueError(f"column {column}: expected a JSON object, got {type(record).__name__}")
    history = record.get("history")
    exclude = record.get("exclude", [])
    if not isinstance(history, list) or not all(isinstance(i, str) for i in history):
        raise ValueError('field "history": must be a list of item id strings')
    if not isinstance(exclude, list) or not all(isinstance(i, str) for i in exclude):
        raise ValueError('field "exclude": must be a list of item id strings')
    return record.get("user"), history, exclude


def _flush(
    rec: Recommender, batch: list[tuple[object, list[str], list[str]]], args: argparse.Namespace
) -> None:
    lists = rec.recommend_batch(
        [h for _, h, _ in batch],
        args.k,
        excludes=[e for _, _, e in batch],
        allow_seen=args.allow_seen,
        explain=False,
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
    # surrogateescape: a line that is not UTF-8 is reported and skipped like any malformed line.
    with open(args.histories, encoding="utf-8", errors="surrogateescape") as handle:
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
    sequences = build_sequences(read_events(Path(args.events)), max_len=None)
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


# TrainConfig fields that `train` sets from options of their own
OWN_OPTIONS = {
    "epochs": "--epochs",
    "max_minutes": "--max-minutes",
    "device": "--device",
    "seed": "--seed",
    "max_len": "--max-len",
}


def train_overrides(text: str) -> dict:
    """--config: TrainConfig fields by name, checked (check_overrides) so a typo fails before any training."""
    try:
        found = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc.msg}") from None
    if not isinstance(found, dict):
        raise argparse.ArgumentTypeError("must be a JSON object of TrainConfig fields")
    for name in found:
        if name in OWN_OPTIONS:
            raise argparse.ArgumentTypeError(f"{name}: use {OWN_OPTIONS[name]}")
    try:
        check_overrides(found)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return found


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; every option's help states its default, so --help is the reference."""
    parser = argparse.ArgumentParser(prog="python -m recommender.ml", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(
        dest="command", required=True, help="what to do; COMMAND --help for its options"
    )

    about = "train a model from an events CSV and save the artifact"
    p = sub.add_parser("train", help=about, description=about)
    p.add_argument(
        "--events", required=True, help="CSV with user_id,item_id,timestamp[,event_type,value] (required)"
    )
    p.add_argument(
        "--items",
        help="CSV with item_id,text[,tags]: content vectors for cold start (default: none, IDs only)",
    )
    p.add_argument("--out", required=True, help="directory to write the model artifact to (required)")
    p.add_argument(
        "--epochs",
        type=int,
        default=TrainConfig.epochs,
        help="most epochs to train; early stopping may end sooner (default: %(default)s)",
    )
    p.add_argument(
        "--max-minutes", type=float, default=None, help="wall-clock budget for training (default: no limit)"
    )
    p.add_argument(
        "--device",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="where to train and embed; auto picks cuda when a GPU is visible (default: %(default)s)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument(
        "--max-len",
        type=int,
        default=TrainConfig.max_len,
        help="most recent events kept per user (default: %(default)s)",
    )
    p.add_argument(
        "--config",
        type=train_overrides,
        default=None,
        help="JSON object of other TrainConfig fields, e.g. '{\"d_model\": 128}' (default: none)",
    )
    p.add_argument(
        "--embedder",
        default=None,
        help="sentence-transformers name or path, used with --items (default: bundled all-MiniLM-L6-v2)",
    )
    p.set_defaults(func=cmd_train)

    about = "recommend for each history in a JSON-lines file"
    p = sub.add_parser("recommend", help=about, description=about)
    p.add_argument("--model", required=True, help="model artifact directory written by train (required)")
    p.add_argument(
        "--histories",
        required=True,
        help='JSON lines {"user": ..., "history": [ids], "exclude": [ids]} (required)',
    )
    p.add_argument("--k", type=int, default=10, help="recommendations per line (default: %(default)s)")
    p.add_argument(
        "--allow-seen", action="store_true", help="allow items already in the history (default: off)"
    )
    p.add_argument(
        "--new-item-boost",
        type=_finite,
        default=0.0,
        help="logit added to items the model was not trained on (default: %(default)s)",
    )
    p.set_defaults(func=cmd_recommend)

    about = "leave-last-out full-ranking metrics of a model on an events CSV"
    p = sub.add_parser("evaluate", help=about, description=about)
    p.add_argument("--model", required=True, help="model artifact directory written by train (required)")
    p.add_argument(
        "--events", required=True, help="CSV with user_id,item_id,timestamp[,event_type,value] (required)"
    )
    p.add_argument(
        "--k", type=int, default=10, help="cut-off of the metrics, e.g. NDCG@k (default: %(default)s)"
    )
    p.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (InputError, ArtifactError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
