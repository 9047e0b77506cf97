"""The Seq2Seq recommender: an encoder over the user's history, a decoder that scores the next items.

Read top to bottom, in the order data flows (nanoGPT style):

1. ``ItemTable``: every item's vector = learned ID embedding (items seen in training)
   + projection of its frozen content embedding (+ mean of its tag embeddings).
   An item the model never saw is still represented through its text; it is left
   out of the training softmax, so nothing teaches the model to bury new items.
2. ``EncoderBlock``: a causal transformer over the history; each event is
   item + event type + position + time-gap bucket.
3. ``DecoderBlock``: self-attention over the list written so far, cross-attention
   to the encoder, MLP. Step 0's query is the encoder state at position t and it
   attends to encoder outputs <= t, so step 0 trains at *every* position of every
   sequence in one pass (as SASRec does) and gives a score for every item.
   Later steps see the items already in the list; they are trained with an
   auxiliary loss on a few sampled positions, so they add little cost. Serving ranks
   by step 0 alone: on ML-1M's list task, lists the later steps wrote scored lower
   (README, "The model").
4. ``Seq2SeqRecommender``: ``encode``, ``first_step``, ``list_steps``, ``loss``, ``generate``.

Scores are dot products of decoder states with the item table (tied weights), plus,
for a model trained with publication times, a learned logit by the item's age at
the time of the request (``age_logits``): news is read when it is new, and without a
clock the model could only guess "now" from the reader's newest read.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import Tensor, nn

from recommender.ml.data import GAP_BUCKETS

AGE_BUCKETS = 32  # item-age buckets: unknown, not yet published, then half-octaves of age
AGE_UNIT = 600.0  # seconds: ages under ten minutes share the first bucket
# The age logit is a stored value times AGE_SCALE: Adam moves a parameter by about the learning
# rate per step, so a bare scalar would need thousands of steps to reach a few logits.
AGE_SCALE = 20.0
TWIN_COSINE = 0.9  # content cosine above which a new item counts as a trained item's twin
CONTENT_DTYPE = torch.float16  # how the item table stores content vectors (see ItemTable)
SIDE_SLICE = 65536  # content rows projected at once when the whole table is projected
TWIN_SEARCH_ELEMENTS = 32 * 1024 * 1024  # similarities held at once by the twin search (128 MB)


@dataclass
class Seq2SeqConfig:
    """Shapes of one model; stored in the artifact so a model can be rebuilt before loading weights."""

    n_items: int  # rows of the item table; row 0 is padding
    # rows of the ID table when only read items have one (ItemTable.id_row); 0 = one per item row
    n_id_rows: int = 0
    content_dim: int = 0  # size of the frozen content vectors (0 = no content)
    n_tags: int = 0  # tag vocabulary incl. padding row 0 (0 = no tags)
    max_tags: int = 0  # tag slots per item
    n_event_types: int = 2  # incl. padding/unknown row 0
    n_gap_buckets: int = GAP_BUCKETS
    max_len: int = 200  # longest history the encoder reads
    d_model: int = 64
    n_heads: int = 2
    n_layers: int = 2
    n_decoder_layers: int = 1
    dropout: float = 0.2
    list_len: int = 10  # decoder steps (the longest list generated in one go)
    id_dropout: float = 0.1  # share of item IDs hidden per step, so content alone learns to rank
    age_buckets: int = 0  # > 0: a learned logit by item age at the query time (needs publication times)
    # a stored typical reader's state (the mean over trained readers): what any reader would be listed
    typical_reader: bool = False
    # False: the encoder reads each event's item by its content and tags alone, never its ID,
    # so a read moves the list only through what it is about (and an item added at serving
    # time is read exactly as a trained one with the same text); the output side keeps IDs
    history_ids: bool = True


def age_buckets(ages: Tensor, n_buckets: int) -> Tensor:
    """Ages (seconds) -> bucket: 0 unknown (NaN), 1 not yet published, then half-octaves of ten minutes."""
    bucket = 2 + torch.floor(2 * torch.log2(1 + ages.clamp(min=0) / AGE_UNIT)).clamp(max=n_buckets - 3)
    bucket = torch.where(ages < 0, torch.ones_like(bucket), bucket)
    return torch.where(torch.isnan(ages), torch.zeros_like(bucket), bucket).long()


def causal_mask(valid: Tensor) -> Tensor:
    """(B, 1, L, L) bool: query i may see key j <= i that is a real event (or itself, so no row is empty)."""
    length = valid.size(1)
    tri = torch.ones(length, length, dtype=torch.bool, device=valid.device).tril()
    eye = torch.eye(length, dtype=torch.bool, device=valid.device)
    return (tri & (valid[:, None, :] | eye)).unsqueeze(1)


class ItemTable(nn.Module):
    """The vector of every item, shared by the encoder input, the decoder input and the output scores."""

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.id_dropout = config.id_dropout
        # On a large site most items are never read, and an item never read has no learned ID.
        # So only the items in training sequences get an ID row (id_row: item row -> ID row,
        # 0 = none): the ID table, its gradient and the optimizer's two moments
        # grow with what readers read, not with the catalogue (4 x 256 MB at 1M items, d 64).
        # Models saved before have one row per item (n_id_rows 0) and keep it. A trained item
        # with no row of its own (read by fewer than TrainConfig.min_id_readers readers) reads
        # row 0, which all such items share and train: a long-tail vector, no item's own link.
        self.id = nn.Embedding(config.n_id_rows or config.n_items, config.d_model, padding_idx=0)
        self.register_buffer(
            "id_row", torch.zeros(config.n_items, dtype=torch.int32) if config.n_id_rows else None
        )
        # Items with no training interactions have no learned ID: their ID part is masked
        # out; they are their content (and tags), plus their twin's ID if any (`twins`).
        self.register_buffer("trained", torch.zeros(config.n_items, dtype=torch.bool))
        self.content_proj = None
        if config.content_dim:
            # Frozen text vectors are stored in half precision (about 3 significant digits): at
            # 1M items x 384 dims that is 0.77 GB instead of 1.5 GB, in training and in every
            # serving process. Its effect on ranking quality has not been benchmarked yet.
            self.register_buffer(
                "content", torch.zeros(config.n_items, config.content_dim, dtype=CONTENT_DTYPE)
            )
            self.content_proj = nn.Linear(config.content_dim, config.d_model, bias=False)
        self.tag = None
        if config.n_tags:
            self.register_buffer("tag_index", torch.zeros(config.n_items, config.max_tags, dtype=torch.long))
            self.tag = nn.Embedding(config.n_tags, config.d_model, padding_idx=0)

    def untrained(self) -> Tensor:
        """(n_items,) True for padding and for items with no training interactions.

        The training softmax leaves them out: with no positive ever, a new item would only
        be pushed down, and its content projection would learn to bury new-looking items.
        """
        return ~self.trained

    def side(self, rows: Tensor | None = None) -> Tensor | None:
        """(R, d) what an item is without its ID: projected content + mean of its tag embeddings.

        The whole table is projected a slice at a time: one full-precision copy of a
        1M-item content table would be 1.5 GB.
        """
        if rows is None and self.content_proj is not None and len(self.content) > SIDE_SLICE:
            rows = torch.arange(len(self.content), device=self.content.device)
        if rows is not None and len(rows) > SIDE_SLICE:
            return torch.cat([self.side(part) for part in rows.split(SIDE_SLICE)])
        index = slice(None) if rows is None else rows
        return self.side_of(
            self.content[index] if self.content_proj is not None else None,
            self.tag_index[index] if self.tag is not None else None,
        )

    def side_of(self, content: Tensor | None, tag_index: Tensor | None) -> Tensor | None:
        """side() of items given by their content rows and tag rows, in this table or not."""
        side = None
        if self.content_proj is not None and content is not None:
            side = self.project(content)
        if self.tag is not None and tag_index is not None:
            slots = tag_index != 0
            tags = (self.tag(tag_index) * slots[..., None]).sum(1) / slots.sum(1, keepdim=True).clamp(min=1)
            side = tags if side is None else side + tags
        return side

    def project(self, content: Tensor) -> Tensor:
        """(R, d) content vectors (stored in half precision, or given in full) through the projection."""
        return self.content_proj(content.to(self.content_proj.weight.dtype))

    def new_vectors(self, content: Tensor | None, tag_index: Tensor | None) -> Tensor:
        """(R, d) served vectors of never-trained items kept outside this table (eval mode).

        What forward() gives such an item in the table: its side part plus its twin's ID.
        Serving keeps items added after training apart, so the table (a file mapping
        shared by the processes of a host) is never copied to grow.
        """
        count = len(content) if content is not None else len(tag_index)
        side = self.side_of(content, tag_index)
        out = self.id.weight.new_zeros(count, self.id.embedding_dim) if side is None else side
        if content is not None and self.content_proj is not None:
            positions, twins = self.twins(lambda at: content[at], count)
            out[positions] += self.ids(twins)
        return out

    def ids(self, rows: Tensor | None = None) -> Tensor:
        """(R, d) the ID vectors of item `rows` (every row when None); an item with no ID row gets zeros."""
        if self.id_row is None:
            return self.id.weight if rows is None else self.id.weight[rows]
        return self.id.weight[self.id_row if rows is None else self.id_row[rows]]

    def forward(self, rows: Tensor | None = None) -> Tensor:
        """(n_items, d) item matrix, or the vectors of `rows` only (serving adds items that way).

        In training a random share of IDs is hidden (ID dropout), so the side part learns
        to rank alone; a never-trained item is its side part, plus the ID of its twin
        when it has one (`twins`).
        """
        index = slice(None) if rows is None else rows
        keep = self.trained[index]
        side = self.side(rows)
        if not self.training:
            return self._served(rows, keep, side)
        if self.id_dropout > 0 and side is not None:
            has_side = side.detach().abs().sum(1) > 0
            hidden = (torch.rand(keep.shape, device=keep.device) < self.id_dropout) & has_side
            keep = keep & ~hidden
        vectors = self.ids(rows) * keep[:, None].to(self.id.weight.dtype)
        return vectors if side is None else vectors + side

    def _served(self, rows: Tensor | None, keep: Tensor, side: Tensor | None) -> Tensor:
        """forward() in eval mode: the ID, twin and side parts added into one buffer.

        Each (n_items, d) temporary of a whole-table build is 256 MB at 1M items; adding
        the parts out of place held five of them at once.
        """
        if side is None:
            return self.ids(rows) * keep[:, None].to(self.id.weight.dtype)
        every = torch.arange(len(self.trained), device=keep.device) if rows is None else rows
        trained = keep.nonzero().flatten()  # positions in `every`
        side[trained] += self.ids(every[trained])
        cold = ((~keep) & (every > 0)).nonzero().flatten()
        if self.content_proj is not None and len(cold):
            positions, twins = self.twins(lambda at: self.content[every[cold[at]]], len(cold))
            side[cold[positions]] += self.ids(twins)
        return side

    def twins(self, content_of: Callable[[Tensor], Tensor], count: int) -> tuple[Tensor, Tensor]:
        """Of `count` untrained items (content_of(positions): their content), those whose text nearly
        repeats a trained item's: (their positions, that trained item's row).

        A re-published article or a new edition is the same item to readers, so it gets
        that item's ID. Anything less close gets nothing: on ML-1M's cold split, borrowing
        the ID parts of the nearest trained items ranked cold targets lower than content
        alone (NDCG@10 0.0094 against 0.0133, bench.quality --cold-start), since a different
        film is a different item. The candidates are the 4 nearest by projected content
        (d wide, six times cheaper to search than the raw vectors; tags left out, a new item
        may not have its tags yet); raw content decides. Content is read a slice at a time:
        a full-precision copy of a 1M-item content table is 1.5 GB.
        """
        every = torch.arange(len(self.trained), device=self.trained.device)
        warm = every[self.trained & (every > 0)]
        positions, rows = [every[:0]], [every[:0]]
        if count == 0 or len(warm) == 0:
            return positions[0], rows[0]
        # Filled a slice at a time into one allocation: a list of slices joined by torch.cat
        # leaves them in the heap, where the allocator keeps them (+256 MB per process at 1M items).
        warm_side = torch.empty(len(warm), self.content_proj.out_features, device=warm.device)
        for start in range(0, len(warm), SIDE_SLICE):
            part = warm[start : start + SIDE_SLICE]
            warm_side[start : start + len(part)] = F.normalize(
                self.project(self.content[part]).float(), dim=1
            )
        step = max(1, min(8192, TWIN_SEARCH_ELEMENTS // len(warm)))  # bounded memory at any catalogue size
        for chunk in torch.arange(count, device=warm.device).split(step):
            content = content_of(chunk)
            has = content.abs().sum(1) > 0  # an item with no text yet has no twin
            chunk, content = chunk[has], content[has]
            if len(chunk) == 0:
                continue
            similar = F.normalize(self.project(content).float(), dim=1) @ warm_side.T
            near = warm[similar.topk(min(4, len(warm)), dim=1).indices]
            cosine = F.cosine_similarity(content[:, None].float(), self.content[near].float(), dim=-1)
            best = cosine.max(dim=1)
            twin = best.values >= TWIN_COSINE
            positions.append(chunk[twin])
            rows.append(near[twin, best.indices[twin]])
        return torch.cat(positions), torch.cat(rows)


class Dropout(nn.Dropout):
    """nn.Dropout whose CPU mask comes from torch.rand: the same distribution at half the cost.

    On a 2-core CPU, bernoulli_ took a tenth of a training step; a uniform draw compared
    with p does the same job in half the time. CUDA keeps the fused kernel.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or not 0 < self.p < 1 or x.is_cuda:
            return super().forward(x)
        keep = torch.rand(x.shape, device=x.device).ge_(self.p).to(x.dtype)
        return x * keep.mul_(1.0 / (1.0 - self.p))


class Attention(nn.Module):
    """Multi-head attention; self-attention when memory is x, cross-attention otherwise."""

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.q = nn.Linear(config.d_model, config.d_model)
        self.kv = nn.Linear(config.d_model, 2 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)
        self.resid_drop = Dropout(config.dropout)

    def forward(self, x: Tensor, memory: Tensor, mask: Tensor | None = None, causal: bool = False) -> Tensor:
        """x (B, T, d) attends to memory (B, S, d); mask (B, 1, T|1, S) True = may attend."""
        batch, t, d = x.shape
        h = self.n_heads
        k, v = self.kv(memory).split(d, dim=-1)
        q = self.q(x).view(batch, t, h, d // h).transpose(1, 2)
        k = k.view(batch, -1, h, d // h).transpose(1, 2)
        v = v.view(batch, -1, h, d // h).transpose(1, 2)
        # No dropout on attention weights: on CPU it costs more than the rest of the layer.
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
        return self.resid_drop(self.out(y.transpose(1, 2).reshape(batch, t, d)))

    def single(self, x: Tensor) -> Tensor:
        """Self-attention over a one-token list: softmax over one key is 1, so it is out(v(x))."""
        v = F.linear(x, self.kv.weight[x.size(-1) :], self.kv.bias[x.size(-1) :])
        return self.resid_drop(self.out(v))


class MLP(nn.Module):
    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.d_model, 4 * config.d_model)
        self.proj = nn.Linear(4 * config.d_model, config.d_model)
        self.drop = Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


class EncoderBlock(nn.Module):
    """Pre-norm causal self-attention + MLP over the history."""

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.d_model)
        self.attn = Attention(config)
        self.ln2 = nn.LayerNorm(config.d_model)
        self.mlp = MLP(config)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """mask None = no padding, plain causal attention (the faster kernel)."""
        h = self.ln1(x)
        x = x + self.attn(h, h, mask, causal=mask is None)
        return x + self.mlp(self.ln2(x))


class DecoderBlock(nn.Module):
    """Self-attention over the list so far, cross-attention to the encoder, MLP."""

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(config.d_model)
        self.self_attn = Attention(config)
        self.ln2 = nn.LayerNorm(config.d_model)
        self.cross_attn = Attention(config)
        self.ln3 = nn.LayerNorm(config.d_model)
        self.mlp = MLP(config)

    def forward(
        self, x: Tensor, memory: Tensor, cross_mask: Tensor | None, single: bool = False, causal: bool = False
    ) -> Tensor:
        """x (B, T, d) decoder tokens; single=True: every row of x is its own one-token list.

        causal=True: token t of x may see memory <= t (step 0 at every position, no padding).
        """
        h = self.ln1(x)
        x = x + (self.self_attn.single(h) if single else self.self_attn(h, h, causal=True))
        x = x + self.cross_attn(self.ln2(x), memory, cross_mask, causal=causal)
        return x + self.mlp(self.ln3(x))


class Seq2SeqRecommender(nn.Module):
    """Encoder-decoder next-items model; histories are left-padded with item index 0."""

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.items = ItemTable(config)
        self.event_type = nn.Embedding(config.n_event_types, d, padding_idx=0)
        self.position = nn.Embedding(config.max_len, d)
        self.gap = nn.Embedding(config.n_gap_buckets, d)
        self.step = nn.Embedding(config.list_len, d)
        self.drop = Dropout(config.dropout)
        self.encoder = nn.ModuleList(EncoderBlock(config) for _ in range(config.n_layers))
        self.ln_enc = nn.LayerNorm(d)
        self.decoder = nn.ModuleList(DecoderBlock(config) for _ in range(config.n_decoder_layers))
        self.ln_dec = nn.LayerNorm(d)
        self.apply(self._init_weights)
        if config.age_buckets:
            self.age_bias = nn.Embedding(config.age_buckets, 1)
            nn.init.zeros_(self.age_bias.weight)
            # publication time of every row (seconds, the events' clock); NaN = unknown
            self.register_buffer("born", torch.full((config.n_items,), math.nan, dtype=torch.float64))
        if config.typical_reader:
            self.register_buffer("typical", torch.zeros(d))

    def set_typical(self, state: Tensor) -> None:
        """Store the typical reader's state (the mean of trained readers' states), adding the buffer if new.

        An item such a reader would be listed as high is not there for anything personal;
        the explainer says so instead of citing a read (``Recommender`` explanations).
        """
        if not self.config.typical_reader:
            self.config.typical_reader = True
            self.register_buffer("typical", torch.zeros_like(state))
        self.typical.copy_(state)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
            if module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()

    def item_matrix(self) -> Tensor:
        """(n_items, d) vectors used both as inputs and as output weights."""
        return self.items()

    def age_logits(self, at: Tensor, born: Tensor) -> Tensor:
        """(N,) query times x (C,) or (N, C) publication times -> (N, C) logit learned for each item's age."""
        ages = at.double()[:, None] - born.double()
        return AGE_SCALE * self.age_bias.weight[age_buckets(ages, self.config.age_buckets), 0]

    def embed_items(self, items: Tensor, item_matrix: Tensor) -> Tensor:
        return F.embedding(items, item_matrix) * math.sqrt(self.config.d_model)

    def encoder_inputs(
        self, items: Tensor, table: Tensor, rows: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """(items, matrix) for encode(): the item table as it is, or (history_ids False) the
        history's distinct items by content and tags alone, `items` renumbered into that matrix.

        rows: the item row of each row of `table` when it holds a subset (the sampled loss).
        """
        if self.config.history_ids:
            return items, table
        every = items if rows is None else rows[items]
        # row 0 first, so padding stays 0 in the renumbered history
        distinct, local = torch.unique(torch.cat([every.new_zeros(1), every.flatten()]), return_inverse=True)
        return local[1:].view_as(items), self.items.side(distinct)

    def encode(self, items: Tensor, event_types: Tensor, gaps: Tensor, item_matrix: Tensor) -> Tensor:
        """(B, L) left-padded history -> (B, L) -> (B, L, d) memory; position t sees events <= t.

        item_matrix: what the encoder reads for each item (encoder_inputs()).
        """
        valid = items != 0
        length = items.size(1)
        # Positions are right-aligned: the latest event always has the last position, as at serving time.
        pos = torch.arange(self.config.max_len - length, self.config.max_len, device=items.device)
        x = self.embed_items(items, item_matrix) + self.event_type(event_types) + self.gap(gaps)
        x = self.drop(x + self.position(pos)) * valid[..., None]
        mask = None if bool(valid.all()) else causal_mask(valid)
        for block in self.encoder:
            x = block(x, mask)
        return self.ln_enc(x)

    def first_step(self, memory: Tensor, valid: Tensor) -> Tensor:
        """Decoder step 0 at every position: (B, L, d) states that score the item after each event."""
        x = memory + self.step.weight[0]
        mask = None if bool(valid.all()) else causal_mask(valid)
        for block in self.decoder:
            x = block(x, memory, mask, single=True, causal=mask is None)
        return self.ln_dec(x)

    def next_state(self, memory: Tensor, valid: Tensor) -> Tensor:
        """Decoder step 0 at the last position only: (B, d), the state that ranks the whole catalogue."""
        x = memory[:, -1:] + self.step.weight[0]
        mask = valid[:, None, None, :]
        for block in self.decoder:
            x = block(x, memory, mask, single=True)
        return self.ln_dec(x)[:, 0]

    def list_steps(
        self, memory: Tensor, key_mask: Tensor, query: Tensor, prefix: Tensor, item_matrix: Tensor
    ) -> Tensor:
        """States for writing a list: token 0 = encoder state `query`, tokens 1.. = items already listed.

        memory (M, L, d), key_mask (M, L) events the list may look at, query (M, d),
        prefix (M, T-1) item indices -> (M, T, d); state j scores the (j+1)-th list item.
        """
        x = torch.cat([query[:, None], self.embed_items(prefix, item_matrix)], dim=1)
        x = x + self.step.weight[: x.size(1)]
        mask = key_mask[:, None, None, :]
        for block in self.decoder:
            x = block(x, memory, mask)
        return self.ln_dec(x)

    def loss(
        self,
        items: Tensor,
        event_types: Tensor,
        gaps: Tensor,
        targets: Tensor,
        *,
        aux_positions: int = 0,
        negatives: Tensor | None = None,
        log_q: Tensor | None = None,
        later: Tensor | None = None,
        later_weight: float = 0.0,
        list_as_set: bool = False,
        times: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Next-item cross-entropy at every position (+ list-step loss at a few sampled positions).

        targets (B, L): the item after each input event, 0 where there is none. Logits
        are computed only at positions with a target. With `negatives` (shared sampled
        item indices) and `log_q` (log sampling probability per item) the softmax runs
        over target + negatives with log-Q correction instead of the full catalogue,
        and only the item rows the batch touches are built: a million-item table is
        never materialised. later (B, L, K): the K items after the next one (0 = none);
        each adds `later_weight` x its cross-entropy, so step 0 learns the near future,
        not one exact successor. Tracked histories miss events (another device, an
        untracked page), and a recommended list is read over several visits. times (B, L):
        when each target happened (seconds), the query time of the item-age logit.
        """
        untrained = self.items.untrained()
        born = self.born if self.config.age_buckets and times is not None else None
        rows = None  # the item row of each table row, when the table holds only the batch's
        if negatives is None:
            table = self.item_matrix()
        else:
            # Local row numbers for every item index the batch uses; padding stays row 0.
            parts = [items.new_zeros(1), items.flatten(), targets.flatten(), negatives]
            if later is not None:
                parts.append(later.flatten())
            rows, local = torch.unique(torch.cat(parts), return_inverse=True)
            sizes = [p.numel() for p in parts]
            local = list(local.split(sizes))
            items, targets, negatives = local[1].view_as(items), local[2].view_as(targets), local[3]
            if later is not None:
                later = local[4].view_as(later)
            table = self.items(rows)
            untrained = untrained[rows]
            born = born[rows] if born is not None else None
            log_q = log_q[rows] if log_q is not None else None
        read, inputs = self.encoder_inputs(items, table, rows)
        memory = self.encode(read, event_types, gaps, inputs)
        valid = items != 0
        states = self.first_step(memory, valid)
        has_target = targets != 0
        goals = targets[has_target][:, None]
        if later is not None and later_weight > 0:
            goals = torch.cat([goals, later[has_target]], dim=1)
        # CE(next item) + later_weight x CE(each later goal that exists), one softmax per row.
        age = (times[has_target], born) if born is not None else None
        nll = self._nll(states[has_target], goals, table, untrained, negatives, log_q, age=age)
        main = (nll[:, 0] + later_weight * nll[:, 1:].sum(1)).mean()
        if aux_positions <= 0 or self.config.list_len < 2:
            return main, None
        aux = self._list_loss(
            memory,
            valid,
            targets,
            table,
            untrained,
            aux_positions,
            negatives,
            log_q,
            list_as_set,
            (times, born) if born is not None else None,
        )
        return main, aux

    def _nll(
        self,
        states: Tensor,
        goals: Tensor,
        table: Tensor,
        untrained: Tensor,
        negatives: Tensor | None,
        log_q: Tensor | None,
        listed: Tensor | None = None,
        age: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """(N, G) -log p(goal) per row, 0 where the goal is 0 (none); one softmax per row serves every goal.

        listed (N, J): items a row may not score (already in the list being written), exact softmax only.
        age: (N,) query times and the publication time of every table row, for the item-age logit.
        """
        if negatives is None:
            ages = None if age is None else (lambda rows: self.age_logits(age[0][rows], age[1]))
            nll = _exact_nll(states, goals, table, untrained, listed, ages)
        else:
            pos = (states[:, None, :] * table[goals].to(states.dtype)).sum(-1)  # (N, G)
            neg = states @ table[negatives].to(states.dtype).T  # (N, S)
            if age is not None:
                at, born = age
                pos = pos + self.age_logits(at, born[goals]).to(pos.dtype)
                neg = neg + self.age_logits(at, born[negatives]).to(neg.dtype)
            if log_q is not None:
                pos = pos - log_q[goals]
                neg = neg - log_q[negatives][None, :]
            # A sampled negative that is one of the row's goals is no negative.
            neg = neg.masked_fill((negatives[None, :, None] == goals[:, None, :]).any(-1), float("-inf"))
            pos, rest = pos.float(), torch.logsumexp(neg.float(), dim=1, keepdim=True)
            nll = torch.logaddexp(pos, rest) - pos
        return nll.masked_fill(goals == 0, 0.0)

    def _list_loss(
        self,
        memory: Tensor,
        valid: Tensor,
        targets: Tensor,
        table: Tensor,
        untrained: Tensor,
        per_row: int,
        negatives: Tensor | None = None,
        log_q: Tensor | None = None,
        as_set: bool = False,
        age: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """Teacher-forced list steps 1.. at `per_row` random positions per sequence.

        as_set=False: step k learns the (k+1)-th true next item. as_set=True: it learns
        every true next item not yet in the list, equally, since a list is read as a set.
        """
        batch, length = targets.shape
        n = min(self.config.list_len, length)  # short batches train shorter lists
        if n < 2:
            return memory.sum() * 0.0
        # A position t qualifies when targets t .. t+n-1 all exist (the next n items are known).
        ok = (targets != 0).clone()
        ok[:, length - n + 1 :] = False
        ok[:, : length - n + 1] &= torch.stack(
            [targets[:, j : length - n + 1 + j] != 0 for j in range(n)]
        ).all(0)
        scores = torch.rand(batch, length, device=targets.device).masked_fill(~ok, -1.0)
        top = scores.topk(min(per_row, length), dim=1)
        rows = torch.arange(batch, device=targets.device)[:, None].expand_as(top.indices)
        keep = top.values >= 0
        rows, pos = rows[keep], top.indices[keep]
        if rows.numel() == 0:
            return memory.sum() * 0.0
        window = pos[:, None] + torch.arange(n, device=targets.device)
        listed = targets[rows[:, None], window]  # (M, n): the true next n items
        key_mask = valid[rows] & (torch.arange(length, device=targets.device)[None, :] <= pos[:, None])
        states = self.list_steps(memory[rows], key_mask, memory[rows, pos], listed[:, :-1], table)[:, 1:]
        # Items already in the list are masked, as at generation; a repeat target is not scored.
        steps = torch.arange(n - 1, device=targets.device)
        prefix = listed[:, :-1][:, None, :].expand(-1, n - 1, -1)  # step k may not score listed[:, :k+1]
        prefix = prefix.masked_fill(~(steps[:, None] >= steps)[None], 0)
        if as_set:
            # Step k's goal: any true next item not yet listed (listed[:, k+1:]), equally weighted.
            goal = listed[:, None, 1:].expand(-1, n - 1, -1).masked_fill(~(steps >= steps[:, None])[None], 0)
        else:
            goal = listed[:, 1:, None]  # step k's goal: exactly listed[:, k+1]
        goal = goal.masked_fill((prefix[..., None, :] == goal[..., None]).any(-1), 0)
        d = states.size(-1)
        nll = self._nll(
            states.reshape(-1, d),
            goal.reshape(-1, goal.size(-1)),
            table,
            untrained,
            negatives,
            log_q,
            listed=prefix.reshape(-1, n - 1) if negatives is None else None,
            # every step of a list is asked at the time of its first item
            age=None if age is None else (age[0][rows, pos].repeat_interleave(n - 1), age[1]),
        )
        counted = (goal.reshape(-1, goal.size(-1)) != 0).sum(1)
        return (nll.sum(1) / counted.clamp(min=1)).mean()

    @torch.no_grad()
    def generate(
        self,
        memory: Tensor,
        valid: Tensor,
        item_matrix: Tensor,
        n: int,
        banned: Tensor,
        candidates: Tensor,
        bias: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Write an n-item list per history, greedily, each step knowing the items already chosen.

        memory/valid from `encode` (the query is the last position), candidates (B, C)
        item indices to choose from, banned (B, C) True = never pick, bias (B, C) added
        to every step's logits (a serving boost). Returns the chosen candidate indices
        (B, n) and their step logits (B, n); a step with no allowed candidate left returns -inf.
        """
        n = min(n, self.config.list_len, candidates.size(1))
        vectors = F.embedding(candidates, item_matrix)  # (B, C, d)
        banned = banned.clone()
        picks: list[Tensor] = []
        logits: list[Tensor] = []
        rows = torch.arange(candidates.size(0), device=candidates.device)
        mask = valid
        for _ in range(n):
            prefix = candidates[rows[:, None], torch.stack(picks, 1)] if picks else candidates[:, :0]
            states = self.list_steps(memory, mask, memory[:, -1], prefix, item_matrix)[:, -1]
            scores = torch.einsum("bd,bcd->bc", states, vectors)
            if bias is not None:
                scores = scores + bias
            scores = scores.masked_fill(banned, float("-inf"))
            best = scores.max(dim=1)
            picks.append(best.indices)
            logits.append(best.values)
            banned[rows, best.indices] = True
        return torch.stack(picks, 1), torch.stack(logits, 1)


# The exact cross-entropy runs in one pass up to this many logits (ML-1M's 64 x 200 x 3.4k fits),
# above it in chunks of EXACT_CHUNK_ELEMENTS recomputed in the backward pass.
EXACT_ONE_PASS_ELEMENTS = 64 * 1024 * 1024
EXACT_CHUNK_ELEMENTS = 16 * 1024 * 1024


def _exact_nll(
    states: Tensor,
    goals: Tensor,
    table: Tensor,
    untrained: Tensor,
    listed: Tensor | None,
    ages: Callable[[slice], Tensor] | None = None,
) -> Tensor:
    """(N, G) -log softmax(states @ table.T)[goals], over the whole catalogue, in bounded memory.

    Above EXACT_ONE_PASS_ELEMENTS logits, rows go in chunks of at most
    EXACT_CHUNK_ELEMENTS, each recomputed in the backward pass instead of kept
    (activation checkpointing): at 100k items a batch's logits and their softmax
    would otherwise take several GB. Below it, the usual case, one plain pass. ages(rows):
    the item-age logits of those rows (the model's age_logits), added to theirs.
    """

    def chunk_nll(part: Tensor, goal: Tensor, banned: Tensor | None, at: slice | None = None) -> Tensor:
        logits = (part @ table.to(part.dtype).T).float()
        if ages is not None:
            logits = logits + ages(slice(None) if at is None else at)
        logits = logits.masked_fill(untrained, float("-inf"))
        if banned is not None:
            logits = logits.scatter(1, banned, float("-inf"))  # 0 (padding) is -inf already
        return -torch.log_softmax(logits, dim=1).gather(1, goal)

    if states.size(0) * table.size(0) <= EXACT_ONE_PASS_ELEMENTS:
        return chunk_nll(states, goals, listed)
    per_chunk = max(1, EXACT_CHUNK_ELEMENTS // table.size(0))
    parts = []
    for start in range(0, states.size(0), per_chunk):
        stop = start + per_chunk
        banned = listed[start:stop] if listed is not None else None
        parts.append(
            torch.utils.checkpoint.checkpoint(
                chunk_nll,
                states[start:stop],
                goals[start:stop],
                banned,
                slice(start, stop),
                use_reentrant=False,
            )
        )
    return torch.cat(parts)


def grow_model(
    model: Seq2SeqRecommender,
    n_items: int,
    n_event_types: int,
    n_tags: int | None = None,
    n_id_rows: int | None = None,
) -> Seq2SeqRecommender:
    """A copy of `model` with larger item / event-type / tag / ID tables; new rows start empty.

    Used to refresh a trained model on new data and to add cold items at serving
    time without retraining: every learned weight is kept.
    """
    old = model.config
    config = Seq2SeqConfig(**{**old.__dict__, "n_items": n_items, "n_event_types": n_event_types})
    if n_tags is not None and n_tags > old.n_tags:
        config.n_tags = n_tags
        config.max_tags = max(old.max_tags, 1)
    if n_id_rows is not None and old.n_id_rows:
        config.n_id_rows = max(n_id_rows, old.n_id_rows)
    grown = Seq2SeqRecommender(config).to(next(model.parameters()).device)
    state = grown.state_dict()
    for name, value in model.state_dict().items():
        target = state[name]
        if target.shape == value.shape:
            target.copy_(value)
        else:
            target.fill_(math.nan if name == "born" else 0)  # a new row's publication time is unknown
            target[tuple(slice(0, s) for s in value.shape)] = value
    grown.load_state_dict(state)
    return grown


def give_id_rows(model: Seq2SeqRecommender, rows: Tensor) -> Seq2SeqRecommender:
    """`model`, its ID table grown if need be, where every item row in `rows` has an ID row.

    Rows added to a fresh model's table keep their initialisation; rows grown onto a
    trained one start at zero, as grow_model's do. A model with one ID row per item
    (n_id_rows 0) is returned as it is.
    """
    table = model.items
    if table.id_row is None:
        return model
    rows = rows.unique()
    missing = rows[(rows > 0) & (table.id_row[rows] == 0)]
    first = int(table.id_row.max()) + 1 if len(table.id_row) else 1
    needed = first + len(missing)
    if needed > model.config.n_id_rows:
        model = grow_model(model, model.config.n_items, model.config.n_event_types, n_id_rows=needed)
        table = model.items
    with torch.no_grad():
        table.id_row[missing] = torch.arange(first, needed, dtype=table.id_row.dtype, device=missing.device)
    return model
