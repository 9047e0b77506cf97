"""history_ids=False: the encoder reads each event's item by its content and tags, never its ID."""

from functools import lru_cache

import numpy as np
import pytest
import torch

from recommender.ml.artifact import artifact_files, load_artifact_files
from recommender.ml.inference import Recommender
from recommender.ml.model import Seq2SeqConfig, Seq2SeqRecommender
from recommender.ml.trainer import train
from tests.ml.factories import content_vectors, planted_sequences, successor_map, tiny_config


def _memory(model: Seq2SeqRecommender, items: torch.Tensor) -> torch.Tensor:
    read, inputs = model.encoder_inputs(items, model.item_matrix())
    return model.encode(read, (items != 0).long(), torch.zeros_like(items), inputs)


@pytest.mark.parametrize("history_ids", [True, False])
def test_the_encoder_reads_item_ids_only_when_history_ids_is_set(history_ids):
    torch.manual_seed(0)
    config = Seq2SeqConfig(
        n_items=30, content_dim=8, max_len=12, d_model=16, list_len=4, history_ids=history_ids
    )
    model = Seq2SeqRecommender(config).eval()
    model.items.trained[1:] = True
    model.items.content.normal_()
    items = torch.tensor([[0, 0, 3, 4, 5], [1, 2, 3, 4, 5]])
    with torch.no_grad():
        before = _memory(model, items)
        model.items.id.weight.normal_()
        after = _memory(model, items)
    assert torch.allclose(before, after) is not history_ids


@lru_cache(maxsize=2)
def _trained(negatives: int | None) -> Recommender:
    config = tiny_config(history_ids=False, sampled_softmax_negatives=negatives)
    return train(planted_sequences(), config, content=content_vectors(), embedder_name="test").recommender


@pytest.mark.parametrize("negatives", [None, 12])  # the exact softmax, and the sampled one (a subset table)
def test_a_history_read_by_content_still_learns_which_item_comes_next(negatives):
    rec = _trained(negatives)
    nxt = successor_map()
    firsts = [rec.recommend([prev, item], k=1)[0].item_id for prev, item in nxt.items()]
    hit_rate = np.mean([first == nxt[item] for first, (_, item) in zip(firsts, nxt.items(), strict=True)])
    assert hit_rate >= 0.8, hit_rate  # chance is 1 / 40; the content vectors tell the items apart


def test_a_trained_model_ignores_its_id_table_when_reading_a_history_and_keeps_that_when_saved():
    rec = load_artifact_files(artifact_files(_trained(None)))
    assert rec.model.config.history_ids is False
    histories = [["i1", "i2", "i3"], ["i7"]]
    before = rec.user_vectors(histories)
    with torch.no_grad():
        rec.model.items.id.weight.zero_()
    assert torch.allclose(rec.user_vectors(histories), before, atol=1e-6)


def test_an_item_added_at_serving_time_is_read_as_a_trained_item_with_its_content():
    rec = load_artifact_files(artifact_files(_trained(None)))
    vectors = content_vectors()
    rec.add_items({"added": vectors["i3"], "other": vectors["i9"]})
    same = rec.user_vectors([["i1", "i3"], ["i1", "added"]])
    assert torch.allclose(same[0], same[1], atol=1e-5)
    differ = rec.user_vectors([["i1", "other"]])
    assert not torch.allclose(same[1], differ[0], atol=1e-3)


def test_reading_the_history_by_content_needs_content_or_tags():
    with pytest.raises(ValueError, match="history_ids=False"):
        train(planted_sequences(40), tiny_config(history_ids=False, epochs=1))
