"""Concurrent, repeated event batches on real PostgreSQL: every event stored and counted exactly once."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from recommender.models import Interaction, Item
from recommender.signals import item_content_changed
from tests import factories

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL's row locks and concurrency"
    ),
]
URL = "/api/recommender/events/"
THREADS = 6


@pytest.fixture(autouse=True)
def _no_embedding(monkeypatch):
    """Items made here commit at once; keep their content-changed signal from loading the embedder."""
    monkeypatch.setattr(item_content_changed, "send", lambda sender, **kwargs: [])


def post_concurrently(batches: list[list[dict]], visitor_id: str) -> list[dict]:
    """POST each batch from its own thread (own DB connection), all released at the same moment."""
    barrier = threading.Barrier(len(batches))
    results: list[dict] = [{} for _ in batches]

    def worker(index: int, events: list[dict]) -> None:
        client = factories.visitor_client(visitor_id)
        try:
            barrier.wait(timeout=10)
            response = client.post(URL, {"events": events}, format="json")
            results[index] = {"status": response.status_code, **response.json()}
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i, batch)) for i, batch in enumerate(batches)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_the_same_batch_posted_concurrently_is_stored_and_counted_once():
    item = factories.make_item("Hot story")
    visitor_id = factories.new_visitor_id()
    batch = [{"event_id": f"same-{n}", "item": item.pk, "event_type": "view"} for n in range(40)]

    results = post_concurrently([batch] * THREADS, visitor_id)

    assert all(r["status"] in (200, 201) for r in results), results
    assert sum(r["created"] for r in results) == 40
    assert sum(r["duplicates"] for r in results) == 40 * (THREADS - 1)
    assert Interaction.objects.count() == 40
    assert Item.objects.get(pk=item.pk).view_count == 40


def test_overlapping_batches_in_opposite_item_order_neither_deadlock_nor_double_count():
    a, b = factories.make_item("A"), factories.make_item("B")
    visitor_id = factories.new_visitor_id()
    shared = [
        {"event_id": f"shared-{n}", "item": (a if n % 2 else b).pk, "event_type": "click"} for n in range(20)
    ]
    forward = shared + [{"event_id": f"own-f-{n}", "item": a.pk, "event_type": "click"} for n in range(5)]
    backward = list(reversed(shared)) + [
        {"event_id": f"own-b-{n}", "item": b.pk, "event_type": "click"} for n in range(5)
    ]

    results = post_concurrently([forward, backward, forward, backward], visitor_id)

    assert all(r["status"] in (200, 201) for r in results), results
    assert sum(r["created"] for r in results) == 30
    assert Interaction.objects.count() == 30
    assert Item.objects.get(pk=a.pk).click_count + Item.objects.get(pk=b.pk).click_count == 30
    assert Item.objects.get(pk=a.pk).click_count == 10 + 5


def test_a_batch_never_locks_the_hot_item_row_and_its_insert_says_which_ids_are_new():
    """Batches about one hot item with different events must not queue behind each other's row locks."""
    from django.test.utils import CaptureQueriesContext

    from recommender.tracking.events import EventInput, ingest

    item = factories.make_item("Hot story")
    events = [
        EventInput(item_id=item.pk, event_type="view", visitor_id="v1", event_id=f"hot-{n}") for n in range(3)
    ]
    with CaptureQueriesContext(connection) as queries:
        assert ingest(events).created == 3
    sql = [q["sql"].upper() for q in queries]
    assert not [q for q in sql if "FOR UPDATE" in q or "FOR NO KEY UPDATE" in q]
    assert not [q for q in sql if "ADVISORY" in q]
    inserts = [q for q in sql if q.startswith('INSERT INTO "RECOMMENDER_INTERACTION"')]
    assert len(inserts) == 1 and "ON CONFLICT" in inserts[0] and "RETURNING" in inserts[0]
    item.refresh_from_db()
    assert item.view_count == 3  # the counter still moves, by one UPDATE ... SET count = count + n


def test_batches_over_the_same_items_in_opposite_orders_never_deadlock():
    """Counter rows are locked in item id order, whatever the order of a batch's events."""
    items = [factories.make_item(f"Story {n}") for n in range(6)]
    visitor_id = factories.new_visitor_id()
    forward = [{"item": i.pk, "event_type": "view"} for i in items] * 5
    batches = [forward if n % 2 else forward[::-1] for n in range(THREADS)]
    results = post_concurrently(batches, visitor_id)
    assert [r["status"] for r in results] == [201] * THREADS, results
    for item in items:
        item.refresh_from_db()
        assert item.view_count == 5 * THREADS
