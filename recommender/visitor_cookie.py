"""The signed visitor cookie: how a browser's anonymous id is written and read back.

The id is signed with ``SECRET_KEY`` under one salt, so the server accepts only ids
it issued. The middleware writes the cookie, the adapter reads it.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from recommender.conf import recommender_settings

VISITOR_COOKIE_SALT = "recommender.visitor"


def signed_visitor_cookie(visitor_id: str) -> str:
    """The cookie value for a visitor id, exactly as the middleware writes it (for tests and tools)."""
    name = recommender_settings.VISITOR_COOKIE_NAME
    response = HttpResponse()
    response.set_signed_cookie(name, visitor_id, salt=VISITOR_COOKIE_SALT)
    return response.cookies[name].value


def visitor_id_from_cookie(request: HttpRequest) -> str:
    """The visitor id of a validly signed cookie, else ``""`` (missing, tampered or expired)."""
    return request.get_signed_cookie(
        recommender_settings.VISITOR_COOKIE_NAME,
        default="",
        salt=VISITOR_COOKIE_SALT,
        max_age=recommender_settings.VISITOR_COOKIE_AGE,
    )
