"""The events table partitioned by month on real PostgreSQL: routing, idempotent ingestion, retention, plans.

Each test converts the table and the ``plain_table_afterwards`` fixture reverts it (and
checks the rebuilt table has the constraints and indexes migrations made), so the tests
that follow see the table they expect.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from recommender.identity import Identity
from recommender.models import Interaction, Item
from recommender.signals import item_content_changed
from recommender.tracking import partitions
from recommender.tracking.events import EventInput, ingest
from recommender.training import maintenance
from tests import factories
from tests.integration.test_ingestion_postgres import THREADS, post_concurrently

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="declarative partitioning is PostgreSQL's"),
]
TABLE = partitions.TABLE


@pytest.fixture(autouse=True)
def _no_embedding(monkeypatch):
    """Items made here commit at once; keep their content-changed signal from loading the embedder."""
    monkeypatch.setattr(item_content_changed, "send", lambda sender, **kwargs: [])


def _constraints() -> dict[str, tuple]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, TABLE)
    return {
        name: (
            tuple(c["columns"]),
            c["unique"],
            c["primary_key"],
            c["index"],
            c["foreign_key"],
            c.get("orders"),
            c["check"],
        )
        for name, c in found.items()
    }


@pytest.fixture
def plain_table_afterwards(transactional_db):
    """Revert the conversion before the flush, and check the table is as migrations made it."""
    before = _constraints()
    yield
    if partitions.is_partitioned():
        call_command("recommender_partitions", "--revert")
    assert not partitions.is_partitioned()
    assert _constraints() == before
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [partitions.SEEN_TABLE])
        assert cursor.fetchone()[0] is None


def _month(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{TABLE}_y{moment.year:04d}m{moment.month:02d}"


def _placement() -> dict[str, str]:
    """event_id -> the partition holding its row."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT event_id, tableoid::regclass::text FROM {TABLE}")
        return dict(cursor.fetchall())


def _event(item: Item, event_id: str, when: datetime | None, **fields) -> EventInput:
    return EventInput(
        item_id=item.pk, event_type="view", visitor_id="v1", event_id=event_id, timestamp=when, **fields
    )


def test_convert_keeps_every_row_and_events_land_in_their_month(plain_table_afterwards, capsys):
    item = factories.make_item("Story")
    now = timezone.now()
    old = {"e-now": now, "e-40d": now - timedelta(days=40), "e-100d": now - timedelta(days=100)}
    assert ingest([_event(item, key, when) for key, when in old.items()]).created == 3
    ids_before = dict(Interaction.objects.values_list("event_id", "pk"))

    call_command("recommender_partitions", "--convert")

    out = capsys.readouterr().out
    assert partitions.is_partitioned() and f"{TABLE}_default" in out and _month(now) in out
    assert dict(Interaction.objects.values_list("event_id", "pk")) == ids_before
    placed = _placement()
    assert {key: placed[key] for key in old} == {key: _month(when) for key, when in old.items()}

    far = now + timedelta(days=800)  # beyond every monthly partition: the default one
    assert (
        ingest([_event(item, "e-new-40d", now - timedelta(days=40)), _event(item, "e-far", far)]).created == 2
    )
    placed = _placement()
    assert placed["e-new-40d"] == _month(now - timedelta(days=40)) and placed["e-far"] == f"{TABLE}_default"
    newest = Interaction.objects.get(event_id="e-new-40d")
    assert newest.pk > max(ids_before.values())  # the id sequence carried over

    # The ORM paths the app uses on the table: create, bulk_create, update, queryset delete.
    row = Interaction.objects.create(event_id="orm", visitor_id="v2", item=item, event_type="click")
    Interaction.objects.bulk_create(
        [Interaction(event_id=f"bulk-{n}", visitor_id="v2", item=item, event_type="view") for n in range(3)]
    )
    assert Interaction.objects.filter(pk=row.pk).update(value=1.0) == 1
    assert Interaction.objects.for_identity(Identity(user_id=None, visitor_id="v2")).delete()[0] == 4
    assert Item.objects.get(pk=item.pk).view_count == 5


def test_ingest_stays_idempotent_when_a_retry_has_another_timestamp(plain_table_afterwards):
    item = factories.make_item("Story")
    now = timezone.now()
    assert ingest([_event(item, "before", now)]).created == 1
    call_command("recommender_partitions", "--convert")

    first = ingest([_event(item, "same", now - timedelta(days=60)), _event(item, "stamped", None)])
    assert (first.created, first.duplicates) == (2, 0)
    again = ingest(
        [
            _event(item, "same", now),  # another month, so another partition
            _event(item, "stamped", None),  # the server stamps it again: another timestamp
            _event(item, "before", now - timedelta(days=90)),  # stored before the conversion
        ]
    )
    assert (again.created, again.duplicates) == (0, 3)
    assert sorted(Interaction.objects.values_list("event_id", flat=True)) == ["before", "same", "stamped"]
    assert Interaction.objects.get(event_id="same").timestamp == now - timedelta(days=60)
    assert Item.objects.get(pk=item.pk).view_count == 3


def test_the_same_batch_posted_concurrently_is_stored_and_counted_once(plain_table_afterwards):
    """Concurrent posts wait on the seen-ids table's key, in id order whatever the batch's order."""
    item = factories.make_item("Hot story")
    call_command("recommender_partitions", "--convert")
    batch = [{"event_id": f"same-{n}", "item": item.pk, "event_type": "view"} for n in range(40)]

    results = post_concurrently([batch, batch[::-1]] * (THREADS // 2), factories.new_visitor_id())

    assert all(r["status"] in (200, 201) for r in results), results
    assert sum(r["created"] for r in results) == 40
    assert Interaction.objects.count() == 40
    assert Item.objects.get(pk=item.pk).view_count == 40


def test_create_next_adds_next_month_and_moves_its_events_out_of_the_default(plain_table_afterwards, capsys):
    item = factories.make_item("Story")
    call_command("recommender_partitions", "--convert")
    this_month = partitions._month_start(timezone.now())
    next_month = partitions._add_months(this_month, 1)
    with connection.cursor() as cursor:  # as if converted last month: next month has no partition yet
        cursor.execute(f"DROP TABLE {_month(next_month)}")
    assert ingest([_event(item, "early", next_month + timedelta(days=2))]).created == 1
    assert _placement()["early"] == f"{TABLE}_default"
    capsys.readouterr()

    call_command("recommender_partitions", "--create-next")
    assert f"Created {_month(next_month)}." in capsys.readouterr().out
    assert _placement()["early"] == _month(next_month)
    call_command("recommender_partitions", "--create-next")
    assert "Next month's partition exists." in capsys.readouterr().out
    assert ingest([_event(item, "early", timezone.now())]).duplicates == 1


def test_cleanup_drops_whole_expired_months_then_the_boundary_rows(plain_table_afterwards, settings):
    item = factories.make_item("Story")
    now = timezone.now()
    ages = {"e400": 400, "e200": 200, "e33": 33, "e31": 31, "e29": 29, "e0": 0}
    assert ingest([_event(item, key, now - timedelta(days=days)) for key, days in ages.items()]).created == 6
    call_command("recommender_partitions", "--convert")
    cutoff = now - timedelta(days=30)
    expired = [p.name for p in partitions.partitions() if p.end is not None and p.end <= cutoff]
    assert _month(now - timedelta(days=400)) in expired and _month(now - timedelta(days=200)) in expired
    placed = _placement()  # e33 and e31 sit in a dropped month or in the one astride the cutoff
    astride = [key for key, days in ages.items() if days > 30 and placed[key] not in expired]

    settings.RECOMMENDER = {**settings.RECOMMENDER, "INTERACTION_RETENTION_DAYS": 30}
    summary = maintenance.cleanup()

    left = {p.name for p in partitions.partitions()}
    assert summary["event_partitions"] == len(expired) and not left & set(expired)
    assert summary["events"] == len(astride)  # deleted one by one; the dropped months' rows are not counted
    assert _month(now) in left and f"{TABLE}_default" in left
    assert sorted(Interaction.objects.values_list("event_id", flat=True)) == ["e0", "e29"]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT event_id FROM {partitions.SEEN_TABLE} ORDER BY event_id")
        assert [row[0] for row in cursor.fetchall()] == ["e0", "e29"]  # forgotten with their events
    assert maintenance.cleanup()["event_partitions"] == 0


def test_one_identitys_history_is_read_through_the_partitions_indexes(plain_table_afterwards):
    """EXPLAIN of the history queries: index scans on every monthly partition, no sequential scan.

    60,000 events of 2,000 visitors over three months, analysed, make a real plan: on a few
    rows PostgreSQL rightly prefers reading the whole (tiny) table, which says nothing.
    """
    items = [factories.make_item(f"Story {n}") for n in range(5)]
    user = factories.make_user()
    now = timezone.now()
    ingest([_event(items[0], "oldest", now - timedelta(days=85))])  # so the months go back that far
    call_command("recommender_partitions", "--convert")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (event_id, user_id, visitor_id, item_id, event_type, timestamp, "
            "session_id, placement, recomm_id, created_at) "
            "SELECT 'bulk-' || n, CASE WHEN mod(n, 100) = 0 THEN %s END, "
            "CASE WHEN mod(n, 100) = 0 THEN '' ELSE 'visitor-' || mod(n, 2000) END, "
            "(ARRAY[%s, %s, %s, %s, %s])[1 + mod(n, 5)], 'view', %s - mod(n, 80) * interval '1 day', "
            "'', '', '', %s FROM generate_series(1, 60000) AS n",
            [user.pk, *(i.pk for i in items), now, now],
        )
        cursor.execute(f"ANALYZE {TABLE}")
    monthly = {p.name for p in partitions.partitions() if p.end is not None and p.rows > 0}
    assert len(monthly) >= 3

    for identity in (Identity(user_id=None, visitor_id="visitor-7"), Identity.for_user(user)):
        plans = [
            Interaction.objects.for_identity(identity).order_by("-timestamp")[:200].explain(),
            Interaction.objects.last_events_for(identity).explain(),
        ]
        for plan in plans:
            assert "Index" in plan, plan
            scanned = {
                line.split("Seq Scan on ")[1].split()[0] for line in plan.splitlines() if "Seq Scan" in line
            }
            assert not scanned & monthly, plan  # only empty partitions (cost 0) may be read whole
        expected = 200 if identity.user_id else 30  # the user's 600 events, cut at 200; visitor-7's 30
        assert len(Interaction.objects.last_events_for(identity)) == expected


def test_cleanup_leaves_old_months_a_long_reader_holds_for_its_next_run(
    plain_table_afterwards, settings, monkeypatch
):
    """A DROP waiting for a long read (a training run streaming events) would queue every query behind it."""
    item = factories.make_item("Story")
    now = timezone.now()
    assert ingest([_event(item, "e400", now - timedelta(days=400)), _event(item, "e0", now)]).created == 2
    call_command("recommender_partitions", "--convert")
    settings.RECOMMENDER = {**settings.RECOMMENDER, "INTERACTION_RETENTION_DAYS": 30}
    monkeypatch.setattr(maintenance, "PARTITION_LOCK_TIMEOUT", "200ms")
    reader = connection.get_new_connection(connection.get_connection_params())
    try:
        reader.execute(f"SELECT count(*) FROM {TABLE}")  # its transaction stays open, holding the table
        summary = maintenance.cleanup()
        assert (summary["event_partitions"], summary["events"]) == (0, 0)
        assert Interaction.objects.count() == 2
    finally:
        reader.close()
    summary = maintenance.cleanup()
    assert summary["event_partitions"] >= 1
    assert list(Interaction.objects.values_list("event_id", flat=True)) == ["e0"]
