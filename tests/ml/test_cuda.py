"""CUDA paths: bf16 training, serving on the GPU, a GPU-trained artifact on the CPU, the embedder.

Skipped where no GPU is visible (CI and the development machines have none). On a GPU
machine, bench/gpu_check.sh runs them together with the ML-1M epoch timing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from recommender.ml.artifact import artifact_files, load_artifact_files
from recommender.ml.data import UserSequence
from recommender.ml.embedder import Embedder
from recommender.ml.trainer import TrainResult, train
from tests.ml.factories import content_vectors, planted_sequences, successor_map, tiny_config

DEVICE = "cuda"

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def gpu_result() -> TrainResult:
    config = tiny_config(device=DEVICE, bf16=True)
    return train(planted_sequences(), config, content=content_vectors(), embedder_name="test")


def test_bf16_training_on_cuda_learns_the_planted_pattern(gpu_result):
    rec = gpu_result.recommender
    assert gpu_result.device.startswith(DEVICE)
    assert all(p.device.type == DEVICE for p in rec.model.parameters())
    nxt = successor_map()
    hits = [rec.recommend([prev, item], k=1)[0].item_id == nxt[item] for prev, item in nxt.items()]
    assert np.mean(hits) >= 0.8, np.mean(hits)  # chance is 1 / 40


def test_gpu_trained_artifact_scores_the_same_on_the_cpu(gpu_result):
    gpu = gpu_result.recommender
    cpu = load_artifact_files(artifact_files(gpu), device="cpu")
    histories = [[prev, item] for prev, item in successor_map().items()]
    on_gpu, on_cpu = gpu.scores(histories).cpu(), cpu.scores(histories)
    assert torch.equal(torch.isinf(on_gpu), torch.isinf(on_cpu))
    finite = torch.isfinite(on_cpu)
    gap = (on_gpu[finite] - on_cpu[finite]).abs().max().item()
    assert gap < 1e-3, gap
    assert [r.item_id for r in gpu.recommend(["i1", "i2"], k=5)] == [
        r.item_id for r in cpu.recommend(["i1", "i2"], k=5)
    ]


def test_serving_on_cuda_excludes_generates_batches_and_adds_items(gpu_result):
    rec = load_artifact_files(artifact_files(gpu_result.recommender), device=DEVICE)
    history = ["i1", "i2", "i3"]
    listed = [r.item_id for r in rec.recommend(history, k=10, exclude=["i4"])]
    assert len(listed) == 10 and not set(listed) & {*history, "i4"}
    generated = [r.item_id for r in rec.recommend(history, k=4, generate=True)]
    assert len(set(generated)) == 4 and not set(generated) & set(history)
    assert [len(found) for found in rec.recommend_batch([history, ["i5"], ["unknown"]], k=3)] == [3, 3, 0]
    rec.add_items({"copy_of_i5": content_vectors()["i5"]})  # same text: it takes i5's ID (a twin)
    assert rec.similar("i5", k=1)[0].item_id == "copy_of_i5"
    column = rec.row("copy_of_i5")
    plain = rec.scores([history])[0, column].item()
    rec.new_item_boost = 1.0
    assert rec.scores([history])[0, column].item() == pytest.approx(plain + 1.0, abs=1e-4)


def test_refresh_on_cuda_keeps_the_model_on_the_gpu_and_adds_new_items(gpu_result):
    """Resuming grows the item table on the GPU: new content rows must be written there too."""
    sequences = planted_sequences() | {"reader": UserSequence(["i1", "fresh", "i2"])}
    content = content_vectors() | {"fresh": content_vectors()["i7"]}
    config = tiny_config(device=DEVICE, bf16=True, epochs=2)
    refreshed = train(sequences, config, content=content, resume_from=gpu_result.recommender).recommender
    table = refreshed.model.items
    assert table.content.device.type == DEVICE
    stored = torch.from_numpy(content["fresh"]).to(table.content.dtype)  # kept in half precision
    assert torch.equal(table.content[refreshed.row("fresh")].cpu(), stored)
    assert refreshed.recommend(["i1"], k=3)  # serves after the refresh


def _tiny_sentence_transformer(directory: Path) -> Path:
    """A small random BERT saved as a sentence-transformer: the bundled weights are too large to carry.

    Only a config, weights and vocab.txt are written: AutoTokenizer builds the tokenizer
    from them in transformers 4 and 5 alike.
    """
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel

    words = ["the", "a", "city", "council", "votes", "football", "club", "signs", "striker", "storm", "coast"]
    bert = directory / "bert"
    config = BertConfig(
        vocab_size=5 + len(words),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(bert)
    (bert / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    encoder = models.Transformer(str(bert))
    assert encoder.tokenizer.convert_tokens_to_ids("city") != encoder.tokenizer.unk_token_id
    out = directory / "tiny-st"
    SentenceTransformer(modules=[encoder, models.Pooling(32)], device="cpu").save(str(out))
    return out


def test_embedder_on_cuda_gives_the_cpu_vectors(tmp_path):
    path = _tiny_sentence_transformer(tmp_path)
    texts = ["the city council votes", "football club signs striker", "storm coast"] * 30
    on_gpu = Embedder(str(path), device=DEVICE, batch_size=16).encode(texts)
    on_cpu = Embedder(str(path), device="cpu", batch_size=16).encode(texts)
    assert on_gpu.dtype == np.float32 and on_gpu.shape == (90, 32)
    assert np.allclose(np.linalg.norm(on_gpu, axis=1), 1.0, atol=1e-4)
    assert not np.allclose(on_gpu[0], on_gpu[1], atol=1e-2)  # the words reach the model
    gap = float(np.abs(on_gpu - on_cpu).max())
    assert gap < 1e-3, gap
