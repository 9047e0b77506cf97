"""Monthly partitions of the events table on PostgreSQL (opt-in: ``manage.py recommender_partitions``).

Why: at billions of events, retention by ``DELETE`` writes and vacuums every expired row,
while dropping a month's partition is one catalogue change; an identity's history reads
small per-month indexes instead of one huge one.

PostgreSQL requires every unique index of a partitioned table to include the partition
key (``timestamp``), so ``event_id`` cannot stay unique in the events table itself, and a
retried event may carry another timestamp (the server stamps events sent without one).
Idempotency therefore moves to a companion table, ``SEEN_TABLE`` (``event_id`` primary
key, the stored event's ``timestamp``): ingestion inserts a batch's ids there with
``ON CONFLICT DO NOTHING RETURNING`` and inserts into the events table only the rows
whose id came back, in one statement (:func:`insert_new_sql`). A concurrent transaction
inserting the same id waits on that primary key for the first one's outcome, as it did on
the unique index before. Seen ids expire with the events they stand for (``cleanup``).

The table is detected once per process (``pg_partitioned_table``); :func:`convert` and
:func:`revert` need the web and worker processes stopped (downtime proportional to the
table), and a process that outlived one fails loudly rather than storing duplicates: the
plain ``ON CONFLICT (event_id)`` has no unique index to use on a partitioned table, and
the partitioned statement's seen-ids table is gone after a revert.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import DEFAULT_DB_ALIAS, OperationalError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from recommender.models import Interaction

logger = logging.getLogger(__name__)

TABLE = Interaction._meta.db_table
SEEN_TABLE = f"{TABLE}_seen"
DEFAULT_PARTITION = f"{TABLE}_default"
PARTITION_KEY = Interaction._meta.get_field("timestamp").column
EVENT_ID = Interaction._meta.get_field("event_id").column
PK = Interaction._meta.pk.column

_layout: dict[tuple[str, str], bool] = {}  # (alias, database name) -> partitioned?


class PartitioningError(RuntimeError):
    """The table is not in the state an operation needs (or the database is not PostgreSQL)."""


@dataclass(frozen=True)
class Partition:
    """One partition; ``start``/``end`` None: the default one. ``rows``: PostgreSQL's estimate, -1 unknown."""

    name: str
    start: datetime | None
    end: datetime | None
    rows: int
    size_bytes: int


def is_partitioned(connection: BaseDatabaseWrapper | None = None) -> bool:
    """Whether the events table is partitioned; asked once per process and database."""
    connection = connection or connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        return False
    key = (connection.alias, str(connection.settings_dict["NAME"]))
    if key not in _layout:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s))",
                [TABLE],
            )
            _layout[key] = bool(cursor.fetchone()[0])
    return _layout[key]


def insert_new_sql(connection: BaseDatabaseWrapper, columns: str) -> str:
    """``_insert_new``'s statement when partitioned: ids first into ``SEEN_TABLE``, then the new rows.

    One parameter: the rows as a JSON array; returns the event ids stored. Ids go in sorted:
    two batches sharing ids in opposite orders would otherwise each wait on the other's
    uncommitted ids, a deadlock.
    """
    quote = connection.ops.quote_name
    table, seen, event_id, when = quote(TABLE), quote(SEEN_TABLE), quote(EVENT_ID), quote(PARTITION_KEY)
    return (
        f"WITH incoming AS (SELECT {columns} FROM json_populate_recordset(NULL::{table}, %s)), "
        f"new AS (INSERT INTO {seen} ({event_id}, {when}) SELECT {event_id}, {when} FROM incoming "
        f"ORDER BY {event_id} ON CONFLICT ({event_id}) DO NOTHING RETURNING {event_id}) "
        f"INSERT INTO {table} ({columns}) SELECT {columns} FROM incoming JOIN new USING ({event_id}) "
        f"RETURNING {event_id}"
    )


def partitions(using: str = DEFAULT_DB_ALIAS) -> list[Partition]:
    """The events table's partitions, oldest first, the default one last; empty when not partitioned."""
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples, "
            "pg_total_relation_size(c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)",
            [TABLE],
        )
        rows = cursor.fetchall()
    found = []
    for name, bound, estimate, size in rows:
        start = end = None
        if bound != "DEFAULT":  # FOR VALUES FROM ('2026-11-01 00:00:00+00') TO ('2026-12-01 00:00:00+00')
            low, high = (part.split("'")[1] for part in bound.split(" TO "))
            start, end = datetime.fromisoformat(low), datetime.fromisoformat(high)
        found.append(Partition(name, start, end, int(estimate), int(size)))
    return sorted(found, key=lambda p: (p.start is None, p.start or datetime.min.replace(tzinfo=UTC)))


def convert(using: str = DEFAULT_DB_ALIAS) -> list[Partition]:
    """Rebuild the events table as one partitioned by month on ``timestamp``, in one transaction.

    Monthly partitions cover the oldest stored event up to next month, plus a default
    partition for anything outside them. Rows, ids, the id sequence, every non-unique
    index, the check and foreign-key constraints carry over; the primary key becomes
    (id, timestamp) and ``event_id``'s uniqueness moves to ``SEEN_TABLE``. The table is
    locked for the whole copy: stop the web and worker processes first.
    """
    connection = _postgresql(using)
    _layout.clear()
    if is_partitioned(connection):
        raise PartitioningError(f"{TABLE} is partitioned already.")
    quote = connection.ops.quote_name
    table, old, seen = quote(TABLE), quote(f"{TABLE}_unpartitioned"), quote(SEEN_TABLE)
    when, event_id = quote(PARTITION_KEY), quote(EVENT_ID)
    id_length = Interaction._meta.get_field("event_id").max_length
    with transaction.atomic(using), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        cursor.execute("SELECT conname FROM pg_constraint WHERE confrelid = to_regclass(%s)", [TABLE])
        if referencing := [name for (name,) in cursor.fetchall()]:
            raise PartitioningError(
                f"Foreign keys point at {TABLE} ({', '.join(referencing)}): drop them first."
            )
        # Non-unique indexes, except event_id's own (the seen-ids table's key replaces them).
        cursor.execute(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = to_regclass(%s) "
            "AND NOT i.indisunique AND i.indkey[0] <> "
            "(SELECT attnum FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = %s)",
            [TABLE, TABLE, EVENT_ID],
        )
        indexes = [sql for (sql,) in cursor.fetchall()]
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = to_regclass(%s) AND contype IN ('c', 'f') ORDER BY conname",
            [TABLE],
        )
        constraints = cursor.fetchall()
        sequence, last_value, is_called = _sequence_state(cursor)
        cursor.execute(f"SELECT min({when}) FROM {table}")
        oldest = cursor.fetchone()[0] or timezone.now()

        cursor.execute(f"ALTER TABLE {table} RENAME TO {old}")
        cursor.execute(f"CREATE TABLE {table} (LIKE {old}) PARTITION BY RANGE ({when})")
        month = _month_start(oldest)
        while month <= _add_months(_month_start(timezone.now()), 1):
            cursor.execute(
                f"CREATE TABLE {quote(_partition_name(month))} PARTITION OF {table} "
                "FOR VALUES FROM (%s) TO (%s)",
                [month, _add_months(month, 1)],
            )
            month = _add_months(month, 1)
        cursor.execute(f"CREATE TABLE {quote(DEFAULT_PARTITION)} PARTITION OF {table} DEFAULT")
        cursor.execute(f"INSERT INTO {table} SELECT * FROM {old}")
        cursor.execute(
            f"CREATE TABLE {seen} ({event_id} varchar({id_length}) PRIMARY KEY, {when} timestamptz NOT NULL)"
        )
        cursor.execute(f"INSERT INTO {seen} SELECT {event_id}, {when} FROM {old}")
        cursor.execute(f"CREATE INDEX {quote(SEEN_TABLE + '_time')} ON {seen} ({when})")
        cursor.execute(f"DROP TABLE {old}")  # its identity sequence, indexes and constraints go with it

        # No identity column on a partitioned table before PostgreSQL 17: an owned sequence, same state.
        cursor.execute(f"CREATE SEQUENCE {sequence} OWNED BY {table}.{quote(PK)}")
        cursor.execute("SELECT setval(%s, %s, %s)", [sequence, last_value, is_called])
        cursor.execute(f"ALTER TABLE {table} ALTER COLUMN {quote(PK)} SET DEFAULT nextval(%s)", [sequence])
        cursor.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {quote(TABLE + '_pkey')} PRIMARY KEY ({quote(PK)}, {when})"
        )
        for sql in indexes:  # names and definitions as Django made them; built on every partition
            cursor.execute(sql)
        for name, definition in constraints:
            cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}")
        cursor.execute(f"ANALYZE {table}")
        cursor.execute(f"ANALYZE {seen}")
    _layout.clear()
    return partitions(using)


def revert(using: str = DEFAULT_DB_ALIAS) -> None:
    """Rebuild the plain table as Django's migrations make it, rows and ids kept; drops ``SEEN_TABLE``.

    Same downtime as :func:`convert`. Events two retries stored under one id cannot
    exist (the seen-ids table prevented them), so the unique ``event_id`` comes back intact.
    """
    connection = _postgresql(using)
    _layout.clear()
    if not is_partitioned(connection):
        raise PartitioningError(f"{TABLE} is not partitioned.")
    quote = connection.ops.quote_name
    table, old = quote(TABLE), quote(f"{TABLE}_partitioned")
    columns = ", ".join(quote(f.column) for f in Interaction._meta.concrete_fields)
    with transaction.atomic(using), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        sequence, last_value, is_called = _sequence_state(cursor)
        # Free the names Django's create_model will use: the parent's indexes and its sequence.
        cursor.execute(
            "SELECT c.relname, con.conname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid "
            "WHERE i.indrelid = to_regclass(%s)",
            [TABLE],
        )
        for index, constraint in cursor.fetchall():
            if constraint:
                cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {quote(constraint)}")
            else:
                cursor.execute(f"DROP INDEX {quote(index)}")
        cursor.execute(f"ALTER TABLE {table} ALTER COLUMN {quote(PK)} DROP DEFAULT")
        cursor.execute(f"DROP SEQUENCE {sequence}")
        cursor.execute(f"ALTER TABLE {table} RENAME TO {old}")
        with connection.schema_editor() as editor:
            editor.create_model(Interaction)
        cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {old}")
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence(%s, %s), %s, %s)", [TABLE, PK, last_value, is_called]
        )
        cursor.execute(f"DROP TABLE {old}")  # and its partitions
        cursor.execute(f"DROP TABLE {quote(SEEN_TABLE)}")
        cursor.execute(f"ANALYZE {table}")
    _layout.clear()


def create_partitions(
    *, months_ahead: int = 1, using: str = DEFAULT_DB_ALIAS, lock_timeout: str | None = None
) -> list[str]:
    """Create this month's and the next ``months_ahead`` months' partitions where missing; their names.

    Idempotent. Events that had landed in the default partition for such a month move
    into its new partition. With ``lock_timeout`` (e.g. "5s", for the cleanup task) a busy
    table is left for the next run instead of queueing every reader behind the lock.
    """
    connection = _postgresql(using)
    if not is_partitioned(connection):
        raise PartitioningError(f"{TABLE} is not partitioned.")
    existing = {p.start for p in partitions(using) if p.start is not None}
    month, created = _month_start(timezone.now()), []
    for _ in range(months_ahead + 1):
        if month not in existing and _with_lock_timeout(connection, using, lock_timeout, _attach, month):
            created.append(_partition_name(month))
        month = _add_months(month, 1)
    return created


def drop_partitions_before(
    cutoff: datetime, *, using: str = DEFAULT_DB_ALIAS, lock_timeout: str | None = None
) -> list[str] | None:
    """Drop every monthly partition whose whole range is older than ``cutoff``; their names.

    None when ``lock_timeout`` ran out (a long reader holds the table): nothing more
    should be deleted this time, or row-by-row deletes would do the partitions' work.
    """
    connection = _postgresql(using)
    dropped = []
    for partition in partitions(using):
        if partition.end is None or partition.end > cutoff:
            continue
        if not _with_lock_timeout(connection, using, lock_timeout, _drop, partition.name):
            return None
        dropped.append(partition.name)
    return dropped


def forget_event_ids_before(cutoff: datetime, *, using: str = DEFAULT_DB_ALIAS) -> int:
    """Delete the seen ids of events older than ``cutoff`` (the events themselves are gone); how many."""
    connection = _postgresql(using)
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {quote(SEEN_TABLE)} WHERE {quote(PARTITION_KEY)} < %s", [cutoff])
        return cursor.rowcount


def _attach(connection: BaseDatabaseWrapper, month: datetime) -> None:
    """One month's partition: built beside the table, filled from the default partition, then attached.

    ``CREATE TABLE … PARTITION OF`` would fail if the default partition held rows of that month.
    """
    quote = connection.ops.quote_name
    table, default, new = quote(TABLE), quote(DEFAULT_PARTITION), quote(_partition_name(month))
    when, end = quote(PARTITION_KEY), _add_months(month, 1)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {new} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
        cursor.execute(
            f"WITH moved AS (DELETE FROM {default} WHERE {when} >= %s AND {when} < %s RETURNING *) "
            f"INSERT INTO {new} SELECT * FROM moved",
            [month, end],
        )
        cursor.execute(
            f"ALTER TABLE {table} ATTACH PARTITION {new} FOR VALUES FROM (%s) TO (%s)", [month, end]
        )


def _drop(connection: BaseDatabaseWrapper, name: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {connection.ops.quote_name(name)}")


def _with_lock_timeout(
    connection: BaseDatabaseWrapper,
    using: str,
    lock_timeout: str | None,
    work: Callable[[BaseDatabaseWrapper, Any], None],
    arg: Any,
) -> bool:
    """Run ``work(connection, arg)`` in its own transaction; False when ``lock_timeout`` ran out first."""
    try:
        with transaction.atomic(using):
            if lock_timeout:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [lock_timeout])
            work(connection, arg)
        return True
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != "55P03":  # lock_not_available
            raise
        logger.warning("recommender partitions: %s is busy, left for the next run (%s)", TABLE, exc)
        return False


def _sequence_state(cursor: CursorWrapper) -> tuple[str, int, bool]:
    """The id column's sequence (identity or owned) and its position: a rebuilt table never reuses an id."""
    cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [TABLE, PK])
    (sequence,) = cursor.fetchone()
    cursor.execute(f"SELECT last_value, is_called FROM {sequence}")
    last_value, is_called = cursor.fetchone()
    return sequence, last_value, is_called


def _postgresql(using: str) -> BaseDatabaseWrapper:
    connection = connections[using]
    if connection.vendor != "postgresql":
        raise PartitioningError("Partitioning the events table needs PostgreSQL.")
    return connection


def _partition_name(month: datetime) -> str:
    return f"{TABLE}_y{month.year:04d}m{month.month:02d}"


def _month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def _add_months(month: datetime, months: int) -> datetime:
    index = month.year * 12 + month.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)
