"""Give every browser a visitor id, so anonymous reading builds a history too.

``VisitorIdMiddleware`` reads the signed visitor cookie (or mints a new id through
the adapter), exposes it as ``request.recommender_visitor_id`` and writes the
cookie when the id is new or was replaced during the request (at login, see
``recommender.signals``).

The cookie is ``HttpOnly``: tracker.js never needs the id, the server reads it
from the cookie, so page scripts can't leak it. ``SameSite=Lax`` keeps other
sites' forms and scripts from posting with it (and the events API refuses their
posts by origin). Until the adapter's ``tracking_allowed`` says yes, no id is
read or minted and no cookie is set.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from recommender.adapter import get_adapter
from recommender.conf import recommender_settings
from recommender.visitor_cookie import VISITOR_COOKIE_SALT


class VisitorIdMiddleware:
    """Sets ``request.recommender_visitor_id`` and keeps the visitor cookie."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        adapter = get_adapter()
        if not adapter.tracking_allowed(request):  # no consent yet: no id, no cookie
            request.recommender_visitor_id = ""
            return self.get_response(request)
        known = adapter.visitor_id_for(request)
        request.recommender_visitor_id = known or adapter.new_visitor_id()
        response = self.get_response(request)
        visitor_id = request.recommender_visitor_id
        if visitor_id and visitor_id != known:
            response.set_signed_cookie(
                recommender_settings.VISITOR_COOKIE_NAME,
                visitor_id,
                salt=VISITOR_COOKIE_SALT,
                max_age=recommender_settings.VISITOR_COOKIE_AGE,
                secure=settings.SESSION_COOKIE_SECURE or request.is_secure(),
                httponly=True,
                samesite="Lax",
            )
        return response
