"""Storing what users and visitors did: server-side ``track()``, bulk ``ingest()`` and the login merge.

Every event carries a unique ``event_id`` (client-made, or a server uuid4), so a
retried beacon or a replayed batch is stored once. Popularity counters on
``Item`` move for new events only: on PostgreSQL the insert itself says which
ids were new (``ON CONFLICT DO NOTHING RETURNING``), which stays exact when the
same batch arrives twice at the same moment. (SQLite has no row locks: there,
exact counts under concurrent duplicates need
``"OPTIONS": {"transaction_mode": "IMMEDIATE"}``; rows are stored once either way.)
"""

from __future__ import annotations

import json
import math
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from recommender.conf import recommender_settings
from recommender.identity import Identity
from recommender.models import Feedback, Interaction, Item, Profile, RecommendationLog
from recommender.signals import events_ingested, identity_merged
from recommender.tracking import partitions

# Event types with a popularity counter on Item.
COUNTERS = {
    "impression": "impression_count",
    "view": "view_count",
    "click": "click_count",
    "like": "like_count",
}
PORTION_EVENT = "read"  # its value is the portion read, 0 to 1
MAX_ID_LENGTH = 64


class TrackingError(ValueError):
    """An event that can't be stored (unknown type or item, bad value, no identity)."""


@dataclass(frozen=True)
class EventInput:
    """One event to store; ``user_id`` or ``visitor_id`` identifies who did it."""

    item_id: int
    event_type: str
    user_id: int | None = None
    visitor_id: str = ""
    value: float | None = None
    timestamp: datetime | None = None
    event_id: str = ""
    session_id: str = ""
    placement: str = ""
    recomm_id: str = ""


@dataclass(frozen=True)
class IngestResult:
    """How many events were new and how many had been stored before (same ``event_id``)."""

    created: int = 0
    duplicates: int = 0


def new_event_id() -> str:
    return uuid.uuid4().hex


def event_types() -> dict[str, float]:
    """Accepted event types (built-in and the host's ``EXTRA_EVENT_TYPES``) with their weights."""
    return recommender_settings.event_weights()


def value_error(event_type: str, value: float | None) -> str | None:
    """Why ``value`` is wrong for ``event_type``, or None; shared with the API serializer."""
    if value is not None and not math.isfinite(value):
        return "The value must be a finite number."
    if event_type == PORTION_EVENT and (value is None or not 0.0 <= value <= 1.0):
        return "A read event needs the portion read as value, between 0 and 1."
    return None


def track(
    identity_or_user: Identity | Any,
    item: Item | int | Any,
    event_type: str,
    *,
    value: float | None = None,
    timestamp: datetime | None = None,
    event_id: str | None = None,
    session_id: str = "",
    placement: str = "",
    recomm_id: str = "",
) -> bool:
    """Store one server-side event; returns False when ``event_id`` had been stored already.

    ``item`` is an Item, its pk or a registered host object (e.g. an Article).
    """
    identity = _as_identity(identity_or_user)
    event = EventInput(
        item_id=_item_id(item),
        event_type=event_type,
        user_id=identity.user_id,
        visitor_id=identity.visitor_id,
        value=value,
        timestamp=timestamp,
        event_id=event_id or "",
        session_id=session_id,
        placement=placement,
        recomm_id=recomm_id,
    )
    return ingest([event]).created == 1


def ingest(events: Iterable[EventInput], *, batch_size: int = 500) -> IngestResult:
    """Store events idempotently in batches of ``batch_size``, one transaction per batch.

    Raises :class:`TrackingError` for an invalid event before its batch touches the
    database (earlier batches stay stored; replaying the call is safe).
    """
    created = duplicates = 0
    user_ids: set[int] = set()
    visitor_ids: set[str] = set()
    item_ids: set[int] = set()
    for chunk in _chunks(events, max(1, batch_size)):
        new, seen = _ingest_chunk(chunk)
        created += len(new)
        duplicates += seen
        for row in new:
            if row.user_id is not None:
                user_ids.add(row.user_id)
            else:
                visitor_ids.add(row.visitor_id)
            item_ids.add(row.item_id)
    if created:
        transaction.on_commit(
            lambda: events_ingested.send(
                sender=Interaction, user_ids=user_ids, visitor_ids=visitor_ids, item_ids=item_ids
            )
        )
    return IngestResult(created=created, duplicates=duplicates)


def merge_visitor_into_user(visitor_id: str, user: Any) -> dict[str, int]:
    """Move a visitor's events, feedback, served lists and profile into ``user``'s account.

    Called at login. When both have a profile, the account's is kept, and an opt-out
    made as a visitor carries over (the stricter choice wins). Returns rows moved per kind.
    """
    if not visitor_id or user is None or user.pk is None:
        return {}
    visitor = Identity(user_id=None, visitor_id=visitor_id)
    with transaction.atomic():
        counts = {
            "interactions": Interaction.objects.for_identity(visitor).update(user=user, visitor_id=""),
            "feedback": Feedback.objects.for_identity(visitor).update(user=user, visitor_id=""),
            "recommendation_logs": RecommendationLog.objects.for_identity(visitor).update(
                user=user, visitor_id=""
            ),
            "profiles": _merge_profile(visitor, user),
        }
    if any(counts.values()):
        transaction.on_commit(
            lambda: identity_merged.send(sender=Interaction, user_id=user.pk, visitor_id=visitor_id)
        )
    return counts


def _merge_profile(visitor: Identity, user: Any) -> int:
    visitor_profile = Profile.objects.for_identity(visitor).first()
    if visitor_profile is None:
        return 0
    user_profile = Profile.objects.for_identity(Identity.for_user(user)).first()
    if user_profile is None:
        visitor_profile.user = user
        visitor_profile.visitor_id = ""
        visitor_profile.save(update_fields=["user", "visitor_id"])
        return 1
    if not visitor_profile.personalization_enabled and user_profile.personalization_enabled:
        user_profile.personalization_enabled = False
        user_profile.save(update_fields=["personalization_enabled"])
    visitor_profile.delete()
    return 1


def _ingest_chunk(chunk: list[EventInput]) -> tuple[list[Interaction], int]:
    """Store one batch; returns the new rows and how many events were already stored."""
    rows: dict[str, Interaction] = {}
    repeated = 0
    for event in chunk:
        event_id = event.event_id or new_event_id()
        if event_id in rows:
            repeated += 1
            continue
        _check(event, event_id)
        rows[event_id] = Interaction(
            event_id=event_id,
            user_id=event.user_id,
            visitor_id="" if event.user_id is not None else event.visitor_id,
            item_id=event.item_id,
            event_type=event.event_type,
            value=event.value,
            timestamp=event.timestamp or timezone.now(),
            session_id=event.session_id,
            placement=event.placement,
            recomm_id=event.recomm_id,
        )
    if not rows:
        return [], repeated
    wanted = sorted({row.item_id for row in rows.values()})
    try:
        with transaction.atomic():
            missing = set(wanted) - set(Item.objects.filter(pk__in=wanted).values_list("pk", flat=True))
            if missing:
                raise TrackingError(f"Unknown item ids: {sorted(missing)}.")
            created = set(_insert_new(list(rows.values())))
            new = [row for event_id, row in rows.items() if event_id in created]
            _bump_counters(new)
    except IntegrityError as exc:  # an item deleted while the batch was stored (the foreign key, at commit)
        gone = set(wanted) - set(Item.objects.filter(pk__in=wanted).values_list("pk", flat=True))
        raise TrackingError(f"Unknown item ids: {sorted(gone)}.") from exc
    return new, repeated + len(rows) - len(new)


def _insert_new(rows: list[Interaction]) -> list[str]:
    """Insert the rows whose ``event_id`` is not stored yet; returns the event ids inserted.

    PostgreSQL: one ``INSERT … ON CONFLICT (event_id) DO NOTHING RETURNING`` of the
    rows sent as one JSON document. A transaction inserting an id that a concurrent one
    has just inserted waits for that one's outcome, then skips the row, so two posts of
    one batch never both count an event as new, with no lock of ours. The rows go in
    ``event_id`` order: two batches sharing ids in opposite orders would otherwise each
    wait for the other's insert (a deadlock). One JSON parameter also spares the
    per-value SQL that ``bulk_create`` builds. A partitioned table (``tracking.partitions``)
    checks the ids against its seen-ids table in the same statement. Elsewhere (SQLite,
    whose IMMEDIATE write transactions run one at a time): look for the stored ids, then
    ``bulk_create``.
    """
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        stored = set(
            Interaction.objects.filter(event_id__in=[row.event_id for row in rows]).values_list(
                "event_id", flat=True
            )
        )
        new = [row for row in rows if row.event_id not in stored]
        Interaction.objects.bulk_create(new, ignore_conflicts=True)
        return [row.event_id for row in new]
    now = timezone.now()
    fields = [field for field in Interaction._meta.concrete_fields if not field.primary_key]
    records = [
        {f.column: _json_value(now if f.attname == "created_at" else getattr(row, f.attname)) for f in fields}
        for row in rows
    ]
    quote = connection.ops.quote_name
    table = quote(Interaction._meta.db_table)
    event_id = quote(Interaction._meta.get_field("event_id").column)
    columns = ", ".join(quote(f.column) for f in fields)
    statement = (
        partitions.insert_new_sql(connection, columns)  # no unique event_id there: its seen-ids table decides
        if partitions.is_partitioned(connection)
        else f"INSERT INTO {table} ({columns}) "
        f"SELECT {columns} FROM json_populate_recordset(NULL::{table}, %s) ORDER BY {event_id} "
        f"ON CONFLICT ({event_id}) DO NOTHING RETURNING {event_id}"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [json.dumps(records)])
        return [event_id for (event_id,) in cursor.fetchall()]


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _bump_counters(rows: list[Interaction]) -> None:
    """Add each item's new events of each counted type to its counters, in item id order.

    The order matters on PostgreSQL: two batches that lock the same item rows in
    different orders deadlock, and one of them fails (bench.reliability met it once in
    5,312 requests before the sort). One UPDATE of many rows would lock them in its
    plan's order, not by id, so PostgreSQL gets one single-row UPDATE per item, all
    sent in one round trip (the SQL holds only ints and our own column names).
    """
    per_item: dict[int, Counter[str]] = defaultdict(Counter)
    for row in rows:
        field = COUNTERS.get(row.event_type)
        if field is not None:
            per_item[row.item_id][field] += 1
    if not per_item:
        return
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        for item_id, increments in sorted(per_item.items()):
            Item.objects.filter(pk=item_id).update(**{f: F(f) + n for f, n in increments.items()})
        return
    quote = connection.ops.quote_name
    table, pk = quote(Item._meta.db_table), quote(Item._meta.pk.column)
    column = {f: quote(Item._meta.get_field(f).column) for f in COUNTERS.values()}
    statements = [
        f"UPDATE {table} SET "
        + ", ".join(f"{column[f]} = {column[f]} + {int(n)}" for f, n in sorted(increments.items()))
        + f" WHERE {pk} = {int(item_id)}"
        for item_id, increments in sorted(per_item.items())
    ]
    with connection.cursor() as cursor:
        cursor.execute("; ".join(statements))


def _check(event: EventInput, event_id: str) -> None:
    if event.event_type not in event_types():
        raise TrackingError(
            f"Unknown event type {event.event_type!r}; expected one of {sorted(event_types())}."
        )
    problem = value_error(event.event_type, event.value)
    if problem:
        raise TrackingError(problem)
    if event.user_id is None and not event.visitor_id:
        raise TrackingError("An event needs a user or a visitor id.")
    for name, text in (
        ("event_id", event_id),
        ("visitor_id", event.visitor_id),
        ("session_id", event.session_id),
        ("placement", event.placement),
        ("recomm_id", event.recomm_id),
    ):
        if len(text) > MAX_ID_LENGTH:
            raise TrackingError(f"{name} is longer than {MAX_ID_LENGTH} characters.")


def _as_identity(identity_or_user: Any) -> Identity:
    identity = (
        identity_or_user if isinstance(identity_or_user, Identity) else Identity.for_user(identity_or_user)
    )
    if not identity.is_known:
        raise TrackingError("track() needs an Identity with a user or visitor id, or a signed-in user.")
    return identity


def _item_id(item: Any) -> int:
    if isinstance(item, Item):
        return item.pk
    if isinstance(item, int):
        return item
    content_type = ContentType.objects.get_for_model(item)
    pk = (
        Item.objects.filter(content_type=content_type, object_id=str(item.pk))
        .values_list("pk", flat=True)
        .first()
    )
    if pk is None:
        raise TrackingError(f"{item!r} has no Item: is its model registered with the recommender?")
    return pk


def _chunks(events: Iterable[EventInput], size: int) -> Iterator[list[EventInput]]:
    iterator = iter(events)
    while chunk := list(islice(iterator, size)):
        yield chunk
