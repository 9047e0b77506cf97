"""Training loop: sequences in, a ready-to-serve Recommender out.

Plain and separate from the model (nanoGPT style). What makes it fast enough for a
2-core CPU: every position of every sequence is a training example in one pass,
logits only where a target exists, batches grouped by length (little padding),
bf16 autocast. Early stopping on validation NDCG@10; a time budget is turned into
an epoch count from the first epochs' times, and the learning-rate schedule follows
that count, so a short run still ends decayed and a pause after the plan is made
does not change the model (two runs that plan different counts still differ).
"""

from __future__ import annotations

import functools
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import torch
from torch import Tensor

from recommender.ml import distributed, heap
from recommender.ml.data import UserSequence, gap_buckets
from recommender.ml.inference import BATCH, Recommender
from recommender.ml.metrics import evaluate
from recommender.ml.model import AGE_BUCKETS, Seq2SeqConfig, Seq2SeqRecommender, give_id_rows, grow_model

# Sampled negatives per batch when the catalogue is too large for the exact softmax. 1,024 on
# ML-1M (30 minutes, 2 cores) scored test NDCG@10 .1781, the exact softmax .1690 then and .1777
# at 9e006a2 (the sampled loss not re-run), and at 200k items an epoch took 126 s instead of
# 586 s with 8,192 (the logits' matmuls).
AUTO_NEGATIVES = 1024
# A budget is planned from the epochs up to this one (the first epochs run slower: kernels
# for new batch shapes are built then); a run with few epochs in its budget plans after the first.
PLAN_AFTER = 6
PLAN_MARGIN = 1.02  # an epoch may run this much slower than planned and still end in the budget
TYPICAL_READERS = 4096  # readers averaged into the typical reader's state (a sample beyond it)
# What validation reports (rank 0 validates and shares these with the other ranks).
VAL_KEYS = ["val_hr@10", "val_ndcg@10", "val_mrr", "val_coverage@10"]


@dataclass
class TrainConfig:
    """Hyper-parameters; the defaults are the ones chosen on ML-1M validation."""

    d_model: int = 64
    n_heads: int = 2
    n_layers: int = 2
    n_decoder_layers: int = 1
    dropout: float = 0.2
    max_len: int = 200
    list_len: int = 10  # decoder steps trained for list generation
    id_dropout: float = 0.1  # share of item IDs hidden per step (teaches content to rank cold items)
    # False: the encoder reads the history by content and tags only (Seq2SeqConfig.history_ids)
    history_ids: bool = True
    # items fewer distinct readers read get no ID of their own: a link learned from one or two
    # readers is their taste, not the item's (the off-topic "because you read" reasons on the demo)
    min_id_readers: int = 1
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.1
    warmup: int = 100  # optimizer steps of linear warm-up
    final_lr_ratio: float = 0.05  # the cosine decay ends at lr * this
    grad_clip: float = 1.0
    epochs: int = 200
    max_minutes: float | None = None  # wall-clock budget for the whole run
    # evaluations without a better validation NDCG@10 before stopping; while the learning rate
    # is still high, the best epoch's weights are restored and it decays over this many more first
    patience: int = 8
    eval_every: int = 1  # epochs between validations
    val_max_users: int | None = 10_000  # validate on a fixed random sample beyond this
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    bf16: bool = True  # autocast to bfloat16 (CUDA, and CPUs with AVX512-BF16/AMX)
    # None = chosen by catalogue size: the exact softmax over every item up to
    # full_softmax_max_items, above it AUTO_NEGATIVES sampled ones with log-Q correction
    # (and, above it, glibc's heap is held to a fixed mmap threshold: heap.py).
    sampled_softmax_negatives: int | None = None
    full_softmax_max_items: int = 50_000
    aux_positions: int = 2  # positions per sequence that train the list-writing decoder steps
    aux_weight: float = 0.3
    list_as_set: bool = False  # list steps learn every true next item not yet listed, not one exact order
    later_targets: int = 0  # items after the next one that each position also learns to predict
    later_weight: float = 0.5  # the weight of each of those in the loss (the next item has 1)
    refit_epochs: int = 1  # passes over every event after the holdout chose the model (0 = none)
    item_age: bool = True  # with publication times given, learn a logit by item age at the query time
    threads: int | None = None  # torch CPU threads (None = torch's default)
    # histories longer than max_len + 1 also train on their earlier events, as more rows (windows
    # of max_len + 1 that end where the next one starts); False: only each history's last window
    whole_histories: bool = False
    # readers whose last event is held out to choose the stopping point (a random sample; None =
    # every reader): the others train on their newest step from the first epoch, not only in the refit
    holdout_users: int | None = None


# JSON-like value types each TrainConfig annotation accepts (an int is a valid float)
_VALUE_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,), "None": (type(None),)}


def check_overrides(values: Mapping[str, object]) -> None:
    """ValueError for an override of TrainConfig that is unknown or of the wrong type.

    TrainConfig is a plain dataclass: a misspelt field or a string where a number goes
    would otherwise fail, or quietly train something else, only once training runs.
    """
    kinds = {f.name: str(f.type) for f in fields(TrainConfig)}
    unknown = sorted(set(values) - set(kinds))
    if unknown:
        raise ValueError(f"Unknown training option(s): {', '.join(unknown)}")
    for name, value in values.items():
        allowed = tuple(t for kind in kinds[name].split("|") for t in _VALUE_TYPES[kind.strip()])
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise ValueError(f"{name}: {value!r} is not of type {kinds[name]}")


@dataclass
class TrainProgress:
    epoch: int
    epochs: int
    loss: float
    val_ndcg10: float | None
    eta_seconds: float | None


@dataclass
class TrainResult:
    recommender: Recommender
    metrics: dict[str, float]  # best validation metrics: "val_ndcg@10", "val_hr@10", ...
    history: list[dict] = field(default_factory=list)
    epochs_run: int = 0
    seconds: float = 0.0
    device: str = "cpu"
    refit_epochs: int = 0  # passes over all events (held-out ones included) after the choice
    planned_epochs: int | None = None  # the epoch count a time budget allowed
    validated_users: int = 0  # readers whose held-out event chose the stopping point


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class _Vocab:
    """String ids <-> table rows (row 0 is padding everywhere)."""

    items: list[str]
    event_types: list[str]
    tags: list[str]

    def __post_init__(self) -> None:
        self.item_index = {i: n + 1 for n, i in enumerate(self.items)}
        self.type_index = {t: n + 1 for n, t in enumerate(self.event_types)}
        self.tag_index = {t: n + 1 for n, t in enumerate(self.tags)}


def _vocab(
    sequences: Mapping[str, UserSequence],
    content: Mapping[str, np.ndarray] | None,
    tags: Mapping[str, Sequence[str]] | None,
    resume_from: Recommender | None,
) -> _Vocab:
    """Keep a resumed model's rows in place and append what is new, in a deterministic order."""
    seen_items = dict.fromkeys(resume_from.item_ids if resume_from else [])
    seen_types = dict.fromkeys(resume_from.event_types if resume_from else [])
    seen_tags = dict.fromkeys(resume_from.tags if resume_from else [])
    new_items = {i for s in sequences.values() for i in s.items} | set(content or {}) | set(tags or {})
    new_types = {t for s in sequences.values() for t in s.event_types}
    new_tags = {t for names in (tags or {}).values() for t in names}
    return _Vocab(
        [*seen_items, *sorted(new_items - seen_items.keys())],
        [*seen_types, *sorted(new_types - seen_types.keys())],
        [*seen_tags, *sorted(new_tags - seen_tags.keys())],
    )


def _as_matrix(seqs: Sequence[UserSequence], vocab: _Vocab, width: int, times: bool) -> np.ndarray:
    """(3 or 4, N, width) left-padded item, event-type, gap-bucket (and timestamp) rows of the last events.

    The timestamp row is there only for a model that scores item age (`times`): it is a
    third more memory, and nothing else reads it.
    """
    out = np.zeros((4 if times else 3, len(seqs), width), dtype=np.int64)
    for n, seq in enumerate(seqs):
        seq = seq.tail(width)
        start = width - len(seq)
        out[0, n, start:] = [vocab.item_index[i] for i in seq.items]
        out[1, n, start:] = [vocab.type_index[t] for t in seq.event_types]
        out[2, n, start:] = gap_buckets(seq.timestamps)
        if times:
            out[3, n, start:] = np.round(seq.timestamps)  # whole seconds: the item-age logit's clock
    return out


def _windows(seqs: Sequence[UserSequence], width: int, whole: bool) -> list[UserSequence]:
    """The training rows: each history's last `width` events, and (whole) its earlier events too.

    Earlier windows end on the first event of the window after them, so every step of a
    history (an event and the one after it) is a target exactly once.
    """
    out = []
    for seq in seqs:
        ends = range(len(seq), 1, -(width - 1)) if whole else [len(seq)]
        out += [seq.head(end).tail(width) for end in ends]
    return out


def _length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar length, so little compute goes to padding."""
    order = rng.permutation(len(lengths))
    pool = batch_size * 50
    batches = []
    for start in range(0, len(order), pool):
        chunk = order[start : start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def _optimizer(model: Seq2SeqRecommender, config: TrainConfig, fused: bool) -> torch.optim.AdamW:
    """Weight decay on linear weights only; embeddings, norms and biases are left alone."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            is_matrix = isinstance(module, torch.nn.Linear) and name == "weight"
            (decay if is_matrix else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.98), fused=fused or None)


def _lr_factor(step: int, progress: float, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay over `progress` in [0, 1] (steps or time, whichever ends first)."""
    if step < config.warmup:
        return (step + 1) / config.warmup
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return config.final_lr_ratio + (1.0 - config.final_lr_ratio) * cosine


def _build_model(
    vocab: _Vocab,
    config: TrainConfig,
    content: Mapping[str, np.ndarray] | None,
    tags: Mapping[str, Sequence[str]] | None,
    trained_items: set[str],
    id_items: set[str],
    resume_from: Recommender | None,
    device: torch.device,
    age_buckets: int = 0,
) -> Seq2SeqRecommender:
    """The model to train; each item of id_items gets an ID row of its own."""
    content_dim = len(next(iter(content.values()))) if content else 0
    max_tags = max((len(t) for t in (tags or {}).values()), default=0)
    if not config.history_ids and resume_from is None and not content_dim and not vocab.tags:
        raise ValueError("history_ids=False reads the history by content and tags, and there are neither")
    if resume_from is not None:
        old = resume_from.model
        # The resumed model's shapes win over config; grow_model keeps every learned row.
        model = grow_model(
            old, len(vocab.items) + 1, len(vocab.event_types) + 1, len(vocab.tags) + 1 if vocab.tags else None
        )
    else:
        model_config = Seq2SeqConfig(
            n_items=len(vocab.items) + 1,
            n_id_rows=len(id_items) + 1,
            content_dim=content_dim,
            n_tags=len(vocab.tags) + 1 if vocab.tags else 0,
            max_tags=max_tags,
            n_event_types=len(vocab.event_types) + 1,
            max_len=config.max_len,
            d_model=config.d_model,
            n_heads=config.n_heads,
            n_layers=config.n_layers,
            n_decoder_layers=config.n_decoder_layers,
            dropout=config.dropout,
            list_len=config.list_len,
            id_dropout=config.id_dropout,
            history_ids=config.history_ids,
            age_buckets=age_buckets,
        )
        model = Seq2SeqRecommender(model_config)
    id_rows = torch.tensor(sorted(vocab.item_index[i] for i in id_items), dtype=torch.long)
    model = give_id_rows(model, id_rows)
    table = model.items
    with torch.no_grad():
        for item in trained_items:
            table.trained[vocab.item_index[item]] = True
        if content and model.config.content_dim:
            # A slice at a time: one stacked copy of a 1M-item catalogue's vectors is 1.5 GB.
            # The caller's vectors may be in half precision already, as the table keeps them.
            ids = list(content)
            for start in range(0, len(ids), 65536):
                part = ids[start : start + 65536]
                rows = torch.tensor([vocab.item_index[i] for i in part], device=table.content.device)
                stacked = np.stack([np.asarray(content[i]) for i in part])
                table.content[rows] = torch.from_numpy(stacked).to(table.content.device, table.content.dtype)
        if tags and model.config.n_tags:
            width = model.config.max_tags
            for item, names in tags.items():
                known = [vocab.tag_index[t] for t in names][:width]
                table.tag_index[vocab.item_index[item]] = torch.tensor(known + [0] * (width - len(known)))
    return model.to(device)


def train(
    sequences: Mapping[str, UserSequence],
    config: TrainConfig | None = None,
    *,
    content: Mapping[str, np.ndarray] | None = None,
    tags: Mapping[str, Sequence[str]] | None = None,
    embedder_name: str | None = None,
    valid_targets: Mapping[str, str] | None = None,
    progress: Callable[[TrainProgress], None] | None = None,
    resume_from: Recommender | None = None,
    before_refit: Callable[[Recommender], None] | None = None,
    published: Mapping[str, float] | None = None,
) -> TrainResult:
    """Train (or continue training) a Seq2Seq recommender on user sequences.

    valid_targets None holds out each user's last item to choose the stopping point;
    the chosen model then learns every event, held-out ones included, for
    ``refit_epochs`` passes at the learning rate it stopped at, so the served model
    knows each reader's newest step (and items seen only there). ``before_refit`` gets
    the chosen model before that (also with refit_epochs=0): the one state that can be
    scored on events it never learned, as the promotion gate does. With explicit
    valid_targets the sequences are training data only and there is nothing to
    refit. resume_from continues from a trained model: its weights are kept, new
    items and event types get new rows. published: each
    item's publication time on the events' clock (seconds); with it (and
    ``config.item_age``) the model learns a logit by the item's age when the reader
    acts, and is asked at the time of the request.
    """
    config = config or TrainConfig()
    device = distributed.local_device(resolve_device(config.device))
    rank, world_size = distributed.world()
    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed + rank)  # dropout and sampled negatives differ by rank ...
    rng = np.random.default_rng(config.seed)  # ... the batch order does not: the ranks share one shuffle
    started = _clock()

    held_out_here = valid_targets is None
    refit = held_out_here and config.refit_epochs > 0
    if valid_targets is None:
        eligible = sorted(u for u, s in sequences.items() if len(s) >= 3)
        if config.holdout_users is not None and len(eligible) > config.holdout_users:
            eligible = random.Random(config.seed).sample(eligible, config.holdout_users)
        chosen = set(eligible)
        train_seqs = {u: s.head(-1) if u in chosen else s for u, s in sequences.items()}
        valid_targets = {u: sequences[u].items[-1] for u in eligible}
    else:
        train_seqs = dict(sequences)
    vocab = _vocab(sequences, content, tags, resume_from)
    large = len(vocab.items) > config.full_softmax_max_items
    if large:  # memory over speed: a fixed mmap threshold keeps the heap from growing (heap.py)
        heap.map_large_blocks()
    trained_items = {i for s in train_seqs.values() for i in s.items}
    ages = AGE_BUCKETS if published and config.item_age else 0
    # the items min_id_readers or more readers read, in any sequence (held-out events too)
    readers = Counter(i for s in sequences.values() for i in set(s.items))
    id_items = {i for i, n in readers.items() if n >= config.min_id_readers}
    model = _build_model(vocab, config, content, tags, trained_items, id_items, resume_from, device, ages)
    model_config = model.config
    if model_config.age_buckets and published:
        _set_published(model, vocab, published)
    val_times = None
    if model_config.age_buckets and held_out_here:  # the held-out event's time is its query time
        val_times = {u: sequences[u].timestamps[-1] for u in valid_targets}

    usable = [s for s in train_seqs.values() if len(s) >= 2]
    if not usable:
        raise ValueError("no user has two or more events: nothing to learn from")
    windows = _windows(usable, model_config.max_len + 1, config.whole_histories)
    data = torch.from_numpy(
        _as_matrix(windows, vocab, model_config.max_len + 1, bool(model_config.age_buckets))
    )
    lengths = np.array([len(w) for w in windows])
    val_users = sorted(u for u in valid_targets if u in train_seqs and len(train_seqs[u]) > 0)
    if config.val_max_users is not None and len(val_users) > config.val_max_users:
        val_users = sorted(random.Random(config.seed).sample(val_users, config.val_max_users))
    val_histories = {u: train_seqs[u] for u in val_users}
    val_targets = {u: valid_targets[u] for u in val_users}

    negatives_q, log_q = None, None
    n_negatives = config.sampled_softmax_negatives
    if n_negatives is None and large:
        n_negatives = AUTO_NEGATIVES
    if n_negatives:
        negatives_q, log_q = _sampling(usable, vocab, device)

    fused = device.type == "cuda"
    optimizer = _optimizer(model, config, fused)
    step_model = distributed.wrap(model, device)
    steps_per_epoch = math.ceil(len(windows) / (config.batch_size * world_size))
    budget = config.max_minutes * 60.0 if config.max_minutes else None
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16)

    def make_recommender(metrics: dict[str, float]) -> Recommender:
        metadata = {
            "train_config": asdict(config),
            "metrics": metrics,
            "embedder": {"name": embedder_name, "dimension": model_config.content_dim},
            "data": _summary(train_seqs, len(vocab.items)),
            "loss": f"sampled softmax, {n_negatives} negatives" if n_negatives else "exact softmax",
        }
        return Recommender(
            model,
            vocab.items,
            event_types=vocab.event_types,
            tags=vocab.tags,
            metadata=metadata,
            device=str(device),
        )

    def validate() -> dict[str, float]:
        """Rank 0 validates; every rank gets its figures, so all stop at the same epoch."""
        found = {}
        if val_targets and rank == 0:
            found = evaluate(make_recommender({}), val_histories, val_targets, ks=(10,), at=val_times)
            found = {f"val_{k}": v for k, v in found.items() if k != "users"}
        model.train()
        return distributed.from_rank0(found, VAL_KEYS, device)

    def one_pass(
        rows: Tensor, row_lengths: np.ndarray, lr_at: Callable[[int], float], deadline: float | None
    ) -> tuple[list[float], bool]:
        """One shuffled pass over `rows`; stops early past `deadline` (seconds since start), then True."""
        nonlocal step
        losses: list[float] = []
        batches = _length_batches(row_lengths, config.batch_size, rng)
        for batch_rows in distributed.shard(batches, rank, world_size):
            width = int(row_lengths[batch_rows].max())
            chunk = rows[:, batch_rows, -width:].to(device, non_blocking=True)
            items, types, gaps = chunk[0, :, :-1], chunk[1, :, :-1], chunk[2, :, :-1]
            times = chunk[3, :, 1:].double() if model_config.age_buckets else None
            targets = chunk[0, :, 1:].masked_fill(items == 0, 0)
            later = _later_targets(chunk[0], config.later_targets) if config.later_targets else None
            negatives = None
            if negatives_q is not None:
                negatives = torch.multinomial(negatives_q, n_negatives, replacement=True)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step)
            with autocast:
                main, aux = step_model(
                    items,
                    types,
                    gaps,
                    targets,
                    aux_positions=config.aux_positions,
                    negatives=negatives,
                    log_q=log_q,
                    later=later,
                    later_weight=config.later_weight,
                    list_as_set=config.list_as_set,
                    times=times,
                )
                loss = main if aux is None else main + config.aux_weight * aux
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            step += 1
            losses.append(main.item())
            late = deadline is not None and _clock() - started > deadline
            if deadline is not None and distributed.any_rank(late, device):  # all ranks stop at one step
                return losses, True
        return losses, False

    # A refit pass reads every event: keep time for it inside the budget.
    refit_share = 0.0
    if refit:
        all_rows = [s for s in sequences.values() if len(s) >= 2]
        all_windows = _windows(all_rows, model_config.max_len + 1, config.whole_histories)
        refit_share = config.refit_epochs * sum(len(w) for w in all_windows) / float(lengths.sum())

    def main_budget(epoch_seconds: list[float]) -> float | None:
        if budget is None:
            return None
        reserve = refit_share * float(np.mean(epoch_seconds)) if epoch_seconds else 0.0
        return max(budget - reserve, 0.0)

    def scheduled_lr(at_step: int, horizon: int) -> float:
        return config.lr * _lr_factor(at_step, at_step / horizon, config)

    def restore(state: dict[str, torch.Tensor]) -> None:
        """Put saved parameters back into the model (buffers never change before the refit)."""
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(state[name])

    def decayed_lr(decay: tuple[int, float, int], at_step: int) -> float:
        """A plateau's decay: linear from the LR it began at to the schedule's last one, at its last step."""
        first, lr, steps = decay
        final = config.lr * config.final_lr_ratio
        return lr + (final - lr) * min(1.0, (at_step - first + 1) / steps)

    def plan(epoch: int, epoch_starts: list[float], planned: int | None) -> int | None:
        """Epochs the budget allows, from the time the epochs so far took (all of it, validation too).

        Fixed after the first epoch, then once more after PLAN_AFTER when the run is long
        enough to get there: the schedule then depends on whole epochs, never on the
        clock, so two runs that plan alike train alike.
        """
        if budget is None or not (
            epoch == 1 or (epoch == PLAN_AFTER and planned and planned > 2 * PLAN_AFTER)
        ):
            return planned
        now = _clock()
        # The first epoch as far as it ran; later, the last three whole epochs, start to start.
        cost = (
            now - epoch_starts[0] if epoch == 1 else (epoch_starts[-1] - epoch_starts[-4]) / 3
        ) * PLAN_MARGIN
        left = (main_budget(epoch_seconds) or 0.0) - (now - started)
        found = {"planned": float(min(config.epochs, epoch + max(0, int(left / cost))))}
        return int(distributed.from_rank0(found, ["planned"], device)["planned"])

    best_state, best_metrics, best_score = None, {}, -1.0
    history: list[dict] = []
    step, bad_evals, epochs_run = 0, 0, 0
    # (first step, its LR, steps) of the decay that a plateau at a high learning rate starts
    decay: tuple[int, float, int] | None = None
    end: int | None = None  # the epoch that decay ends at
    epoch_seconds: list[float] = []
    epoch_starts: list[float] = []
    planned: int | None = None
    model.train()
    for epoch in range(1, config.epochs + 1):
        epoch_start = _clock()
        epoch_starts.append(epoch_start)
        deadline = main_budget(epoch_seconds) if budget else None
        lr_at = functools.partial(scheduled_lr, horizon=steps_per_epoch * (planned or config.epochs))
        if decay is not None:
            lr_at = functools.partial(decayed_lr, decay)
        losses, out_of_time = one_pass(data, lengths, lr_at, deadline)
        epoch_seconds.append(_clock() - epoch_start)
        epochs_run = epoch
        record: dict = {
            "epoch": epoch,
            "loss": distributed.mean_over_ranks(sum(losses), len(losses), device),
            "seconds": epoch_seconds[-1],
            "lr": optimizer.param_groups[0]["lr"],
        }
        last = epoch == (end or planned or config.epochs) or out_of_time
        if epoch % config.eval_every == 0 or last:
            record |= validate()
        planned = plan(epoch, epoch_starts, planned)
        if epoch == planned and "val_ndcg@10" not in record:
            record |= validate()  # the first plan ended the run here
        score = record.get("val_ndcg@10")
        if score is not None and score > best_score:
            best_score, bad_evals = score, 0
            best_metrics = {k: v for k, v in record.items() if k.startswith("val_")}
            # Parameters only: no buffer changes before the refit, and the content buffer of a
            # 1M-item catalogue with 384-dim text is 0.77 GB that a state_dict copy would double.
            best_state = {name: p.detach().clone() for name, p in model.named_parameters()}
        elif score is not None:
            bad_evals += 1
        if bad_evals >= config.patience and decay is None and best_state is not None:
            lr = optimizer.param_groups[0]["lr"]
            if lr > 2 * config.lr * config.final_lr_ratio:
                decay, bad_evals = (step, lr, steps_per_epoch * config.patience), 0
                end = min(planned or config.epochs, epoch + config.patience)
                restore(best_state)
        history.append(record)
        if progress is not None and rank == 0:
            progress(
                TrainProgress(
                    epoch,
                    end or planned or config.epochs,
                    record["loss"],
                    score,
                    _eta(started, epoch, end or planned or config.epochs),
                )
            )
        if out_of_time or bad_evals >= config.patience or epoch >= (end or planned or config.epochs):
            break

    if best_state is not None:
        restore(best_state)
    best = max(history, key=lambda r: r.get("val_ndcg@10", -1.0))
    best_metrics |= {"best_epoch": float(best["epoch"])}
    refits = 0
    if held_out_here and before_refit is not None and rank == 0:
        before_refit(make_recommender(best_metrics))
        model.train()
    if refit:
        # Items seen only in held-out events become trainable targets now.
        with torch.no_grad():
            for item in {i for s in all_rows for i in s.items} - trained_items:
                model.items.trained[vocab.item_index[item]] = True
            if negatives_q is not None:
                negatives_q, log_q = _sampling(all_rows, vocab, device)
        rows = torch.from_numpy(
            _as_matrix(all_windows, vocab, model_config.max_len + 1, bool(model_config.age_buckets))
        )
        row_lengths = np.array([len(w) for w in all_windows])
        # The planned reserve, kept even when the main phase ran past the budget.
        refit_deadline = None
        if budget is not None:
            refit_deadline = max(budget, _clock() - started + refit_share * np.mean(epoch_seconds))
        for _ in range(config.refit_epochs):
            refit_start = _clock()
            losses, out_of_time = one_pass(rows, row_lengths, lambda _: best["lr"], refit_deadline)
            refits += 1
            history.append(
                {
                    "epoch": epochs_run + refits,
                    "refit": True,
                    "loss": distributed.mean_over_ranks(sum(losses), len(losses), device),
                    "seconds": _clock() - refit_start,
                    "lr": best["lr"],
                }
            )
            if out_of_time:
                break
        train_seqs = {**train_seqs, **sequences}
    rec = make_recommender(best_metrics)
    model.set_typical(_typical_state(rec, train_seqs, config.seed))  # rec serves this very model
    seconds = _clock() - started
    return TrainResult(
        rec, best_metrics, history, epochs_run, seconds, str(device), refits, planned, len(val_users)
    )


def _set_published(model: Seq2SeqRecommender, vocab: _Vocab, published: Mapping[str, float]) -> None:
    """Publication times into the model's rows (an item without one keeps NaN: age unknown)."""
    known = [(vocab.item_index[i], float(t)) for i, t in published.items() if i in vocab.item_index]
    if known:
        rows, times = zip(*known, strict=True)
        model.born[torch.tensor(rows)] = torch.tensor(times, dtype=torch.float64).to(model.born.device)


def _typical_state(rec: Recommender, seqs: Mapping[str, UserSequence], seed: int) -> Tensor:
    """The mean state of (up to TYPICAL_READERS of) the trained readers: a typical reader's query."""
    users = sorted(u for u, s in seqs.items() if len(s) > 0)
    if len(users) > TYPICAL_READERS:
        users = sorted(random.Random(seed).sample(users, TYPICAL_READERS))
    histories = [seqs[u] for u in users]
    total = None
    for start in range(0, len(histories), BATCH):
        part = rec.user_vectors(histories[start : start + BATCH]).sum(0)
        total = part if total is None else total + part
    return total / len(histories)


def _sampling(seqs: Sequence[UserSequence], vocab: _Vocab, device: torch.device) -> tuple[Tensor, Tensor]:
    """Negative-sampling distribution (item frequency in `seqs`) and its log, for the log-Q correction."""
    counts = Counter(vocab.item_index[i] for s in seqs for i in s.items)
    q = torch.zeros(len(vocab.items) + 1)
    for idx, c in counts.items():
        q[idx] = c
    q = (q / q.sum()).to(device)
    return q, torch.log(q.clamp(min=1e-12))


def _later_targets(rows: torch.Tensor, k: int) -> torch.Tensor:
    """(B, W) left-padded items -> (B, W - 1, k): the 2nd .. (k+1)-th items after each input, 0 = none."""
    inputs = rows[:, :-1]
    padded = torch.nn.functional.pad(rows, (0, k))
    later = torch.stack([padded[:, 2 + j : 2 + j + inputs.size(1)] for j in range(k)], dim=-1)
    return later.masked_fill((inputs == 0)[..., None], 0)


def _clock() -> float:
    """Seconds on a monotonic clock: the one place the trainer reads time (a test slows it down)."""
    return time.perf_counter()


def _eta(started: float, epoch: int, epochs: int) -> float:
    return (_clock() - started) / epoch * (epochs - epoch)


def _summary(seqs: Mapping[str, UserSequence], n_items: int) -> dict:
    """What the model was trained on, for the artifact's metadata (and the admin's model page)."""
    stamps = [t for s in seqs.values() for t in (s.timestamps[:1] + s.timestamps[-1:])]
    return {
        "users": len(seqs),
        "items": n_items,
        "events": sum(len(s) for s in seqs.values()),
        "time_range": [min(stamps), max(stamps)] if stamps else None,
    }
