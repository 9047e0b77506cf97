"""Who is asking: a signed-in user or an anonymous visitor with a cookie id.

Every API view and template tag resolves the requester through
:func:`identity_from_request`, so the rule "a user acts only as itself, a visitor
only as its own cookie id" lives in one place. The visitor id is a random UUID
signed with ``SECRET_KEY``: the server accepts only ids it issued, so a client
can't pick someone else's id even if it learnt one from a log
(:mod:`recommender.visitor_cookie`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from recommender.adapter import get_adapter


@dataclass(frozen=True)
class Identity:
    """A user id, or (when ``user_id`` is None) an anonymous visitor id.

    ``visitor_id`` is the browser's cookie id for users as well; stored data of a
    user is keyed by ``user_id`` alone.
    """

    user_id: int | None
    visitor_id: str = ""

    @property
    def is_known(self) -> bool:
        """Whether anything can be stored for this identity."""
        return self.user_id is not None or bool(self.visitor_id)

    @classmethod
    def for_user(cls, user: Any, visitor_id: str = "") -> Identity:
        """The identity of a user object (anonymous users become a bare visitor)."""
        if user is not None and getattr(user, "is_authenticated", False):
            return cls(user_id=user.pk, visitor_id=visitor_id)
        return cls(user_id=None, visitor_id=visitor_id)


def identity_from_request(request: Any) -> Identity:
    """The requester's identity from a Django or DRF request.

    The visitor id comes from :class:`~recommender.middleware.VisitorIdMiddleware`
    (``request.recommender_visitor_id``); without the middleware, the adapter reads
    the cookie, and a visitor without one has an unknown identity (``is_known``
    false) for which nothing is stored.
    """
    visitor_id = getattr(request, "recommender_visitor_id", None)
    if visitor_id is None:
        visitor_id = get_adapter().visitor_id_for(request)
    return Identity.for_user(getattr(request, "user", None), visitor_id or "")
