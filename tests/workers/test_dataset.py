"""The streamed training data: the same sequences as collapsing every event in memory, in bounded memory."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from recommender.ml.data import build_sequences
from recommender.models import Interaction, Item
from recommender.training import dataset, runs
from recommender.tuning import get_tuning
from tests.workers.factories import make_items

pytestmark = pytest.mark.django_db

HISTORY = 5


@pytest.fixture
def history_length(settings):
    settings.RECOMMENDER = {**settings.RECOMMENDER, "HISTORY_LENGTH": HISTORY}
    assert get_tuning().history_length == HISTORY


def _random_events(items: list[Item], n: int = 600, seed: int = 0) -> None:
    """Events of 8 readers, with runs of one item repeated (to collapse) and equal timestamps (ties)."""
    rng = random.Random(seed)
    start = timezone.now() - timedelta(days=2)
    rows = []
    for k in range(n):
        reader = rng.randrange(8)
        item = items[rng.randrange(3)] if rng.random() < 0.4 else rng.choice(items)
        rows.append(
            Interaction(
                event_id=f"ds-{k}",
                visitor_id=f"r{reader}",
                item=item,
                event_type=rng.choice(["view", "click", "like", "read"]),
                value=0.5,
                timestamp=start + timedelta(seconds=rng.randrange(n // 3)),
            )
        )
    Interaction.objects.bulk_create(rows)


def test_streamed_sequences_equal_collapsing_every_event_in_memory(history_length):
    _random_events(make_items(10))
    events = runs.build_training_events()
    expected = build_sequences(events, max_len=HISTORY, event_weights=get_tuning().event_types)

    data = dataset.load_training_data()

    assert data.rows == len(events) == 600
    assert data.sequences.keys() == expected.keys()
    for user, seq in expected.items():
        got = data.sequences[user]
        assert (got.items, got.event_types, got.timestamps) == (seq.items, seq.event_types, seq.timestamps)
        assert len(got) == HISTORY


def test_a_reader_with_many_events_keeps_only_the_last_history_length_steps(history_length):
    items = make_items(4)
    start = timezone.now() - timedelta(hours=1)
    Interaction.objects.bulk_create(
        Interaction(event_id=f"long-{k}", visitor_id="heavy", item=items[k % 4], event_type="view",
                    timestamp=start + timedelta(seconds=k))
        for k in range(1000)
    )  # fmt: skip
    seq = dataset.load_training_data().sequences["vheavy"]
    assert seq.items == [str(items[k % 4].pk) for k in range(995, 1000)]


def test_the_gate_learns_each_readers_last_event_up_to_the_cursor(history_length):
    _random_events(make_items(10))
    cursor = Interaction.objects.order_by("pk")[299].pk
    data = dataset.load_training_data(known_until=cursor)
    old = Interaction.objects.filter(pk__lte=cursor).order_by("timestamp", "pk")
    expected = {}
    for row in old:
        expected[f"v{row.visitor_id}"] = (row.timestamp.timestamp(), str(row.item_id))
    assert data.known == expected
