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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from recommender.ml import ann
from recommender.ml.data import UserSequence, collapse_repeats, gap_buckets
from recommender.ml.model import Seq2SeqRecommender, grow_model

logger = logging.getLogger(__name__)

History = Sequence[str] | UserSequence
BATCH = 256  # histories per forward pass in batch scoring
EXPLAIN_BATCH = 1024  # left-one-out histories per forward pass when explaining
EXPLAIN_EVENTS = 16  # newest distinct history items that may be cited (each costs an encoder pass)
EXPLAIN_GROUPS = 8  # largest groups that may be cited
MIN_INFLUENCE = 0.5  # drop of an item's log-probability in its list for an event to be cited (/1.65)
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


@dataclass(frozen=True)
class _Serving:
    """Everything a read needs, swapped as one reference so add_items never races a recommend."""

    model: Seq2SeqRecommender
    item_ids: list[str]
    index: dict[str, int]
    matrix: Tensor  # (n_items + 1, d), row 0 = padding; may be a file mapping shared by processes
    norms: Tensor  # (n_items + 1,) row lengths for similar(): a normalised copy would double the matrix
    boost: Tensor | None  # (n_items + 1,) logit added to items unseen in training; None = no boost
    item_index: ann.CatalogueIndex | None = None  # candidates for large catalogues (None: exact scoring)
    fresh: Tensor | None = None  # rows the index misses or holds stale: added or changed since its build


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
        a file, so the processes of a host share it), used until items are added; index_dir: a
        folder where the approximate index over that matrix is kept for every process.
        """
        self.event_types = list(event_types)  # index i + 1 in the event-type table
        self.tags = list(tags)  # index i + 1 in the tag table
        self.metadata = metadata if metadata is not None else {}
        self.device = torch.device(device)
        self._type_index = {t: i + 1 for i, t in enumerate(self.event_types)}
        self._write_lock = threading.Lock()
        self._new_item_boost = _finite_boost(new_item_boost)
        self._ann_min_items = ann_min_items
        self._shared = (item_matrix, index_dir)
        self._state = self._serving(model.to(self.device), list(item_ids), matrix=item_matrix)

    # -- state ---------------------------------------------------------------

    def _serving(
        self,
        model: Seq2SeqRecommender,
        item_ids: list[str],
        previous: _Serving | None = None,
        changed: Sequence[int] = (),
        matrix: Tensor | None = None,
    ) -> _Serving:
        """Serving state for `model`; with `previous`, only the `changed` and new rows are computed.

        Adding one item to a 100k-item catalogue then costs that item's vector, not a
        rebuild of the whole item matrix (and of every new item's twin search). A given
        `matrix` (the model's own, computed before) is used as it is: it is never written to.
        """
        model.eval()
        with torch.no_grad():
            if matrix is not None:
                matrix = matrix.to(self.device, torch.float32)
            elif previous is None:
                matrix = model.item_matrix().float().contiguous()
            else:
                old = previous.matrix
                rows = sorted({*changed, *range(old.size(0), len(item_ids) + 1)})
                if rows:
                    matrix = torch.cat([old, old.new_zeros(len(item_ids) + 1 - old.size(0), old.size(1))])
                    index = torch.tensor(rows, dtype=torch.long, device=old.device)
                    matrix[index] = model.items(index).float()
                else:  # a setting changed: the same matrix, still shared if it was
                    matrix = old
        boost = None
        if self._new_item_boost:
            boost = torch.where(model.items.untrained(), self._new_item_boost, 0.0).to(matrix.device)
            boost[0] = 0.0  # padding stays -inf
        same = previous is not None and previous.item_ids is item_ids
        index = previous.index if same else {i: n + 1 for n, i in enumerate(item_ids)}
        item_index, fresh = self._item_index(model, matrix, previous, changed)
        if previous is not None and previous.matrix is matrix:
            norms = previous.norms
        else:
            norms = matrix.norm(dim=1).clamp(min=1e-12)  # F.normalize's floor: a zero row has cosine 0
        return _Serving(model, item_ids, index, matrix, norms, boost, item_index, fresh)

    def _item_index(
        self, model: Seq2SeqRecommender, matrix: Tensor, previous: _Serving | None, changed: Sequence[int]
    ) -> tuple[ann.CatalogueIndex | None, Tensor | None]:
        """The approximate index for this state, and the rows to score exactly beside it.

        The previous state's index is kept while the items added or changed since its
        build are few (they are scored exactly: a new item is found at once); a
        whole-matrix rebuild or too many such items build it again.
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
        untrained = model.items.untrained().cpu().numpy()
        rows = np.arange(1, n_items + 1)
        shared, directory = self._shared
        directory = directory if matrix is shared else None  # kept files index the shared matrix only
        groups = [rows[~untrained[1:]], rows[untrained[1:]]]
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
            self._state = self._serving(state.model, state.item_ids, state)

    @property
    def new_item_boost(self) -> float:
        """A logit added to every item the model was not trained on: how far to push new items up.

        0 ranks them by their content (and their twin's ID, for a near-duplicate of a
        trained item: see ItemTable.twin_ids, the twin is boosted too), which is about
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
            self._state = self._serving(state.model, state.item_ids, state)

    @property
    def model(self) -> Seq2SeqRecommender:
        return self._state.model

    @property
    def item_ids(self) -> list[str]:
        return self._state.item_ids

    def __contains__(self, item_id: str) -> bool:
        return item_id in self._state.index

    def add_items(
        self, content: Mapping[str, np.ndarray], tags: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        """Add items unseen in training (scored from their content), or refresh known items' content.

        Tag names the model has never seen carry no learned meaning and are ignored.
        """
        config = self._state.model.config
        if content and not config.content_dim:
            raise ValueError("this model was trained without content vectors; it cannot score new items")
        tags = tags or {}
        with self._write_lock:
            state = self._state
            new_ids = [i for i in dict.fromkeys([*content, *tags]) if i not in state.index]
            item_ids = state.item_ids + new_ids
            model = state.model
            if new_ids:
                model = grow_model(model, len(item_ids) + 1, config.n_event_types)
            index = {i: n + 1 for n, i in enumerate(item_ids)}
            table = model.items
            with torch.no_grad():
                if content:
                    # Every vector is checked before any is written, then one copy (one to the GPU).
                    vectors = [np.asarray(v, dtype=np.float32).reshape(-1) for v in content.values()]
                    for item_id, vec in zip(content, vectors, strict=True):
                        if vec.size != config.content_dim:
                            raise ValueError(
                                f"item {item_id!r}: content vector has {vec.size} dims, "
                                f"the model expects {config.content_dim}"
                            )
                    rows = torch.tensor([index[i] for i in content], device=table.content.device)
                    table.content[rows] = torch.from_numpy(np.stack(vectors)).to(table.content.device)
                if config.n_tags:
                    tag_index = {t: n + 1 for n, t in enumerate(self.tags)}
                    for item_id, names in tags.items():
                        known = [tag_index[t] for t in names if t in tag_index][: config.max_tags]
                        row = table.tag_index[index[item_id]]
                        row.zero_()
                        row[: len(known)] = torch.tensor(known, dtype=torch.long)
            changed = [index[i] for i in [*content, *tags] if i in state.index]
            # A trained item's new text can make it, or stop it being, a new item's twin: rebuild all.
            warm_changed = bool(changed) and bool(table.trained[changed].any())
            self._state = self._serving(model, item_ids, None if warm_changed else state, changed)

    # -- history -> tensors ----------------------------------------------------

    def _indices(
        self, history: History, event_types: Sequence[str] | None, timestamps: Sequence[float] | None
    ) -> tuple[list[int], list[int], list[int]]:
        """Known items only (unknown ones skipped with a warning), repeats collapsed, last max_len."""
        if isinstance(history, UserSequence):
            items, types, stamps = history.items, history.event_types, history.timestamps
        else:
            items = list(history)
            types = list(event_types) if event_types is not None else ["view"] * len(items)
            stamps = list(timestamps) if timestamps is not None else [0.0] * len(items)
        index = self._state.index
        unknown = [i for i in items if i not in index]
        if unknown:
            logger.warning("skipping %d history item(s) unknown to the model: %s", len(unknown), unknown[:5])
        kept = [n for n, i in enumerate(items) if i in index]
        seq = collapse_repeats(
            [items[n] for n in kept], [types[n] for n in kept], [float(stamps[n]) for n in kept], None
        )
        seq = seq.tail(self._state.model.config.max_len)
        return (
            [index[i] for i in seq.items],
            [self._type_index.get(t, 0) for t in seq.event_types],
            gap_buckets(seq.timestamps),
        )

    def _seen(self, history: History) -> list[int]:
        """Columns of every known item in the history, also those older than the model's window.

        The model reads the last max_len events; what a reader saw before that is still
        seen, and must not come back as a recommendation.
        """
        items = history.items if isinstance(history, UserSequence) else history
        index = self._state.index
        return list({index[i] for i in items if i in index})

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
        memory = state.model.encode(items, types, gaps, state.matrix)
        valid = items != 0
        return state.model.next_state(memory, valid), memory, valid

    @staticmethod
    def _logits(state: _Serving, states: Tensor) -> Tensor:
        """(B, n_items + 1) scores of every item, the new-item boost included; padding is -inf.

        scores() and recommend() share it, so what metrics measure is what is served.
        """
        logits = states.float() @ state.matrix.T
        if state.boost is not None:
            logits += state.boost
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
        return self._state.index.get(item_id)

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

    def scores(self, histories: Sequence[History], *, exclude_seen: bool = True) -> Tensor:
        """(B, n_items + 1) logits for non-empty histories; column 0 and seen items are -inf. For metrics."""
        state = self._state
        with torch.inference_mode():
            states, _, _ = self._states(state, self._known_rows(histories))
            logits = self._logits(state, states)
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
        """
        return self._recommend(
            [history], k, [exclude], allowed, allow_seen, [event_types], [timestamps], generate,
            explain, [groups or {}],
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
    ) -> list[list[Recommendation]]:
        state = self._state
        rows = [self._indices(h, e, t) for h, e, t in zip(histories, event_types, timestamps, strict=True)]
        live = [n for n, r in enumerate(rows) if r[0]]
        results: list[list[Recommendation]] = [[] for _ in rows]
        if not live or k <= 0:
            return results
        with torch.inference_mode():
            states, memory, valid = self._states(state, [rows[n] for n in live])
            banned = []
            for n in live:
                columns = [state.index[i] for i in excludes[n] if i in state.index]
                banned.append(columns if allow_seen else columns + self._seen(histories[n]))
            n_columns = state.matrix.size(0)
            width = min(k, n_columns)
            wanted = min(n_columns, max(5 * k, 50)) if generate else width
            if state.item_index is None:
                top_values, top_indices, log_norm = self._top_exact(state, states, banned, allowed, wanted)
            else:
                top_values, top_indices, log_norm = self._top_index(state, states, banned, allowed, wanted)
            if generate:
                bias = None if state.boost is None else state.boost[top_indices]
                picked, _ = state.model.generate(
                    memory, valid, state.matrix, k, top_values == float("-inf"), top_indices, bias
                )
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
                reasons = self._explain(
                    state, chosen, [rows[n] for n in live], states, values, [groups[n] for n in live]
                )
            else:
                reasons = [[(None, None)] * chosen.size(1) for _ in live]
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
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(B, wanted) best scores and their columns, (B, 1) log-normaliser: every item scored."""
        logits = self._logits(state, states)
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
            keep[torch.tensor([state.index[i] for i in allowed if i in state.index], dtype=torch.long)] = True
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
                exact = self._top_exact(state, states[b : b + 1], [columns], allowed, wanted)
                out_values[b], out_indices[b], log_norm[b] = (t[0] for t in exact)
                continue
            values = self._rescore(state, states[b], candidates)
            top = values.topk(min(wanted, values.numel()))
            out_values[b, : top.values.numel()] = top.values
            out_indices[b, : top.values.numel()] = candidates[top.indices]
            mass = torch.logsumexp(values, dim=0)
            if rest.any() and eligible > candidates.numel():
                tail = self._rescore(state, states[b], sample[rest])
                tail_mass = torch.logsumexp(tail, dim=0) + math.log(
                    (eligible - candidates.numel()) / tail.numel()
                )
                mass = torch.logaddexp(mass, tail_mass)
            log_norm[b] = mass
        return out_values, out_indices, log_norm

    @staticmethod
    def _rescore(state: _Serving, user: Tensor, columns: Tensor) -> Tensor:
        """Exact logits (as _logits) of one user's state for some columns (none of them 0)."""
        values = state.matrix[columns] @ user.float()
        return values if state.boost is None else values + state.boost[columns]

    def _only(self, state: _Serving, scores: Tensor, allowed: Collection[str]) -> Tensor:
        """scores (..., n_items + 1) with every column outside `allowed` set to -inf."""
        keep = torch.tensor(
            [state.index[i] for i in allowed if i in state.index], dtype=torch.long, device=self.device
        )
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
            cols = {state.index[i] for i in members if i in state.index} & present
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
    ) -> list[list[tuple[str | None, str | None]]]:
        """(history item, group) explaining each recommended item: what lowers its share of the list most.

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
        compare with), and otherwise nothing: no invented reason.
        """
        variants: list[tuple[list[int], list[int], list[int]]] = []
        owners: list[tuple[int, int | None, str | None]] = []  # (history, left-out item, group)
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
        varied = torch.cat(
            [
                self._states(state, variants[start : start + EXPLAIN_BATCH])[0].float()
                for start in range(0, len(variants), EXPLAIN_BATCH)
            ]
        ) if variants else states.new_zeros(0, states.size(1))  # fmt: skip
        out: list[list[tuple[str | None, str | None]]] = []
        for b, (items, _, _) in enumerate(rows):
            mine = [v for v, owner in enumerate(owners) if owner[0] == b]
            if not mine:  # one distinct item: it is the whole evidence
                out.append([(state.item_ids[items[0] - 1], None)] * chosen.size(1))
                continue
            logits = torch.cat([states[b : b + 1].float(), varied[mine]]) @ state.matrix[chosen[b]].T
            logits[:, ~torch.isfinite(values[b])] = float("-inf")  # filtered out: not in the list
            drops = (list_log_probs(logits[:1]) - list_log_probs(logits[1:])).nan_to_num(float("-inf"))
            single = torch.tensor([owners[v][1] is not None for v in mine], device=drops.device)
            best_item, item_at = drops.masked_fill(~single[:, None], float("-inf")).max(0)
            best_group, group_at = drops.masked_fill(single[:, None], float("-inf")).max(0)
            reasons: list[tuple[str | None, str | None]] = []
            for d_item, i_at, d_group, g_at in zip(
                best_item.tolist(), item_at.tolist(), best_group.tolist(), group_at.tolist(), strict=True
            ):
                if d_item >= MIN_INFLUENCE:
                    reasons.append((state.item_ids[owners[mine[i_at]][1] - 1], None))
                elif d_group >= MIN_INFLUENCE:
                    reasons.append((None, owners[mine[g_at]][2]))
                elif whole[b]:  # a group holding the whole history is all the evidence, like a lone item
                    reasons.append((None, whole[b][0]))
                else:
                    reasons.append((None, None))
            out.append(reasons)
        return out

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
        if item_id not in state.index:
            logger.warning("similar(): item %r unknown to the model", item_id)
            return []
        with torch.inference_mode():
            target = state.index[item_id]
            sims = (state.matrix @ state.matrix[target]) / (state.norms * state.norms[target])
            sims[0] = float("-inf")
            sims[target] = float("-inf")
            if allowed is not None:
                sims = self._only(state, sims, allowed)
            banned = [state.index[i] for i in exclude if i in state.index]
            if banned:
                sims.index_fill_(0, torch.tensor(banned, device=self.device), float("-inf"))
            values, chosen = sims.topk(min(k, sims.numel()))
        return [
            Recommendation(state.item_ids[i - 1], float(v), item_id)
            for i, v in zip(chosen.tolist(), values.tolist(), strict=True)
            if v != float("-inf")
        ]
