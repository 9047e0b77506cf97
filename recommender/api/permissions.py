"""Who may call an endpoint: only as oneself, CSRF for cookie visitors, permissions for model operations."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.middleware.csrf import CsrfViewMiddleware
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from recommender.adapter import get_adapter
from recommender.identity import identity_from_request


class HasIdentity(BasePermission):
    """The request is a signed-in user or a visitor with an id (the visitor middleware is installed)."""

    message = (
        "No user and no visitor id: sign in, or enable cookies (recommender.middleware.VisitorIdMiddleware)."
    )

    def has_permission(self, request: Request, view: Any) -> bool:
        return identity_from_request(request).is_known


class _CsrfCheck(CsrfViewMiddleware):
    def _reject(self, request: Any, reason: str) -> str:
        return reason


class VisitorCsrfCheck(BasePermission):
    """Unsafe requests from anonymous visitors must pass Django's CSRF check too.

    DRF's SessionAuthentication checks CSRF for signed-in users only; a visitor is
    identified by a cookie just the same, so actions that change its data (feedback,
    opt-out, erasure) get the same protection.
    """

    message = "CSRF check failed."

    def has_permission(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS or (request.user and request.user.is_authenticated):
            return True
        check = _CsrfCheck(lambda req: None)
        check.process_request(request._request)
        reason = check.process_view(request._request, None, (), {})
        if reason:
            self.message = f"CSRF Failed: {reason}"
            return False
        return True


class SameSiteOnly(BasePermission):
    """A browser's post must come from this site: no other site may make its visitors' browsers send events.

    Browsers say where a request comes from: ``Sec-Fetch-Site`` (cross-site is refused)
    and, on every cross-origin POST, ``Origin`` (it must be this host, or listed in
    ``CSRF_TRUSTED_ORIGINS``). A client that sends neither is not a browser page,
    which is what the check is about, and goes on to authentication and throttles.
    """

    message = "Cross-site requests are refused: events must come from this site's own pages."

    def has_permission(self, request: Request, view: Any) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:
            return request.headers.get("Sec-Fetch-Site") != "cross-site"
        # "null" (a sandboxed frame, a file) is no site of ours either.
        return origin == f"{request.scheme}://{request.get_host()}" or origin in settings.CSRF_TRUSTED_ORIGINS


class TrackingConsent(BasePermission):
    """Events are stored only for requests the adapter's ``tracking_allowed`` consent hook allows."""

    message = "Tracking is off for this visitor until they agree to it; no event was stored."

    def has_permission(self, request: Request, view: Any) -> bool:
        return get_adapter().tracking_allowed(request._request)


class OwnEventsOnly(BasePermission):
    """Events may name only the requester: a visitor its own cookie id, a user itself.

    Checked before validation so a batch that tries to write for someone else is
    refused whole (403), never partly stored.
    """

    message = "You can only send events for yourself."

    def has_permission(self, request: Request, view: Any) -> bool:
        data = request.data
        events = data.get("events") if isinstance(data, dict) else None
        if not isinstance(events, list):
            return True  # malformed: the serializer answers 400
        identity = identity_from_request(request)
        for index, event in enumerate(events):
            if not isinstance(event, dict):
                continue
            user = event.get("user")
            if user not in (None, "") and (identity.user_id is None or str(user) != str(identity.user_id)):
                self.message = f"Event {index} names user {user!r}; you can only send your own events."
                return False
            visitor_id = event.get("visitor_id")
            if visitor_id not in (None, "") and visitor_id != identity.visitor_id:
                self.message = f"Event {index} names another visitor id; you can only send your own events."
                return False
        return True


class ModelVersionPermission(BasePermission):
    """Model operations need what the admin needs: active staff with the model's permissions.

    Listing takes ``recommender.view_modelversion`` (or change, as in the admin);
    activating and rolling back take ``recommender.change_modelversion``. Staff status
    alone is not enough: a staff editor without them manages no models here either.
    """

    message = "Only staff users may manage recommender model versions."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active and user.is_staff):
            return False
        needed = ["recommender.change_modelversion"]
        if request.method in SAFE_METHODS:
            needed.append("recommender.view_modelversion")
        if any(user.has_perm(perm) for perm in needed):
            return True
        self.message = f"You need the {' or '.join(repr(p) for p in needed)} permission."
        return False
