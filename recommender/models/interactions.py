"""What users and visitors did: implicit events and explicit feedback."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connections, models
from django.utils import timezone

from recommender.models.owned import OwnedQuerySet

if TYPE_CHECKING:
    from recommender.identity import Identity


class InteractionQuerySet(OwnedQuerySet):
    """Identity-scoped reads used on every recommendation."""

    def last_events_for(self, identity: Identity | None, limit: int = 200) -> InteractionQuerySet:
        """The newest ``limit`` events of one identity, newest first (one indexed query)."""
        return self.for_identity(identity).order_by("-timestamp", "-id")[:limit]

    def newest_id(self, identity: Identity | None) -> int:
        """The id of the identity's newest event, 0 when none: ``last_events_for(...)[0].id``.

        Every cached recommendation keys on it, so it runs on every cache hit; written as
        one SQL statement on the (identity, timestamp) index because compiling the
        equivalent ORM query took longer than running it.
        """
        if identity is None or not identity.is_known:
            return 0  # for_identity's "an unknown identity owns nothing"
        meta, quote = self.model._meta, connections[self.db].ops.quote_name
        user, visitor = (quote(meta.get_field(name).column) for name in ("user", "visitor_id"))
        when, pk = quote(meta.get_field("timestamp").column), quote(meta.pk.column)
        if identity.user_id is not None:  # for_identity's filter, in SQL
            where, params = f"{user} = %s", [identity.user_id]
        else:
            where, params = f"{user} IS NULL AND {visitor} = %s", [identity.visitor_id]
        sql = f"SELECT {pk} FROM {quote(meta.db_table)} WHERE {where} ORDER BY {when} DESC, {pk} DESC LIMIT 1"
        with connections[self.db].cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        return int(row[0]) if row else 0


class Interaction(models.Model):
    """One event: impression, view, click, like, share, read (value = portion 0-1), dislike, or a host type.

    ``clear_reaction`` undoes the identity's like or dislike of the item (``tracking.reactions``).

    ``event_id`` is client-supplied and unique, so a retried beacon is stored once.
    """

    class EventType(models.TextChoices):
        IMPRESSION = "impression"
        VIEW = "view"
        CLICK = "click"
        LIKE = "like"
        SHARE = "share"
        READ = "read"
        DISLIKE = "dislike"
        CLEAR_REACTION = "clear_reaction"  # undoes the identity's like or dislike of the item

    event_id = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    visitor_id = models.CharField(max_length=64, blank=True, db_index=True)
    item = models.ForeignKey("recommender.Item", on_delete=models.CASCADE, related_name="interactions")
    event_type = models.CharField(max_length=32)
    value = models.FloatField(null=True, blank=True)
    timestamp = models.DateTimeField(default=timezone.now)
    session_id = models.CharField(max_length=64, blank=True)
    placement = models.CharField(max_length=64, blank=True)
    recomm_id = models.CharField(max_length=64, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = InteractionQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["user", "-timestamp"], name="rec_inter_user_time"),
            models.Index(fields=["visitor_id", "-timestamp"], name="rec_inter_visitor_time"),
            models.Index(fields=["item", "event_type", "-timestamp"], name="rec_inter_item_type_time"),
            models.Index(fields=["-timestamp"], name="rec_inter_time"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(user__isnull=False) | ~models.Q(visitor_id=""),
                name="recommender_interaction_has_identity",
            ),
        ]

    def __str__(self) -> str:
        who = self.user_id or self.visitor_id
        return f"{who} {self.event_type} {self.item_id}"


class Feedback(models.Model):
    """Explicit feedback on an item, reviewed by editors in the admin."""

    class Kind(models.TextChoices):
        NOT_INTERESTED = "not_interested", "Not interested"
        MORE_LIKE_THIS = "more_like_this", "More like this"
        REPORT = "report", "Report"

    class Status(models.TextChoices):
        NEW = "new", "New"
        REVIEWED = "reviewed", "Reviewed"
        ACTIONED = "actioned", "Actioned"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    visitor_id = models.CharField(max_length=64, blank=True, db_index=True)
    item = models.ForeignKey("recommender.Item", on_delete=models.CASCADE, related_name="feedback")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    reason = models.TextField(blank=True)
    recomm_id = models.CharField(max_length=64, blank=True)
    placement = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "feedback"
        indexes = [
            models.Index(fields=["status", "-created_at"], name="rec_feedback_status"),
            models.Index(fields=["user", "kind"], name="rec_feedback_user_kind"),
            models.Index(fields=["item", "kind"], name="rec_feedback_item_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.item_id}"
