"""ANN_MIN_ITEMS: the loaded model indexes its catalogue past the setting, and serves the same lists."""

from __future__ import annotations

import pytest

from recommender.ml import ann
from recommender.serving import model_store
from tests.serving.conftest import TEST_SETTINGS

pytestmark = pytest.mark.usefixtures("serving_settings")
pytest.importorskip("faiss")


def test_a_small_catalogue_is_scored_exactly_by_default(session):
    model_store.invalidate()
    loaded = model_store.get_active()
    assert loaded.recommender.ann_min_items == 200_000
    assert loaded.recommender._state.item_index is None


def test_past_the_setting_the_loaded_model_is_indexed_and_serves_the_same_lists(
    session, settings, monkeypatch
):
    monkeypatch.setattr(ann, "EXACT_GROUP", 1)  # index even this small catalogue's groups
    settings.RECOMMENDER = {**TEST_SETTINGS, "ANN_MIN_ITEMS": 0}
    model_store.invalidate()
    rec = model_store.get_active().recommender
    assert rec.ann_min_items == 0 and rec._state.item_index.parts
    history = rec.item_ids[:3]
    indexed = rec.recommend(history, k=5, exclude={rec.item_ids[5]}, explain=False)
    rec.ann_min_items = None
    exact = rec.recommend(history, k=5, exclude={rec.item_ids[5]}, explain=False)
    assert [r.item_id for r in indexed] == [r.item_id for r in exact]
