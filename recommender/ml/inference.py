"""Serving a trained model: history in, ranked item ids (with the reason) out.

One encoder pass per history, then scores = state @ item matrix (cached, rebuilt
only when items are added) and a top-k: the cost is close to a bare matmul + top-k.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from recommender.ml import ann
from recommender.ml.data import UserSequence, collapse_repeats, gap_buckets
from recommender.ml.item_ids import ItemIds
from recommender.ml.model import CONTENT_DTYPE, Seq2SeqConfig, Seq2SeqRecommender, grow_model

logger = logging.getLogger(__name__)

History = Sequence[str] | UserSequence
BATCH = 256  # histories per forward pass in batch scoring
EXPLAIN_BATCH = 1024  # left-one-out histories per forward pass when explaining
EXPLAIN_EVENTS = 16  # newest distinct history items that may be cited (each costs an encoder pass)
EXPLAIN_GROUPS = 8  # largest groups that may be cited
MIN_INFLUENCE = 0.5  # drop of an item's log-probability in its list for an event to be cited (/1.65)
# how much higher (log-probability in the list) an item must stand for this reader than for a
# typical one for a read to be its reason (e: 2.7x as likely); below, the item is "popular"
PERSONAL_LIFT = 1.0
OVERSAMPLE = 2  # index candidates per wanted item, on top of one per excluded item
# items scored exactly beside the index (added or changed since its build) before it is rebuilt
MAX_FRESH = 20_000


@dataclass(frozen=True)
class Recommendation:
    """One recommended item; score is its probability among the items that could be shown."""

    item_id: str
    score: float  # with new_item_boost set, under the boosted distribution
    # the history item whose removal lowers the item's share of the list most (None: none enough),
    # else the named group of history items (recommend(groups=...)) whose removal does
    explanation: str | None
    group: str | None = None
    # a model that scores item age: the item's age now lifts it in the list more than any read does
    fresh: bool = False
    # a typical reader's list would hold it about as high: nothing personal put it there
    popular: bool = False


@dataclass(frozen=True)
class _Added:
    """Items added at serving time (unseen in training), kept beside the model's tables, not in them.

    Growing the tables would copy them in every process that adds an item (1.0 GB at 1M
    items with 384-dim content); these rows are the added items' own, nothing more.
    """

    content: Tensor | None  # (E, content_dim) in the order of their rows (past the model's own)
    tag_index: Tensor | None  # (E, max_tags)
    born: Tensor | None = None  # (E,) publication times (NaN: unknown), for a model that scores item age


@dataclass(frozen=True)
class _Serving:
    """Everything a read needs, swapped as one reference so add_items never races a recommend."""

    model: Seq2SeqRecommender  # as trained: items added since live in `added`, not in its tables
    item_ids: ItemIds  # row r is item_ids[r - 1]; the trained ids' arrays are shared by every state
    matrix: Tensor  # (n_items + 1, d), row 0 = padding: the first rows of `room`
    room: Tensor  # the buffer `matrix` views; its spare rows take added items without a copy
    norms: Tensor  # (n_items + 1,) row lengths for similar(): a normalised copy would double the matrix
    boost: Tensor | None  # (n_items + 1,) logit added to items unseen in training; None = no boost
    item_index: ann.CatalogueIndex | None = None  # candidates for large catalogues (None: exact scoring)
    fresh: Tensor | None = None  # rows the index misses or holds stale: added or changed since its build
    added: _Added | None = None
    pristine: bool = True  # the matrix is the model's own as loaded: no row written since


def spare_rows(n_rows: int) -> int:
    """Rows of room kept past an item matrix of n_rows for items added at serving time.

    A sixteenth (64k rows, 16 MB at 1M items and d=64), at least 1,024: a site that
    publishes all day adds them in place; past it the matrix is copied once into a larger room.
    """
    return max(1024, n_rows // 16)


def list_log_probs(logits: Tensor) -> Tensor:
    """(V, k) logits of one list's items -> log-probabilities among them (what explanations compare)."""
    return torch.log_softmax(logits, dim=-1)


def _finite_boost(value: float) -> float:
    """A boost must be a finite number: an infinite one would turn every score into NaN or -inf."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"new_item_boost must be a finite number, got {value!r}")
    return value


class Recommender:
    """A trained model + item index, ready to serve; thread-safe for reads, eval mode, no grad."""

    def __init__(
        self,
        model: Seq2SeqRecommender,
        item_ids: Sequence[str],
        *,
        event_types: Sequence[str] = ("view",),
        tags: Sequence[str] = (),
        metadata: dict | None = None,
        device: str = "cpu",
        new_item_boost: float = 0.0,
        ann_min_items: int | None = None,
        item_matrix: Tensor | None = None,
        index_dir: Path | None = None,
    ) -> None:
        """new_item_boost: a logit added to items the model was not trained on (see the property);
        ann_min_items: the catalogue size above which an approximate index finds the candidates;
        item_matrix: the model's item matrix computed before (artifact.map_artifact maps it from
        a file, so the processes of a host share it), never copied: rows past the model's items
        are room where added items are written; index_dir: a folder where the approximate
        index over that matrix is kept for every process.
        """
        self.event_types = list(event_types)  # index i + 1 in the event-type table
        self.tags = list(tags)  # index i + 1 in the tag table
        self.metadata = metadata if metadata is not None else {}
        self.device = torch.device(device)
        self._type_index = {t: i + 1 for i, t in enumerate(self.event_types)}
        self._write_lock = threading.Lock()
        self._new_item_boost = _finite_boost(new_item_boost)
        self._ann_min_items = ann_min_items
        self._index_dir = index_dir
        self._materialised: tuple[_Serving, Seq2SeqRecommender] | None = None
        # (state, minute, item-age logits then): serving asks for the same row all minute
        self._age_memo: tuple[_Serving, int, Tensor] | None = None
        self._state = self._loaded(model.to(self.device), item_ids, item_matrix)

    # -- state ---------------------------------------------------------------

    def _loaded(self, model: Seq2SeqRecommender, item_ids: Sequence[str], room: Tensor | None) -> _Serving:
        """Serving state of a model as trained; `room` (its item matrix, spare rows allowed) is not copied."""
        model.eval()
        n_rows = len(item_ids) + 1
        with torch.no_grad():
            if room is not None:
                room = room.to(self.device, torch.float32)
            else:
                room = model.item_matrix().float().contiguous()
        matrix = room[:n_rows]
        untrained = model.items.untrained()
        item_index, fresh = self._item_index(matrix, untrained, None, (), pristine=True)
        return _Serving(
            model,
            item_ids if isinstance(item_ids, ItemIds) else ItemIds(item_ids),
            matrix,
            room,
            matrix.norm(dim=1).clamp(min=1e-12),  # F.normalize's floor: a zero row has cosine 0
            self._boost(untrained),
            item_index,
            fresh,
        )

    def _untrained(self, state: _Serving) -> Tensor:
        """(n_items + 1,) True for padding and every item unseen in training, the added ones included."""
        untrained = state.model.items.untrained()
        extra = state.matrix.size(0) - untrained.size(0)
        return torch.cat([untrained, untrained.new_ones(extra)]) if extra else untrained

    def _boost(self, untrained: Tensor) -> Tensor | None:
        if not self._new_item_boost:
            return None
        boost = torch.where(untrained, self._new_item_boost, 0.0).to(self.device)
        boost[0] = 0.0  # padding stays -inf
        return boost

    def _item_index(
        self,
        matrix: Tensor,
        untrained: Tensor,
        previous: _Serving | None,
        changed: Sequence[int],
        pristine: bool,
    ) -> tuple[ann.CatalogueIndex | None, Tensor | None]:
        """The approximate index for this state, and the rows to score exactly beside it.

        The previous state's index is kept while the items added or changed since its
        build are few (they are scored exactly: a new item is found at once); more than
        MAX_FRESH such items build it again.
        """
        n_items = matrix.size(0) - 1
        if self._ann_min_items is None or n_items <= self._ann_min_items or not ann.available():
            return None, None
        if previous is not None and previous.item_index is not None:
            added = torch.arange(previous.matrix.size(0), n_items + 1, device=matrix.device)
            changed_rows = torch.tensor(changed, dtype=torch.long, device=matrix.device)
            fresh = torch.cat([previous.fresh, changed_rows, added]).unique()
            if fresh.numel() <= MAX_FRESH:
                return previous.item_index, fresh
        start = time.perf_counter()
        flags = untrained.cpu().numpy()
        rows = np.arange(1, n_items + 1)
        directory = self._index_dir if pristine else None  # kept files index the artifact's own matrix
        groups = [rows[~flags[1:]], rows[flags[1:]]]
        built = ann.CatalogueIndex(matrix.cpu().numpy(), groups, directory=directory)
        logger.info(
            "built an approximate index over %d items in %.1f s (%.0f MB)",
            n_items, time.perf_counter() - start, built.nbytes / 1e6,
        )  # fmt: skip
        return built, torch.zeros(0, dtype=torch.long, device=matrix.device)

    @property
    def ann_min_items(self) -> int | None:
        """Catalogue size above which an index finds the candidates (None: every catalogue exactly).

        Exact scoring is a matmul over every item, ~20 ms at 1M items on two cores; the
        index's candidates are rescored exactly and filtered as before, so results only
        differ when the index misses an item that would have ranked (bench.speed --only ann
        measures how often). Needs faiss; without it scoring stays exact.
        """
        return self._ann_min_items

    @ann_min_items.setter
    def ann_min_items(self, value: int | None) -> None:
        with self._write_lock:
            if value == self._ann_min_items:
                return
            self._ann_min_items = value
            state = self._state
            item_index, fresh = self._item_index(
                state.matrix, self._untrained(state), state, (), state.pristine
            )
            self._state = replace(state, item_index=item_index, fresh=fresh)

    @property
    def new_item_boost(self) -> float:
        """A logit added to every item the model was not trained on: how far to push new items up.

        0 ranks them by their content (and their twin's ID, for a near-duplicate of a
        trained item: see ItemTable.twins, the twin is boosted too), which is about
        calibrated: on ML-1M's cold split the items held out of training get 12 % of the
        probability and are 10 % of the test targets. A site that wants new items seen
        sooner (exploration) raises it; each +1 multiplies their odds by e, and costs the
        trained items' ranking (bench.quality --cold-start prints the trade-off).
        """
        return self._new_item_boost

    @new_item_boost.setter
    def new_item_boost(self, value: float) -> None:
        value = _finite_boost(value)
        with self._write_lock:
            if value == self._new_item_boost:
                return
            self._new_item_boost = value
            state = self._state
            self._state = replace(state, boost=self._boost(self._untrained(state)))

    @property
    def list_steps_trained(self) -> bool:
        """False when training gave the decoder's list steps no loss (TrainConfig.aux_positions 0).

        Those steps then keep their initial weights, so a list they wrote would be picked at
        random; recommend(generate=True) refuses such a model. A model without training
        metadata is taken to have trained them.
        """
        return self.metadata.get("train_config", {}).get("aux_positions", 1) > 0

    @property
    def config(self) -> Seq2SeqConfig:
        """The model's shapes as trained (n_items counts the trained table only, not added items)."""
        return self._state.model.config

    @property
    def model(self) -> Seq2SeqRecommender:
        """The model with every served item in its tables (added items too), e.g. to save or resume.

        Serving keeps added items beside the trained tables; this builds the full copy
        once per state, on demand: nothing on the request path uses it.
        """
        state = self._state
        if state.added is None:
            return state.model
        cached = self._materialised
        if cached is not None and cached[0] is state:
            return cached[1]
        base = state.model.config.n_items
        model = grow_model(state.model, state.matrix.size(0), state.model.config.n_event_types)
        with torch.no_grad():
            if state.added.content is not None:
                model.items.content[base:] = state.added.content
            if state.added.tag_index is not None:
                model.items.tag_index[base:] = state.added.tag_index
            if state.added.born is not None:
                model.born[base:] = state.added.born
        model.eval()
        self._materialised = (state, model)
        return model

    @property
    def item_ids(self) -> ItemIds:
        """Every servable item id, in row order (a read-only sequence; ItemIds.row finds one)."""
        return self._state.item_ids

    def __contains__(self, item_id: str) -> bool:
        return item_id in self._state.item_ids

    def add_items(
        self,
        content: Mapping[str, np.ndarray],
        tags: Mapping[str, Sequence[str]] | None = None,
        published: Mapping[str, float] | None = None,
    ) -> None:
        """Add items unseen in training (scored from their content), or refresh known items' content.

        Tag names the model has never seen carry no learned meaning and are ignored.
        The model's tables are not grown or copied: new items' rows go to the spare rows
        of the item matrix and to small tables of their own (_Added), and a known item's
        new content is written over its row. A list being computed at that moment may
        score that one item with its old or its new vector; a new item appears to reads
        that start after the swap. published: publication times (the events' clock), which
        a model that scores item age needs; an item without one has an unknown age.
        """
        config = self._state.model.config
        if content and not config.content_dim:
            raise ValueError("this model was trained without content vectors; it cannot score new items")
        tags = tags or {}
        # Every vector is checked before anything is written.
        vectors = {i: np.asarray(v, dtype=np.float32).reshape(-1) for i, v in content.items()}
        for item_id, vec in vectors.items():
            if vec.size != config.content_dim:
                raise ValueError(
                    f"item {item_id!r}: content vector has {vec.size} dims, "
                    f"the model expects {config.content_dim}"
                )
        tag_index = {t: n + 1 for n, t in enumerate(self.tags)}
        tag_rows = {
            i: [tag_index[t] for t in names if t in tag_index][: config.max_tags] for i, names in tags.items()
        }
        with self._write_lock, torch.no_grad():
            state = self._state
            named = list(dict.fromkeys([*content, *tags]))
            new_ids = [i for i, row in zip(named, state.item_ids.rows(named), strict=True) if not row]
            item_ids = state.item_ids.extended(new_ids) if new_ids else state.item_ids
            added = self._grown_added(state, len(item_ids) + 1)
            table = state.model.items
            base = config.n_items  # rows of the model's own tables, padding included
            rows = dict(zip(named, item_ids.rows(named).tolist(), strict=True))
            own = [i for i in rows if rows[i] < base]
            if vectors:
                self._write_rows(table.content, added.content, base, [(rows[i], vectors[i]) for i in vectors])
            if config.n_tags:
                padded = {i: t + [0] * (config.max_tags - len(t)) for i, t in tag_rows.items()}
                self._write_rows(
                    table.tag_index, added.tag_index, base, [(rows[i], padded[i]) for i in padded]
                )
            if config.age_buckets and published:
                times = [(rows[i], float(t)) for i, t in published.items() if i in rows]
                self._write_rows(state.model.born, added.born, base, times)
            # A trained item's new text can make it, or stop it being, a new item's twin: every
            # untrained row is computed again, and only the rows that differ are written.
            warm_changed = bool(own) and bool(table.trained[[rows[i] for i in own]].any())
            self._state = self._with_rows(state, item_ids, added, sorted(rows.values()), warm_changed)

    def _grown_added(self, state: _Serving, n_rows: int) -> _Added:
        """The added items' tables for a matrix of n_rows (copies: a read in flight keeps the old ones)."""
        config = state.model.config
        old = state.added
        count = n_rows - config.n_items

        def table(previous: Tensor | None, width: int, dtype: torch.dtype) -> Tensor | None:
            if not width:
                return None
            out = torch.zeros(count, width, dtype=dtype, device=self.device)
            if previous is not None:
                out[: len(previous)] = previous
            return out

        born = None
        if config.age_buckets:
            born = torch.full((count,), math.nan, dtype=torch.float64, device=self.device)
            if old is not None and old.born is not None:
                born[: len(old.born)] = old.born
        return _Added(
            table(old.content if old else None, config.content_dim, CONTENT_DTYPE),  # as the model's
            table(old.tag_index if old else None, config.max_tags if config.n_tags else 0, torch.long),
            born,
        )

    def _write_rows(
        self, own: Tensor, added: Tensor | None, base: int, values: list[tuple[int, object]]
    ) -> None:
        """Write (row, value) pairs: trained items' rows into the model's table, added items' into theirs."""
        for target, offset, pairs in ((own, 0, [p for p in values if p[0] < base]),
                                      (added, base, [p for p in values if p[0] >= base])):  # fmt: skip
            if pairs and target is not None:
                index = torch.tensor([row - offset for row, _ in pairs], device=target.device)
                stacked = torch.as_tensor(np.array([v for _, v in pairs]), dtype=target.dtype)
                target[index] = stacked.to(target.device)

    def _with_rows(
        self,
        state: _Serving,
        item_ids: ItemIds,
        added: _Added,
        touched: list[int],
        warm_changed: bool,
    ) -> _Serving:
        """The next state, the rows of `touched` computed again (every untrained row if warm_changed)."""
        model, base = state.model, state.model.config.n_items
        n_rows = len(item_ids) + 1
        room = state.room
        if room.size(0) < n_rows:  # out of spare rows: one copy into a larger room
            room = room.new_zeros(n_rows + spare_rows(n_rows), room.size(1))
            room[: state.matrix.size(0)] = state.matrix
        untrained = model.items.untrained()
        untrained = torch.cat([untrained, untrained.new_ones(n_rows - base)])
        rows = torch.tensor(touched, dtype=torch.long, device=room.device)
        if warm_changed:
            rows = torch.cat([rows, untrained.nonzero().flatten()[1:].to(room.device)]).unique()
        written = []
        for part in rows.split(65536):
            vectors = self._vectors(model, added, part).float()
            if warm_changed:  # only rows that differ (beyond float noise): the others stay shared pages
                differ = ~torch.isclose(room[part], vectors, rtol=1e-5, atol=1e-6).all(dim=1)
                part, vectors = part[differ], vectors[differ]
            room[part] = vectors
            written.append(part)
        written_rows = torch.cat(written) if written else rows[:0]
        matrix = room[:n_rows]
        norms = torch.cat([state.norms, state.norms.new_zeros(n_rows - state.norms.size(0))])
        norms[written_rows] = matrix[written_rows].norm(dim=1).clamp(min=1e-12)
        pristine = state.pristine and not len(written_rows)
        changed = [r for r in written_rows.tolist() if r < state.matrix.size(0)]
        item_index, fresh = self._item_index(matrix, untrained, state, changed, pristine)
        return _Serving(
            model,
            item_ids,
            matrix,
            room,
            norms,
            self._boost(untrained),
            item_index,
            fresh,
            added if n_rows > base else None,
            pristine,
        )

    @staticmethod
    def _vectors(model: Seq2SeqRecommender, added: _Added, rows: Tensor) -> Tensor:
        """(R, d) served vectors of `rows`: from the model's tables, or from the added items' own."""
        base = model.config.n_items
        out = torch.empty(len(rows), model.config.d_model, device=rows.device)
        own, extra = rows < base, rows >= base
        if own.any():
            out[own] = model.items(rows[own]).float()
        if extra.any():
            positions = rows[extra] - base
            content = added.content[positions] if added.content is not None else None
            tag_index = added.tag_index[positions] if added.tag_index is not None else None
            if content is None and tag_index is None:
                out[extra] = 0.0
            else:
                out[extra] = model.items.new_vectors(content, tag_index).float()
        return out

    # -- history -> tensors ----------------------------------------------------

    def _indices(
        self, history: History, event_types: Sequence[str] | None, timestamps: Sequence[float] | None
    ) -> tuple[list[int], list[int], list[int]]:
        """Known items only (unknown ones skipped with a warning), repeats collapsed, last max_len."""
        if not isinstance(history, UserSequence):
            # Missing types or times get UserSequence's defaults: what training gives untimed events.
            history = UserSequence(list(history), list(event_types or ()), list(timestamps or ()))
        items, types, stamps = history.items, history.event_types, history.timestamps
        rows = self._state.item_ids.rows(items).tolist()
        unknown = [i for i, row in zip(items, rows, strict=True) if not row]
        if unknown:
            logger.warning("skipping %d history item(s) unknown to the model: %s", len(unknown), unknown[:5])
        kept = [n for n, row in enumerate(rows) if row]
        row_of = {items[n]: rows[n] for n in kept}
        seq = collapse_repeats(
            [items[n] for n in kept], [types[n] for n in kept], [float(stamps[n]) for n in kept], None
        )
        seq = seq.tail(self._state.model.config.max_len)
        return (
            [row_of[i] for i in seq.items],
            [self._type_index.get(t, 0) for t in seq.event_types],
            gap_buckets(seq.timestamps),
        )

    def _seen(self, history: History) -> list[int]:
        """Columns of every known item in the history, also those older than the model's window.

        The model reads the last max_len events; what a reader saw before that is still
        seen, and must not come back as a recommendation.
        """
        items = history.items if isinstance(history, UserSequence) else history
        return list(set(self._known(self._state, items)))

    @staticmethod
    def _known(state: _Serving, item_ids: Collection[str]) -> list[int]:
        """The rows of the known ids among item_ids, in their order (unknown ones left out)."""
        rows = state.item_ids.rows(list(item_ids))
        return rows[rows > 0].tolist()

    def _batch(self, rows: Sequence[tuple[list[int], list[int], list[int]]]) -> tuple[Tensor, Tensor, Tensor]:
        """Left-pad to the longest row: (B, L) items, event types, gap buckets."""
        length = max(len(r[0]) for r in rows)
        out = np.zeros((3, len(rows), length), dtype=np.int64)
        for b, row in enumerate(rows):
            for c in range(3):
                if row[c]:
                    out[c, b, length - len(row[c]) :] = row[c]
        t = torch.from_numpy(out).to(self.device)
        return t[0], t[1], t[2]

    def _states(
        self, state: _Serving, rows: Sequence[tuple[list[int], list[int], list[int]]]
    ) -> tuple[Tensor, Tensor, Tensor]:
        items, types, gaps = self._batch(rows)
        read, inputs = self._encoder_inputs(state, items)
        memory = state.model.encode(read, types, gaps, inputs)
        valid = items != 0
        return state.model.next_state(memory, valid), memory, valid

    @staticmethod
    def _encoder_inputs(state: _Serving, items: Tensor) -> tuple[Tensor, Tensor]:
        """(items, matrix) the encoder reads: the served matrix, or (a model whose history is
        read by content alone) the history's items by content and tags, added items included."""
        model = state.model
        if model.config.history_ids:
            return items, state.matrix
        base = model.config.n_items
        distinct, local = torch.unique(torch.cat([items.new_zeros(1), items.flatten()]), return_inverse=True)
        own, extra = distinct[distinct < base], distinct[distinct >= base] - base
        inputs = model.items.side(own).float()
        if len(extra):
            added = state.added
            content = added.content[extra] if added.content is not None else None
            tag_index = added.tag_index[extra] if added.tag_index is not None else None
            inputs = torch.cat([inputs, model.items.side_of(content, tag_index).float()])
        return local[1:].view_as(items), inputs

    def _many_states(self, state: _Serving, rows: Sequence[tuple[list[int], list[int], list[int]]]) -> Tensor:
        """Next-item states of many histories, EXPLAIN_BATCH per forward pass, in float32."""
        return torch.cat(
            [
                self._states(state, rows[start : start + EXPLAIN_BATCH])[0].float()
                for start in range(0, len(rows), EXPLAIN_BATCH)
            ]
        )

    def _bias(self, state: _Serving, at: float | Sequence[float] | None) -> Tensor | None:
        """(1 or B, n_items + 1) logit added to every item: the new-item boost, and item age at `at`.

        A model trained with publication times is asked at the time of the request
        (`at`, default now; one time per history for metrics) how fresh each item is then.
        """
        bias = None if state.boost is None else state.boost[None]
        model = state.model
        if not model.config.age_buckets:
            return bias
        if at is None:  # serving: one row for the current minute, shared by the requests in it
            minute = int(time.time() // 60)
            memo = self._age_memo
            if memo is not None and memo[0] is state and memo[1] == minute:
                return memo[2]
            found = self._age_bias(state, [minute * 60.0], bias)
            self._age_memo = (state, minute, found)
            return found
        return self._age_bias(state, np.atleast_1d(at), bias)

    @staticmethod
    def _age_bias(state: _Serving, times: Sequence[float], bias: Tensor | None) -> Tensor:
        """(len(times), n_items + 1) item-age logits at those times, plus `bias`."""
        model = state.model
        born = model.born
        if state.added is not None and state.added.born is not None:
            born = torch.cat([born, state.added.born])
        at = torch.tensor(times, dtype=torch.float64, device=born.device)
        age = model.age_logits(at, born).float()
        return age if bias is None else age + bias

    @staticmethod
    def _logits(state: _Serving, states: Tensor, bias: Tensor | None) -> Tensor:
        """(B, n_items + 1) scores of every item, `bias` (_bias) included; padding is -inf.

        scores() and recommend() share it, so what metrics measure is what is served.
        """
        logits = states.float() @ state.matrix.T
        if bias is not None:
            logits += bias
        logits[:, 0] = float("-inf")
        return logits

    def _known_rows(self, histories: Sequence[History]) -> list[tuple[list[int], list[int], list[int]]]:
        """Model inputs for histories that each hold a known item; an empty one has no state to score."""
        rows = [self._indices(h, None, None) for h in histories]
        empty = [n for n, r in enumerate(rows) if not r[0]]
        if empty:
            raise ValueError(
                f"histories at positions {empty[:5]} hold no item the model knows; "
                "recommend() returns an empty list for such a history"
            )
        return rows

    def row(self, item_id: str) -> int | None:
        """The column of item_id in `scores` (None when the model does not know it)."""
        return self._state.item_ids.row(item_id)

    def user_vectors(self, histories: Sequence[History]) -> Tensor:
        """(B, d) the model's state after each history: an item's score is its dot product with it.

        (Plus new_item_boost for items unseen in training.) This is all of the model's
        work for a request: history to indices, encoder, first decoder step. The rest is
        one matmul over the item matrix and a top-k. bench.speed times it apart, to show
        how much of a recommendation is the model and how much the catalogue.
        """
        with torch.inference_mode():
            states, _, _ = self._states(self._state, self._known_rows(histories))
        return states.float()

    def scores(
        self,
        histories: Sequence[History],
        *,
        exclude_seen: bool = True,
        at: float | Sequence[float] | None = None,
    ) -> Tensor:
        """(B, n_items + 1) logits for non-empty histories; column 0 and seen items are -inf. For metrics.

        at: the query time (one, or one per history) of a model that scores item age; default now.
        """
        state = self._state
        with torch.inference_mode():
            states, _, _ = self._states(state, self._known_rows(histories))
            logits = self._logits(state, states, self._bias(state, at))
            if exclude_seen:
                seen = [(b, i) for b, h in enumerate(histories) for i in self._seen(h)]
                if seen:
                    at = torch.tensor(seen, device=self.device).T
                    logits[at[0], at[1]] = float("-inf")
        return logits

    # -- recommending ------------------------------------------------------------

    def recommend(
        self,
        history: Sequence[str],
        k: int = 10,
        *,
        exclude: Collection[str] = (),
        allowed: Collection[str] | None = None,
        allow_seen: bool = False,
        event_types: Sequence[str] | None = None,
        timestamps: Sequence[float] | None = None,
        generate: bool = False,
        explain: bool = True,
        groups: Mapping[str, Collection[str]] | None = None,
        at: float | None = None,
    ) -> list[Recommendation]:
        """The top-k next items for one history (a user, an anonymous session, an editor's list).

        Items in the history are excluded unless allow_seen; `allowed` restricts the
        candidates (e.g. published items). generate=True lets the decoder write the
        list step by step, each pick knowing the ones before; on ML-1M's list task
        those lists scored lower than the default, which ranks by the first step alone
        (README, "The model") and is what serving uses. explain=False skips the
        explanations (each costs one more encoder pass per distinct history item).
        `groups` names sets of history items (e.g. by tag): an item no single event
        explains is explained by the group whose removal lowers it most, if enough.
        `at`: the time of the request (default now) for a model that scores item age.
        """
        return self._recommend(
            [history], k, [exclude], allowed, allow_seen, [event_types], [timestamps], generate,
            explain, [groups or {}], at,
        )[0]  # fmt: skip

    def recommend_batch(
        self,
        histories: Sequence[Sequence[str]],
        k: int = 10,
        *,
        excludes: Sequence[Collection[str]] | None = None,
        allowed: Collection[str] | None = None,
        allow_seen: bool = False,
        generate: bool = False,
        explain: bool = True,
        at: float | None = None,
    ) -> list[list[Recommendation]]:
        """recommend() for many histories, batched through the model; results in input order."""
        excludes = excludes if excludes is not None else [()] * len(histories)
        out: list[list[Recommendation]] = []
        for start in range(0, len(histories), BATCH):
            part = slice(start, start + BATCH)
            n = len(histories[part])
            out += self._recommend(
                histories[part],
                k,
                excludes[part],
                allowed,
                allow_seen,
                [None] * n,
                [None] * n,
                generate,
                explain,
                [{}] * n,
                at,
            )
        return out

    def _recommend(
        self,
        histories: Sequence[History],
        k: int,
        excludes: Sequence[Collection[str]],
        allowed: Collection[str] | None,
        allow_seen: bool,
        event_types: Sequence[Sequence[str] | None],
        timestamps: Sequence[Sequence[float] | None],
        generate: bool,
        explain: bool,
        groups: Sequence[Mapping[str, Collection[str]]],
        at: float | None = None,
    ) -> list[list[Recommendation]]:
        if generate and not self.list_steps_trained:
            raise ValueError(
                "generate=True needs the decoder's list steps, and this model was trained without them "
                "(aux_positions 0): rank by the first step (generate=False) or train with aux_positions > 0"
            )
        state = self._state
        rows = [self._indices(h, e, t) for h, e, t in zip(histories, event_types, timestamps, strict=True)]
        live = [n for n, r in enumerate(rows) if r[0]]
        results: list[list[Recommendation]] = [[] for _ in rows]
        if not live or k <= 0:
            return results
        with torch.inference_mode():
            states, memory, valid = self._states(state, [rows[n] for n in live])
            bias = self._bias(state, at)
            banned = []
            for n in live:
                columns = self._known(state, excludes[n])
                banned.append(columns if allow_seen else columns + self._seen(histories[n]))
            n_columns = state.matrix.size(0)
            width = min(k, n_columns)
            wanted = min(n_columns, max(5 * k, 50)) if generate else width
            if state.item_index is None:
                top_values, top_indices, log_norm = self._top_exact(
                    state, states, banned, allowed, wanted, bias
                )
            else:
                top_values, top_indices, log_norm = self._top_index(
                    state, states, banned, allowed, wanted, bias
                )
            if generate:
                picked, _ = state.model.generate(
                    memory, valid, state.matrix, k, top_values == float("-inf"), top_indices,
                    None if bias is None else bias.expand(len(live), -1).gather(1, top_indices),
                )  # fmt: skip
                chosen = top_indices.gather(1, picked)
                if chosen.size(1) < width:  # lists longer than the decoder's steps go on in ranked order
                    chosen = torch.stack(
                        [
                            torch.cat([c, t[~torch.isin(t, c)]])[:width]
                            for c, t in zip(chosen, top_indices, strict=True)
                        ]
                    )
                at = (chosen[:, :, None] == top_indices[:, None, :]).int().argmax(2)
                values = top_values.gather(1, at)
            else:
                values, chosen = top_values, top_indices
            probs = (values - log_norm).exp()
            if explain:
                live_rows, live_groups = [rows[n] for n in live], [groups[n] for n in live]
                reasons = self._explain(state, chosen, live_rows, states, values, live_groups, bias)
            else:
                reasons = [[(None, None, False, False)] * chosen.size(1) for _ in live]
        for b, n in enumerate(live):
            ok = torch.isfinite(values[b]).tolist()
            ids, ps = chosen[b].tolist(), probs[b].tolist()
            results[n] = [
                Recommendation(state.item_ids[i - 1], float(p), *r)
                for i, p, r, good in zip(ids, ps, reasons[b], ok, strict=True)
                if good
            ]
        return results

    def _top_exact(
        self,
        state: _Serving,
        states: Tensor,
        banned: Sequence[Sequence[int]],
        allowed: Collection[str] | None,
        wanted: int,
        bias: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(B, wanted) best scores and their columns, (B, 1) log-normaliser: every item scored."""
        logits = self._logits(state, states, bias)
        if allowed is not None:
            logits = self._only(state, logits, allowed)
        for b, columns in enumerate(banned):
            if columns:
                logits[b].index_fill_(0, torch.tensor(columns, device=self.device), float("-inf"))
        values, indices = logits.topk(wanted, dim=1)
        return values, indices, torch.logsumexp(logits, dim=1, keepdim=True)

    def _top_index(
        self,
        state: _Serving,
        states: Tensor,
        banned: Sequence[Sequence[int]],
        allowed: Collection[str] | None,
        wanted: int,
        bias: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """_top_exact's result from the index's candidates, filtered and rescored exactly.

        Each of its indexes proposes wanted x OVERSAMPLE items (more when `allowed` keeps
        a part of the catalogue) plus one per banned item, so an excluded item ranked
        first by the index cannot crowd out the list; the rows it does not index (small
        groups, items added or changed since its build) are scored beside it. A history
        whose filters leave fewer than `wanted` candidates (while the catalogue holds
        more) is scored exactly. The normaliser is the candidates' exact mass plus the
        rest's, estimated from a fixed uniform sample.
        """
        item_index, n_items = state.item_index, state.matrix.size(0) - 1
        keep = None
        if allowed is not None:
            keep = torch.zeros(n_items + 1, dtype=torch.bool, device=self.device)
            keep[torch.tensor(self._known(state, allowed), dtype=torch.long)] = True
            keep[0] = False
        n_allowed = n_items if keep is None else int(keep.sum())
        share = max(n_allowed, 1) / n_items  # the index's candidates outside `allowed` are wasted
        k_search = math.ceil(wanted * OVERSAMPLE / share) + max(len(b) for b in banned)
        if keep is not None and n_allowed <= k_search:  # so few allowed: they are the candidates
            found = keep.nonzero().view(1, -1).expand(len(banned), -1)
        else:
            found = torch.from_numpy(item_index.search(states.float().cpu().numpy(), k_search)).to(
                self.device
            )
        sample = torch.from_numpy(item_index.sample).to(self.device)
        beside = torch.cat([torch.from_numpy(item_index.exact).to(self.device), state.fresh])
        out_values = torch.full((len(banned), wanted), float("-inf"), device=self.device)
        out_indices = torch.zeros((len(banned), wanted), dtype=torch.long, device=self.device)
        log_norm = torch.empty((len(banned), 1), device=self.device)
        for b, columns in enumerate(banned):
            blocked = torch.tensor(columns, dtype=torch.long, device=self.device).unique()
            candidates = torch.cat([found[b][found[b] > 0], beside]).unique()
            ok = ~torch.isin(candidates, blocked)
            rest = ~torch.isin(sample, candidates) & ~torch.isin(sample, blocked)
            if keep is not None:
                ok &= keep[candidates]
                rest &= keep[sample]
            candidates = candidates[ok]
            eligible = n_allowed - (int(keep[blocked].sum()) if keep is not None else blocked.numel())
            if candidates.numel() < min(wanted, eligible):
                exact = self._top_exact(
                    state, states[b : b + 1], [columns], allowed, wanted, None if bias is None else bias[-1:]
                )
                out_values[b], out_indices[b], log_norm[b] = (t[0] for t in exact)
                continue
            row_bias = None if bias is None else bias[min(b, bias.size(0) - 1)]
            values = self._rescore(state, states[b], candidates, row_bias)
            top = values.topk(min(wanted, values.numel()))
            out_values[b, : top.values.numel()] = top.values
            out_indices[b, : top.values.numel()] = candidates[top.indices]
            mass = torch.logsumexp(values, dim=0)
            if rest.any() and eligible > candidates.numel():
                tail = self._rescore(state, states[b], sample[rest], row_bias)
                tail_mass = torch.logsumexp(tail, dim=0) + math.log(
                    (eligible - candidates.numel()) / tail.numel()
                )
                mass = torch.logaddexp(mass, tail_mass)
            log_norm[b] = mass
        return out_values, out_indices, log_norm

    @staticmethod
    def _rescore(state: _Serving, user: Tensor, columns: Tensor, bias: Tensor | None) -> Tensor:
        """Exact logits (as _logits) of one user's state for some columns (none of them 0)."""
        values = state.matrix[columns] @ user.float()
        return values if bias is None else values + bias[columns]

    def _only(self, state: _Serving, scores: Tensor, allowed: Collection[str]) -> Tensor:
        """scores (..., n_items + 1) with every column outside `allowed` set to -inf."""
        keep = torch.tensor(self._known(state, allowed), dtype=torch.long, device=self.device)
        masked = torch.full_like(scores, float("-inf"))
        masked[..., keep] = scores[..., keep]
        return masked

    @staticmethod
    def _group_columns(
        state: _Serving, groups: Mapping[str, Collection[str]], distinct: Sequence[int]
    ) -> dict[str, set[int]]:
        """Each named group's columns among the history's distinct items (groups with none dropped)."""
        present = set(distinct)
        out = {}
        for name, members in groups.items():
            cols = set(Recommender._known(state, members)) & present
            if cols:
                out[name] = cols
        return out

    def _explain(
        self,
        state: _Serving,
        chosen: Tensor,
        rows: list[tuple[list[int], list[int], list[int]]],
        states: Tensor,
        values: Tensor,
        groups: Sequence[Mapping[str, Collection[str]]],
        bias: Tensor | None = None,
    ) -> list[list[tuple[str | None, str | None, bool, bool]]]:
        """(history item, group, fresh, popular) explaining each listed item: what lowers its share most.

        Leave-one-out: every history is re-encoded once per distinct item among its
        EXPLAIN_EVENTS newest, with that item's events left out (and once per group, with
        all of the group's items left out), all variants in batched forward passes (a
        200-item history explained item by item took 340 ms). An item's score here is its
        log-probability among the k items recommended: leaving out the newest event
        moves every score in the catalogue, so a raw logit (or catalogue probability)
        would credit that event with nearly everything; what explains *this* item is
        what lifts it above the others in its list. A citation needs a drop of at least
        MIN_INFLUENCE; when no single item does it (many reads of one topic share the
        credit), the group that does is cited instead (a group holding the whole
        history, like a one-item history, explains all it yields: there is nothing to
        compare with), and otherwise nothing: no invented reason. A read is not cited
        either when a group it is not part of lowers the item more. For a model that
        scores item age, the age logits are left out the same way: when that lowers the
        item most, its reason is that it is new (``fresh``). For a model that stores a
        typical reader (``set_typical``), no read or group is cited for an item that reader's
        list would hold about as high (less than PERSONAL_LIFT lower): nothing personal put
        it there, and it is ``popular``. Such a model also cites a read or group only when
        it is sufficient as well as necessary: as the whole history, it alone lifts the item
        PERSONAL_LIFT above the typical reader. Leaving out the newest read can lower an item
        it has nothing to do with, by raising the items like that read (on the demo, a Space
        read was "the reason" for Markets items, which a Space read alone does not list).
        """
        variants: list[tuple[list[int], list[int], list[int]]] = []
        owners: list[tuple[int, int | None, str | None]] = []  # (history, left-out item, group)
        left: list[set[int]] = []  # the rows each variant leaves out
        solo: list[tuple[list[int], list[int], list[int]]] = []  # each variant's left-out events alone
        sufficiency = state.model.config.typical_reader
        whole: dict[int, list[str]] = {}  # per history: groups holding all of it, the evidence entire
        for b, (items, types, gaps) in enumerate(rows):
            distinct = list(dict.fromkeys(items))
            if len(distinct) < 2:
                continue
            newest = list(dict.fromkeys(reversed(items)))[:EXPLAIN_EVENTS]
            sets = [({item}, item, None) for item in newest]
            named = self._group_columns(state, groups[b], distinct).items()
            whole[b] = [name for name, cols in named if len(cols) == len(distinct)]
            partial = [(name, cols) for name, cols in named if len(cols) < len(distinct)]
            for name, cols in sorted(partial, key=lambda g: -len(g[1]))[:EXPLAIN_GROUPS]:
                sets.append((cols, None, name))
            for left_out, item, name in sets:
                keep = [n for n, i in enumerate(items) if i not in left_out]
                variants.append(([items[n] for n in keep], [types[n] for n in keep], [gaps[n] for n in keep]))
                owners.append((b, item, name))
                left.append(set(left_out))
                if sufficiency:
                    only = [n for n, i in enumerate(items) if i in left_out]
                    solo.append(
                        (
                            [items[n] for n in only],
                            [types[n] for n in only],
                            [0] + [gaps[n] for n in only[1:]],
                        )
                    )
        varied = self._many_states(state, variants) if variants else states.new_zeros(0, states.size(1))
        alone = self._many_states(state, solo) if solo else None
        out: list[list[tuple[str | None, str | None, bool, bool]]] = []
        for b, (items, _, _) in enumerate(rows):
            mine = [v for v, owner in enumerate(owners) if owner[0] == b]
            row_bias = None if bias is None else bias[min(b, bias.size(0) - 1)][chosen[b]]
            personal = self._lift(state, states[b], row_bias, chosen[b], values[b])
            if not mine:  # one distinct item: it is the whole evidence
                lone = state.item_ids[items[0] - 1]
                out.append([(lone, None, False, False) if p else (None, None, False, True) for p in personal])
                continue
            logits = torch.cat([states[b : b + 1].float(), varied[mine]]) @ state.matrix[chosen[b]].T
            if row_bias is not None:  # the same for every variant, but it weighs the items in the list
                logits += row_bias
            logits[:, ~torch.isfinite(values[b])] = float("-inf")  # filtered out: not in the list
            drops = (list_log_probs(logits[:1]) - list_log_probs(logits[1:])).nan_to_num(float("-inf"))
            lifts = (
                None
                if alone is None
                else self._alone_lifts(state, alone[mine], row_bias, chosen[b], values[b])
            )
            age_drop = self._age_drop(state, logits[:1], row_bias, chosen[b])
            single = torch.tensor([owners[v][1] is not None for v in mine], device=drops.device)
            best_item, item_at = drops.masked_fill(~single[:, None], float("-inf")).max(0)
            best_group, group_at = drops.masked_fill(single[:, None], float("-inf")).max(0)
            reasons: list[tuple[str | None, str | None, bool, bool]] = []
            for j, (d_item, i_at, d_group, g_at, d_age, own) in enumerate(
                zip(
                    best_item.tolist(),
                    item_at.tolist(),
                    best_group.tolist(),
                    group_at.tolist(),
                    age_drop,
                    personal,
                    strict=True,
                )
            ):
                read = owners[mine[i_at]][1]
                # necessary is not enough: the read (or group) alone must lift the item too
                read_alone = lifts is None or lifts[i_at][j] >= PERSONAL_LIFT
                group_alone = lifts is None or lifts[g_at][j] >= PERSONAL_LIFT
                # A read outside the most influential group, which lowers the item less than that
                # group does, is not the reason: the group's reads are, together (redundant
                # evidence: no single one of them moves the item much).
                outweighed = d_group > d_item and read not in left[mine[g_at]]
                if d_age >= max(d_item, d_group, MIN_INFLUENCE):
                    reasons.append((None, None, True, False))
                elif not own:  # a typical reader gets it too: no read is its reason
                    reasons.append((None, None, False, True))
                elif d_item >= MIN_INFLUENCE and not outweighed and read_alone:
                    reasons.append((state.item_ids[read - 1], None, False, False))
                elif d_group >= MIN_INFLUENCE and group_alone:
                    reasons.append((None, owners[mine[g_at]][2], False, False))
                elif whole[b]:  # a group holding the whole history is all the evidence, like a lone item
                    reasons.append((None, whole[b][0], False, False))
                else:
                    reasons.append((None, None, False, False))
            out.append(reasons)
        return out

    @staticmethod
    def _alone_lifts(
        state: _Serving, alone: Tensor, row_bias: Tensor | None, columns: Tensor, values: Tensor
    ) -> list[list[float]]:
        """(variants, listed) lift of each item when a variant's left-out reads are the whole history.

        The lift is the item's log-probability in the list for that history minus the
        typical reader's, as in `_lift`: what the reads by themselves do for the item.
        """
        logits = torch.cat([alone, state.model.typical.float()[None]]) @ state.matrix[columns].T
        if row_bias is not None:
            logits += row_bias
        logits[:, ~torch.isfinite(values)] = float("-inf")  # filtered out: not in the list
        shares = list_log_probs(logits)
        return (shares[:-1] - shares[-1:]).nan_to_num(float("-inf")).tolist()

    @staticmethod
    def _lift(
        state: _Serving, reader: Tensor, row_bias: Tensor | None, columns: Tensor, values: Tensor
    ) -> list[bool]:
        """Per listed item: does the reader's list hold it PERSONAL_LIFT higher than a typical reader's?

        Both log-probabilities are among the listed items (as the explanation drops), so the
        test asks what is personal about the item's place in *this* list. A model without a
        typical reader (trained before it was stored) calls every item personal.
        """
        model = state.model
        if not model.config.typical_reader:
            return [True] * columns.numel()
        logits = torch.stack([reader.float(), model.typical.float()]) @ state.matrix[columns].T
        if row_bias is not None:
            logits += row_bias
        logits[:, ~torch.isfinite(values)] = float("-inf")  # filtered out: not in the list
        lift = list_log_probs(logits)
        return ((lift[0] - lift[1]).nan_to_num(float("inf")) >= PERSONAL_LIFT).tolist()

    @staticmethod
    def _age_drop(state: _Serving, logits: Tensor, row_bias: Tensor | None, columns: Tensor) -> list[float]:
        """How much each listed item's share of the list falls without the item-age logits.

        An item the model lists for being new, more than for any read, is explained by that.
        """
        if not state.model.config.age_buckets or row_bias is None:
            return [float("-inf")] * logits.size(1)
        age = row_bias if state.boost is None else row_bias - state.boost[columns]
        drop = list_log_probs(logits) - list_log_probs(logits - age)
        return drop.nan_to_num(float("-inf"))[0].tolist()

    def similar(
        self,
        item_id: str,
        k: int = 10,
        *,
        exclude: Collection[str] = (),
        allowed: Collection[str] | None = None,
    ) -> list[Recommendation]:
        """Items closest to item_id in the model's item space (cosine); score is the cosine."""
        state = self._state
        target = state.item_ids.row(item_id)
        if target is None:
            logger.warning("similar(): item %r unknown to the model", item_id)
            return []
        with torch.inference_mode():
            sims = (state.matrix @ state.matrix[target]) / (state.norms * state.norms[target])
            sims[0] = float("-inf")
            sims[target] = float("-inf")
            if allowed is not None:
                sims = self._only(state, sims, allowed)
            banned = self._known(state, exclude)
            if banned:
                sims.index_fill_(0, torch.tensor(banned, device=self.device), float("-inf"))
            values, chosen = sims.topk(min(k, sims.numel()))
        return [
            Recommendation(state.item_ids[i - 1], float(v), item_id)
            for i, v in zip(chosen.tolist(), values.tolist(), strict=True)
            if v != float("-inf")
        ]
