"""How the OpenAPI schema describes who may call: a visitor's cookie id is enough where HasIdentity is."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema

from recommender.api.permissions import HasIdentity


class VisitorAwareSchema(AutoSchema):
    """Endpoints a visitor may call without signing in list "no authentication" among their options.

    drf-spectacular only knows DRF's AllowAny for that; HasIdentity accepts an anonymous
    visitor identified by the visitor cookie, so a session is one way in, not the only one.
    """

    def get_auth(self) -> list[dict[str, Any]]:
        auth = super().get_auth()
        if {} not in auth and any(isinstance(p, HasIdentity) for p in self.view.get_permissions()):
            auth.append({})
        return auth
