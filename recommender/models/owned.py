"""Rows that belong to one reader: the one way to say "this identity's events, feedback, lists, profile"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from django.db import models

if TYPE_CHECKING:
    from recommender.identity import Identity


class OwnedQuerySet(models.QuerySet):
    """A queryset of rows keyed by ``user`` or, for anonymous rows, by ``visitor_id``."""

    def for_identity(self, identity: Identity | None) -> Self:
        """A user's rows by ``user_id`` alone; a visitor's among anonymous rows; nothing for an unknown one.

        A user's rows keep the visitor id of the browser they came from, so matching on
        it would hand one person's history to whoever holds that cookie next.
        """
        if identity is None:
            return self.none()
        if identity.user_id is not None:
            return self.filter(user_id=identity.user_id)
        if not identity.visitor_id:
            return self.none()
        return self.filter(user__isnull=True, visitor_id=identity.visitor_id)
